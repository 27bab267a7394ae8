"""ONNX export of the layers of the ConvNets after AlexNet and VGG (activations, per-example
normalization, upsampling, rearranging), added to ``cnnkit.interop.onnx.EMITTERS``.

Where the export's opset has the operator it is used (PRelu, Selu, Celu, Softsign, HardSigmoid,
HardSwish, LogSoftmax; Gelu from opset 20, Mish from 18); otherwise the layer is spelled out in basic
operators with PyTorch's exact definition (GELU with Erf, SiLU as x * Sigmoid(x), Softplus with its
threshold as a Where).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from cnnkit.interop.onnx import DEFAULT_OPSET, EMITTERS, _batch_norm, _key
from cnnkit.reference.upsample import per_axis, sampling_plan


def _opset(g):
    return getattr(g, "opset", DEFAULT_OPSET)


def _prelu(g, layer, prefix, x, shape):
    # ONNX broadcasts the slope from the right: (C, 1, ..., 1) puts one slope on each channel of axis 1.
    slope = layer.weight.data
    if layer.num_parameters > 1:
        slope = slope.reshape(-1, *(1,) * (len(shape) - 2))
    return g.node("PRelu", [x, g.constant(slope, _key(prefix, "weight"))], prefix or "prelu")


def _unary(op, **attrs):
    def emit(g, layer, prefix, x, shape):
        values = {k: (v(layer) if callable(v) else v) for k, v in attrs.items()}
        return g.node(op, [x], prefix or op.lower(), **values)
    return emit


def _mul(g, a, b, hint):
    return g.node("Mul", [a, b], hint)


def _gelu(g, layer, prefix, x, shape):
    if _opset(g) >= 20:
        return g.node("Gelu", [x], prefix or "gelu", approximate=layer.approximate)
    if layer.approximate == "tanh":
        cube = g.node("Mul", [g.node("Mul", [x, x], _key(prefix, "square")), x], _key(prefix, "cube"))
        cube = _mul(g, cube, g.constant(0.044715, _key(prefix, "c")), _key(prefix, "cx3"))
        inner = g.node("Add", [x, cube], _key(prefix, "inner"))
        inner = _mul(g, inner, g.constant(math.sqrt(2 / math.pi), _key(prefix, "k")), _key(prefix, "u"))
        gate = g.node("Tanh", [inner], _key(prefix, "tanh"))
    else:
        scaled = _mul(g, x, g.constant(1 / math.sqrt(2), _key(prefix, "inv_sqrt2")), _key(prefix, "scaled"))
        gate = g.node("Erf", [scaled], _key(prefix, "erf"))
    one_plus = g.node("Add", [gate, g.constant(1.0, _key(prefix, "one"))], _key(prefix, "one_plus"))
    half = _mul(g, one_plus, g.constant(0.5, _key(prefix, "half")), _key(prefix, "cdf"))
    return _mul(g, x, half, prefix or "gelu")


def _silu(g, layer, prefix, x, shape):
    return _mul(g, x, g.node("Sigmoid", [x], _key(prefix, "sigmoid")), prefix or "silu")


def _mish(g, layer, prefix, x, shape):
    if _opset(g) >= 18:
        return g.node("Mish", [x], prefix or "mish")
    gate = g.node("Tanh", [g.node("Softplus", [x], _key(prefix, "softplus"))], _key(prefix, "tanh"))
    return _mul(g, x, gate, prefix or "mish")


def _softplus(g, layer, prefix, x, shape):
    z = x if layer.beta == 1 else _mul(g, x, g.constant(layer.beta, _key(prefix, "beta")), _key(prefix, "z"))
    smooth = g.node("Softplus", [z], _key(prefix, "softplus"))
    if layer.beta != 1:
        beta = g.constant(layer.beta, _key(prefix, "beta_div"))
        smooth = g.node("Div", [smooth, beta], _key(prefix, "smooth"))
    threshold = g.constant(layer.threshold, _key(prefix, "threshold"))
    linear = g.node("Greater", [z, threshold], _key(prefix, "linear"))  # PyTorch's switch to x itself
    return g.node("Where", [linear, x, smooth], prefix or "softplus")


def _hardtanh(g, layer, prefix, x, shape):
    low, high = g.constant(layer.min_val, _key(prefix, "min")), g.constant(layer.max_val, _key(prefix, "max"))
    return g.node("Clip", [x, low, high], prefix or "hardtanh")


EMITTERS.update({
    "PReLU": _prelu,
    "SELU": _unary("Selu", alpha=1.6732632423543772, gamma=1.0507009873554805),
    "CELU": _unary("Celu", alpha=lambda m: float(m.alpha)),
    "GELU": _gelu, "SiLU": _silu, "Mish": _mish, "Softplus": _softplus, "Softsign": _unary("Softsign"),
    "Hardtanh": _hardtanh, "Hardsigmoid": _unary("HardSigmoid", alpha=1 / 6, beta=0.5),
    "Hardswish": _unary("HardSwish"), "LogSoftmax": _unary("LogSoftmax", axis=lambda m: int(m.dim)),
})


# -- normalization within each example ---------------------------------------------------------------------

def _scale_and_shift(g, layer, prefix, x, shape, count):
    """(weight, bias) initializers of ``count`` entries: the layer's, or ones and zeros without them."""
    weight = layer.weight.data if layer.weight is not None else np.ones(count, np.float32)
    bias = layer.bias.data if layer.bias is not None else np.zeros(count, np.float32)
    return g.constant(weight, _key(prefix, "weight")), g.constant(bias, _key(prefix, "bias"))


