"""to_torch / from_torch entries for adaptive pooling, padding (the layers and the convolutions'
``padding_mode``) and max unpooling, added to the tables of :mod:`cnnkit.interop._torch_convert`. Each maps
to the torch.nn module of the same name and arguments."""

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


def _to_conv(plain):
    """A convolution with a padding_mode: torch's own conv with the same mode (symmetric padding only)."""
    def convert(layer):
        mode = getattr(layer, "padding_mode", "zeros")
        if mode == "zeros":
            return plain(layer)
        if any(lo != hi for lo, hi in layer.padding) or layer.fit == "pad":
            raise TypeError(f"{layer!r}: torch pads with padding_mode={mode!r} only symmetrically and "
                            f"without ceil mode; padding {layer.padding} with fit={layer.fit!r} has no torch "
                            f"counterpart.")
        module = plain(layer)
        module.padding_mode = mode  # torch's forward pads by the mode, with the padding __init__ recorded
        return module
    return convert


def _from_conv(plain, nd):
    def convert(module):
        if module.padding_mode == "zeros":
            return plain(module)
        m = module
        return getattr(L, f"Conv{nd}d")(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                                        m.dilation, m.groups, m.bias is not None, m.padding_mode, fit="crop")
    return convert


for nd in (1, 2, 3):
    TO_TORCH[f"Conv{nd}d"] = _to_conv(TO_TORCH[f"Conv{nd}d"])
    FROM_TORCH[getattr(nn, f"Conv{nd}d")] = _from_conv(FROM_TORCH[getattr(nn, f"Conv{nd}d")], nd)


# -- the 1-D/3-D pools, return_indices, divisor_override, unpooling, BatchNorm3d, ConvTranspose1d/3d -------

def _symmetric_pads(layer):
    """The per-axis padding torch's pools and transposed convs take, or TypeError when one side differs."""
    if any(lo != hi for lo, hi in layer.padding):
        raise TypeError(f"{layer!r}: torch pads both sides equally; asymmetric padding {layer.padding} has "
                        f"no torch counterpart.")
    return tuple(lo for lo, _ in layer.padding)


def _to_max_pool(plain, nd):
    def convert(layer):
        if nd == 3 or layer.return_indices:
            return getattr(nn, f"MaxPool{nd}d")(layer.kernel_size, layer.stride, _symmetric_pads(layer),
                                                 layer.dilation, return_indices=layer.return_indices,
                                                 ceil_mode=layer.fit == "pad")
        return plain(layer)
    return convert


def _from_max_pool(module, nd):
    return getattr(L, f"MaxPool{nd}d")(module.kernel_size, module.stride, module.padding, module.dilation,
                                       module.return_indices, fit="pad" if module.ceil_mode else "crop")


def _to_avg_pool(plain, nd):
    def convert(layer):
        if nd == 2 and layer.divisor_override is None:
            return plain(layer)
        if nd == 1 and layer.divisor_override is not None:
            raise TypeError(f"{layer!r}: torch's AvgPool1d has no divisor_override.")
        args = dict(ceil_mode=layer.fit == "pad", count_include_pad=layer.count_include_pad)
        if nd > 1:
            args["divisor_override"] = layer.divisor_override
        return getattr(nn, f"AvgPool{nd}d")(layer.kernel_size, layer.stride, _symmetric_pads(layer), **args)
    return convert


def _from_avg_pool(module, nd):
    return getattr(L, f"AvgPool{nd}d")(module.kernel_size, module.stride, module.padding,
                                       count_include_pad=module.count_include_pad,
                                       divisor_override=getattr(module, "divisor_override", None),
                                       fit="pad" if module.ceil_mode else "crop")


def _to_lp_pool(layer):
    """torch's LPPool raises x (not |x|) to p and rescales partial ceil-mode windows: the same numbers only
    for an even integer p without fit="pad"."""
    p = layer.norm_type
    if not (p.is_integer() and p % 2 == 0) or layer.fit == "pad":
        raise TypeError(f"{layer!r}: torch's LPPool{layer.ndim}d computes the same only for an even p and "
                        f"without fit='pad'.")
    if layer.ndim == 1:  # torch's lp_pool1d multiplies by kernel_size, which must be an int there
        return nn.LPPool1d(p, layer.kernel_size[0], layer.stride[0])
    return getattr(nn, f"LPPool{layer.ndim}d")(p, layer.kernel_size, layer.stride)


def _from_lp_pool(module, nd):
    p = float(module.norm_type)
    if not (p.is_integer() and p % 2 == 0) or module.ceil_mode:
        raise TypeError(f"norm_type={module.norm_type}, ceil_mode={module.ceil_mode} (cnnkit's L_p pool "
                        f"equals torch's for an even p without ceil mode)")
    return getattr(L, f"LPPool{nd}d")(p, module.kernel_size, module.stride, fit="crop")


def _to_conv_transpose(layer):
    m = layer
    return getattr(nn, f"ConvTranspose{m.ndim}d")(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                                                  _symmetric_pads(m), m.output_padding, m.groups,
                                                  m.bias is not None, m.dilation)


def _from_conv_transpose(module, nd):
    if module.padding_mode != "zeros":
        raise TypeError(f"padding_mode={module.padding_mode!r}")
    m = module
    return getattr(L, f"ConvTranspose{nd}d")(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                                             m.padding, m.output_padding, m.groups, m.bias is not None,
                                             m.dilation)


for nd in (1, 2, 3):
    plain_max, plain_avg = TO_TORCH.get(f"MaxPool{nd}d"), TO_TORCH.get(f"AvgPool{nd}d")
    TO_TORCH[f"MaxPool{nd}d"] = _to_max_pool(plain_max, nd)
    FROM_TORCH[getattr(nn, f"MaxPool{nd}d")] = lambda m, nd=nd: _from_max_pool(m, nd)
    TO_TORCH[f"AvgPool{nd}d"] = _to_avg_pool(plain_avg, nd)
    FROM_TORCH[getattr(nn, f"AvgPool{nd}d")] = lambda m, nd=nd: _from_avg_pool(m, nd)
    TO_TORCH[f"MaxUnpool{nd}d"] = lambda m, nd=nd: getattr(nn, f"MaxUnpool{nd}d")(m.kernel_size, m.stride,
                                                                                  m.padding)
    FROM_TORCH[getattr(nn, f"MaxUnpool{nd}d")] = lambda m, nd=nd: getattr(L, f"MaxUnpool{nd}d")(
        m.kernel_size, m.stride, m.padding)
    FROM_TORCH[getattr(nn, f"LPPool{nd}d")] = lambda m, nd=nd: _from_lp_pool(m, nd)
    if nd != 2:
        TO_TORCH[f"LPPool{nd}d"] = _to_lp_pool
        TO_TORCH[f"ConvTranspose{nd}d"] = _to_conv_transpose
        FROM_TORCH[getattr(nn, f"ConvTranspose{nd}d")] = lambda m, nd=nd: _from_conv_transpose(m, nd)
TO_TORCH["BatchNorm3d"] = lambda m: nn.BatchNorm3d(m.num_features, m.eps, m.momentum, m.affine,
                                                   m.track_running_stats)
FROM_TORCH[nn.BatchNorm3d] = lambda m: L.BatchNorm3d(m.num_features, m.eps, m.momentum, m.affine,
                                                     m.track_running_stats)
