"""to_torch / from_torch entries for the layers of the ConvNets after AlexNet and VGG (activations,
per-example normalization, upsampling, rearranging), added to the tables of
:mod:`cnnkit.interop._torch_convert`. Each maps to the torch.nn module of the same name and arguments;
parameters and buffers carry PyTorch's names, so the state dicts map one to one."""

from __future__ import annotations

from torch import nn

from cnnkit import layers as L
from cnnkit.interop._torch_convert import FROM_TORCH, TO_TORCH

# name -> the constructor arguments both modules take, in order
_SAME_ARGUMENTS = {
    "PReLU": ("num_parameters", "init"), "SELU": (), "CELU": ("alpha",), "GELU": ("approximate",), "SiLU": (),
    "Mish": (), "Softplus": ("beta", "threshold"), "Softsign": (), "Hardtanh": ("min_val", "max_val"),
    "Hardsigmoid": (), "Hardswish": (), "LogSoftmax": ("dim",),
}


def _to(name, names):
    return lambda layer: getattr(nn, name)(*(layer._init_args[n] for n in names))


def _from(name, names):
    def convert(module):
        if name == "PReLU":  # torch keeps no init; the weights come with the state dict
            return L.PReLU(module.num_parameters)
        if name == "LogSoftmax":
            return L.LogSoftmax(1 if module.dim is None else module.dim)
        return getattr(L, name)(*(getattr(module, n) for n in names))
    return convert


for _name, _names in _SAME_ARGUMENTS.items():
    TO_TORCH[_name] = _to(_name, _names)
    FROM_TORCH[getattr(nn, _name)] = _from(_name, _names)