def _instance_norm(g, layer, prefix, x, shape):
    if layer.track_running_stats:  # evaluation with running statistics: batch norm's formula
        return _batch_norm(g, layer, prefix, x, shape)
    scale, bias = _scale_and_shift(g, layer, prefix, x, shape, layer.num_features)
    return g.node("InstanceNormalization", [x, scale, bias], prefix or "instance_norm",
                  epsilon=float(layer.eps))


def _group_norm(g, layer, prefix, x, shape):
    # (N, C, *S) as (N, G, C/G * prod(S)): instance norm of that normalizes each group, then the
    # per-channel weight and bias on the original shape (ONNX's GroupNormalization took per-group scales
    # before opset 21).
    G, C = layer.num_groups, layer.num_channels
    grouped = g.reshape(x, [0, G, -1], _key(prefix, "groups"))
    ones, zeros = g.constant(np.ones(G), _key(prefix, "one")), g.constant(np.zeros(G), _key(prefix, "zero"))
    normalized = g.node("InstanceNormalization", [grouped, ones, zeros], _key(prefix, "normalized"),
                        epsilon=float(layer.eps))
    y = g.reshape(normalized, [0, *shape[1:]], _key(prefix, "x_hat"))
    if layer.weight is None:
        return y
    view = (C, *(1,) * (len(shape) - 2))
    y = g.node("Mul", [y, g.constant(layer.weight.data.reshape(view), _key(prefix, "weight"))],
               _key(prefix, "scaled"))
    return g.node("Add", [y, g.constant(layer.bias.data.reshape(view), _key(prefix, "bias"))],
                  prefix or "group_norm")


def _layer_norm(g, layer, prefix, x, shape):
    if _opset(g) < 17:
        raise TypeError(f"export: {prefix} ({layer!r}) needs ONNX's LayerNormalization, opset 17 or later; "
                        f"received opset={_opset(g)}.")
    inputs = [x]
    if layer.weight is not None:
        inputs.append(g.constant(layer.weight.data, _key(prefix, "weight")))
        if layer.bias is not None:
            inputs.append(g.constant(layer.bias.data, _key(prefix, "bias")))
    else:  # LayerNormalization needs a scale
        inputs.append(g.constant(np.ones(layer.normalized_shape), _key(prefix, "one")))
    return g.node("LayerNormalization", inputs, prefix or "layer_norm", axis=-len(layer.normalized_shape),
                  epsilon=float(layer.eps))


EMITTERS.update({"GroupNorm": _group_norm, "LayerNorm": _layer_norm, "InstanceNorm1d": _instance_norm,
                 "InstanceNorm2d": _instance_norm, "InstanceNorm3d": _instance_norm})


# -- upsampling and rearranging ----------------------------------------------------------------------------

