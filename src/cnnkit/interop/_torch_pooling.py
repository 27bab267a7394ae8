"""to_torch / from_torch entries for adaptive pooling, padding layers and max unpooling, added to the tables
of :mod:`cnnkit.interop._torch_convert`. Each maps to the torch.nn module of the same name and arguments."""

from __future__ import annotations

from torch import nn

from cnnkit import layers as L
from cnnkit.interop._torch_convert import FROM_TORCH, TO_TORCH

_PADS = ("ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad", "CircularPad")


def _torch_padding(layer):
    """cnnkit's (before, after) per axis, first axis first -> torch's flat tuple, last axis first."""
    return tuple(v for lo, hi in reversed(layer.padding) for v in (lo, hi))


def _to_pad(layer):
    cls = getattr(nn, type(layer).__name__)
    if type(layer).__name__.startswith("ConstantPad"):
        return cls(_torch_padding(layer), layer.value)
    return cls(_torch_padding(layer))


def _from_pad(module):
    name = type(module).__name__
    cls = getattr(L, name)
    if name.startswith("ConstantPad"):
        return cls(tuple(module.padding), module.value)
    return cls(tuple(module.padding))


def _from_adaptive(module, nd):
    kind = "Avg" if "Avg" in type(module).__name__ else "Max"
    size = module.output_size
    if nd == 2 and all(s == 1 for s in (size if isinstance(size, tuple) else (size,))) \
            and not getattr(module, "return_indices", False):
        # PyTorch's way of writing a global pool (ResNet's head): cnnkit's own layer for it
        return getattr(L, f"Global{kind}Pool2d")()
    cls = getattr(L, f"Adaptive{kind}Pool{nd}d")
    size = tuple(size) if isinstance(size, tuple | list) else size
    return cls(size) if kind == "Avg" else cls(size, return_indices=module.return_indices)


def _to_adaptive(layer):
    cls = getattr(nn, type(layer).__name__)
    size = layer.output_size if len(set(layer.output_size)) > 1 else layer.output_size[0]
    if getattr(layer, "return_indices", False):
        return cls(size, return_indices=True)
    return cls(size)


for nd in (1, 2, 3):
    for kind in ("Avg", "Max"):
        name = f"Adaptive{kind}Pool{nd}d"
        TO_TORCH[name] = _to_adaptive
        FROM_TORCH[getattr(nn, name)] = lambda m, nd=nd: _from_adaptive(m, nd)
    for prefix in _PADS:
        name = f"{prefix}{nd}d"
        TO_TORCH[name] = _to_pad
        FROM_TORCH[getattr(nn, name)] = _from_pad
