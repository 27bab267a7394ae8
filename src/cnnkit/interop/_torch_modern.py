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


def _args(layer, *names):
    return [layer._init_args[n] for n in names]


_INSTANCE = ("num_features", "eps", "momentum", "affine", "track_running_stats")
TO_TORCH["GroupNorm"] = lambda m: nn.GroupNorm(*_args(m, "num_groups", "num_channels", "eps", "affine"))
FROM_TORCH[nn.GroupNorm] = lambda m: L.GroupNorm(m.num_groups, m.num_channels, m.eps, m.affine)
TO_TORCH["LayerNorm"] = lambda m: nn.LayerNorm(m.normalized_shape, m.eps, m.elementwise_affine,
                                               bias=m.bias is not None)
FROM_TORCH[nn.LayerNorm] = lambda m: L.LayerNorm(tuple(m.normalized_shape), m.eps, m.elementwise_affine,
                                                 bias=m.bias is not None)
for _nd in (1, 2, 3):
    TO_TORCH[f"InstanceNorm{_nd}d"] = \
        lambda m, nd=_nd: getattr(nn, f"InstanceNorm{nd}d")(*_args(m, *_INSTANCE))
    FROM_TORCH[getattr(nn, f"InstanceNorm{_nd}d")] = \
        lambda m, nd=_nd: getattr(L, f"InstanceNorm{nd}d")(*(getattr(m, n) for n in _INSTANCE))


# -- upsampling and rearranging ----------------------------------------------------------------------------

TO_TORCH["Upsample"] = lambda m: nn.Upsample(*_args(m, "size", "scale_factor", "mode", "align_corners",
                                                     "recompute_scale_factor"))
FROM_TORCH[nn.Upsample] = lambda m: L.Upsample(m.size, m.scale_factor, m.mode, m.align_corners,
                                               m.recompute_scale_factor)
for _name in ("UpsamplingNearest2d", "UpsamplingBilinear2d"):
    TO_TORCH[_name] = lambda m, name=_name: getattr(nn, name)(*_args(m, "size", "scale_factor"))
    FROM_TORCH[getattr(nn, _name)] = lambda m, name=_name: getattr(L, name)(m.size, m.scale_factor)
TO_TORCH["PixelShuffle"] = lambda m: nn.PixelShuffle(m.upscale_factor)
FROM_TORCH[nn.PixelShuffle] = lambda m: L.PixelShuffle(m.upscale_factor)
TO_TORCH["PixelUnshuffle"] = lambda m: nn.PixelUnshuffle(m.downscale_factor)
FROM_TORCH[nn.PixelUnshuffle] = lambda m: L.PixelUnshuffle(m.downscale_factor)
TO_TORCH["ChannelShuffle"] = lambda m: nn.ChannelShuffle(m.groups)
FROM_TORCH[nn.ChannelShuffle] = lambda m: L.ChannelShuffle(m.groups)
TO_TORCH["Unflatten"] = lambda m: nn.Unflatten(m.dim, m.unflattened_size)
FROM_TORCH[nn.Unflatten] = lambda m: L.Unflatten(m.dim, tuple(m.unflattened_size))