def _integer_ratios(layer, spatial, out):
    """True when every axis grows by a whole factor k that is also the coordinates' scale: then ONNX's
    Resize computes PyTorch's coordinates from a scale that float32 holds exactly."""
    if any(m % n for n, m in zip(spatial, out, strict=True)):
        return False
    if layer.scale_factor is None or layer.recompute_scale_factor:
        return True
    factors = per_axis(layer.scale_factor, len(spatial), "scale_factor", numbers.Real, repr(layer))
    return all(float(f) == m // n for f, n, m in zip(factors, spatial, out, strict=True))


def _resample_by_gathers(g, layer, prefix, x, shape):
    """Per axis, Gathers of the positions cnnkit (and PyTorch) read, weighted and summed for linear: the
    exact resampling at the export's fixed size, whatever the sizes, factors and rounding."""
    plan = sampling_plan(shape[2:], layer.size, layer.scale_factor, layer.mode, layer.align_corners,
                         layer.recompute_scale_factor)
    y = x
    for axis, taps in enumerate(plan):
        view = [-1] + [1] * (len(shape) - 3 - axis)  # the weights along this axis, broadcast over the rest
        parts = []
        for k, (index, weight) in enumerate(taps):
            name = _key(prefix, f"axis{axis}_tap{k}")
            part = g.node("Gather", [y, g.constant(index, name + "_index", np.int64)], name, axis=2 + axis)
            if weight is not None:
                part = g.node("Mul", [part, g.constant(weight.reshape(view), name + "_weight")], name + "_w")
            parts.append(part)
        y = parts[0] if len(parts) == 1 else g.node("Add", parts, _key(prefix, f"axis{axis}"))
    return y if y != x else g.node("Identity", [x], prefix or "upsample")


def _upsample(g, layer, prefix, x, shape):
    spatial, out = shape[2:], layer.output_shape(shape)[2:]
    if not _integer_ratios(layer, spatial, out):
        return _resample_by_gathers(g, layer, prefix, x, shape)
    factors = [m / n for n, m in zip(spatial, out, strict=True)]
    scales = g.constant([1.0, 1.0, *factors], _key(prefix, "scales"))
    if layer.mode.startswith("nearest"):
        exact = layer.mode == "nearest-exact"
        attrs = dict(mode="nearest", coordinate_transformation_mode="half_pixel" if exact else "asymmetric",
                     nearest_mode="round_prefer_ceil" if exact else "floor")
    else:  # half_pixel is PyTorch's rule for align_corners=False at every output size
        attrs = dict(mode="linear", coordinate_transformation_mode="align_corners" if layer.align_corners
                     else "half_pixel")
    return g.node("Resize", [x, "", scales], prefix or "upsample", **attrs)


def _pixel_shuffle(g, layer, prefix, x, shape):
    r = layer.upscale_factor
    *lead, C, H, W = shape
    if len(shape) == 4:
        return g.node("DepthToSpace", [x], prefix or "pixel_shuffle", blocksize=r, mode="CRD")
    k = len(lead)
    blocks = g.reshape(x, [0, *lead[1:], C // (r * r), r, r, H, W], _key(prefix, "blocks"))
    moved = g.node("Transpose", [blocks], _key(prefix, "transpose"),
                   perm=[*range(k), k, k + 3, k + 1, k + 4, k + 2])
    return g.reshape(moved, [0, *lead[1:], C // (r * r), H * r, W * r], prefix or "pixel_shuffle")


def _pixel_unshuffle(g, layer, prefix, x, shape):
    r = layer.downscale_factor
    *lead, C, H, W = shape
    k = len(lead)
    blocks = g.reshape(x, [0, *lead[1:], C, H // r, r, W // r, r], _key(prefix, "blocks"))
    moved = g.node("Transpose", [blocks], _key(prefix, "transpose"),
                   perm=[*range(k), k, k + 2, k + 4, k + 1, k + 3])
    return g.reshape(moved, [0, *lead[1:], C * r * r, H // r, W // r], prefix or "pixel_unshuffle")


def _channel_shuffle(g, layer, prefix, x, shape):
    N, C, *S = shape
    grid = g.reshape(x, [0, layer.groups, C // layer.groups, *S], _key(prefix, "grid"))
    swapped = g.node("Transpose", [grid], _key(prefix, "transpose"), perm=[0, 2, 1, *range(3, len(S) + 3)])
    return g.reshape(swapped, [0, C, *S], prefix or "channel_shuffle")


def _unflatten(g, layer, prefix, x, shape):
    if layer.dim % len(shape) == 0:
        raise TypeError(f"export: {prefix} ({layer!r}) splits the batch axis, which ONNX export keeps "
                        f"dynamic.")
    return g.reshape(x, [0, *layer.output_shape(shape)[1:]], prefix or "unflatten")


EMITTERS.update({"Upsample": _upsample, "UpsamplingNearest2d": _upsample, "UpsamplingBilinear2d": _upsample,
                 "PixelShuffle": _pixel_shuffle, "PixelUnshuffle": _pixel_unshuffle,
                 "ChannelShuffle": _channel_shuffle, "Unflatten": _unflatten})
