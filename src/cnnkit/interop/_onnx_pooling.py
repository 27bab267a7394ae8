"""ONNX export of adaptive pooling and the padding layers, added to ``cnnkit.interop.onnx.EMITTERS``.

ONNX has no adaptive pool, but the export fixes the spatial sizes, so the windows are known:
- an adaptive *average* is a matrix per axis (:func:`cnnkit.reference.adaptive.averaging_matrix`), one
  ``MatMul`` on the last axis (the other axes are moved there and back with ``Transpose``);
- an adaptive *max* gathers every window from the flattened planes (``Gather`` with the window indices,
  narrower windows repeating a position) and takes ``ReduceMax`` over each window.
Padding is ``Pad`` for a constant, and a ``Gather`` per axis with the mode's source indices for reflect,
replicate and circular (any opset, negative pads included); a convolution with such a ``padding_mode`` is
that padding followed by its ``Conv`` without padding. Average pooling with ``divisor_override`` is the
full-window mean (``count_include_pad``, every pad explicit) times area / divisor; max pooling with
``return_indices`` and max unpooling have two inputs or outputs, which this exporter does not write.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from cnnkit.interop.onnx import DEFAULT_OPSET, EMITTERS, _key, _pads, _window_pads
from cnnkit.reference.adaptive import adaptive_output_size, averaging_matrix, window_indices
from cnnkit.reference.padding import source_indices


def _adaptive_avg(g, layer, prefix, x, shape):
    spatial = shape[2:]
    out = adaptive_output_size(spatial, layer.output_size)
    rank = len(shape)
    y = x
    for axis, (n, m) in enumerate(zip(spatial, out, strict=True)):
        if n == m:
            continue  # the identity on this axis
        k = 2 + axis
        perm = list(range(rank))
        perm[k], perm[-1] = perm[-1], perm[k]  # a swap: its own inverse
        moved = y if k == rank - 1 else g.node("Transpose", [y], _key(prefix, f"to_last{axis}"), perm=perm)
        matrix = g.constant(averaging_matrix(n, m).T, _key(prefix, f"average{axis}"))
        y = g.node("MatMul", [moved, matrix], _key(prefix, f"mean{axis}"))
        if k != rank - 1:
            y = g.node("Transpose", [y], _key(prefix, f"back{axis}"), perm=perm)
    return y if y != x else g.node("Identity", [x], prefix or "adaptive_avg_pool")


def _adaptive_max(g, layer, prefix, x, shape):
    if getattr(layer, "return_indices", False):
        raise TypeError(f"export: {prefix} ({layer!r}) returns indices too; ONNX export takes one output per "
                        f"layer (use return_indices=False).")
    spatial = shape[2:]
    out = adaptive_output_size(spatial, layer.output_size)
    taps = window_indices(spatial, out)  # (*S_out, T) flat positions in each plane
    flat = g.reshape(x, [0, shape[1], math.prod(spatial)], _key(prefix, "planes"))
    windows = g.node("Gather", [flat, g.constant(taps.reshape(-1), _key(prefix, "windows"), np.int64)],
                     _key(prefix, "gather"), axis=2)
    windows = g.reshape(windows, [0, shape[1], *out, taps.shape[-1]], _key(prefix, "per_window"))
    if getattr(g, "opset", DEFAULT_OPSET) >= 18:  # opset 18 moved ReduceMax's axes to an input
        axes = g.constant([-1], _key(prefix, "axes"), np.int64)
        return g.node("ReduceMax", [windows, axes], prefix or "adaptive_max_pool", keepdims=0)
    return g.node("ReduceMax", [windows], prefix or "adaptive_max_pool", axes=[-1], keepdims=0)


def _pad(g, layer, prefix, x, shape):
    return _pad_by(g, layer.padding, layer.mode, getattr(layer, "value", 0.0), prefix, x, shape)


def _pad_by(g, padding, mode, value, prefix, x, shape):
    if mode == "constant":
        pads = [0, 0, *(lo for lo, _ in padding), 0, 0, *(hi for _, hi in padding)]
        inputs = [x, g.constant(pads, _key(prefix, "pads"), np.int64),
                  g.constant(value, _key(prefix, "value"))]
        return g.node("Pad", inputs, prefix or "pad", mode="constant")
    y = x
    for axis, (n, (lo, hi)) in enumerate(zip(shape[2:], padding, strict=True)):
        src = source_indices(n, lo, hi, mode)
        if np.array_equal(src, np.arange(n)):
            continue
        y = g.node("Gather", [y, g.constant(src, _key(prefix, f"sources{axis}"), np.int64)],
                   _key(prefix, f"pad{axis}"), axis=2 + axis)
    return y if y != x else g.node("Identity", [x], prefix or "pad")


def _conv_with_mode(plain):
    def emit(g, layer, prefix, x, shape):
        mode = getattr(layer, "padding_mode", "zeros")
        if mode == "zeros":
            return plain(g, layer, prefix, x, shape)
        padded = _pad_by(g, layer.padding, mode, 0.0, _key(prefix, f"{mode}_pad"), x, shape)
        spatial = tuple(n + lo + hi for n, (lo, hi) in zip(shape[2:], layer.padding, strict=True))
        unpadded = copy.copy(layer)  # the same weights, convolving the padded input without padding
        unpadded.padding = ((0, 0),) * len(spatial)
        return plain(g, unpadded, prefix, padded, (*shape[:2], *spatial))
    return emit


for _nd in (1, 2, 3):
    EMITTERS[f"Conv{_nd}d"] = _conv_with_mode(EMITTERS[f"Conv{_nd}d"])
    EMITTERS[f"AdaptiveAvgPool{_nd}d"] = _adaptive_avg
    EMITTERS[f"AdaptiveMaxPool{_nd}d"] = _adaptive_max
    for _prefix in ("ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad", "CircularPad"):
        EMITTERS[f"{_prefix}{_nd}d"] = _pad


def _max_without_indices(plain):
    def emit(g, layer, prefix, x, shape):
        if getattr(layer, "return_indices", False):
            raise TypeError(f"export: {prefix} ({layer!r}) returns indices too; ONNX export takes one output "
                            f"per layer (use return_indices=False).")
        return plain(g, layer, prefix, x, shape)
    return emit


def _avg_with_override(plain):
    def emit(g, layer, prefix, x, shape):
        if getattr(layer, "divisor_override", None) is None:
            return plain(g, layer, prefix, x, shape)
        nd = len(shape) - 2
        pads = _window_pads(layer, shape[2:], dilation=(1,) * nd)
        mean = g.node("AveragePool", [x], _key(prefix, "mean"), kernel_shape=list(layer.kernel_size),
                      strides=list(layer.stride), pads=_pads(pads), count_include_pad=1)
        scale = g.constant(math.prod(layer.kernel_size) / layer.divisor_override, _key(prefix, "scale"))
        return g.node("Mul", [mean, scale], prefix or "avg_pool")
    return emit


_max, _avg = _max_without_indices(EMITTERS["MaxPool2d"]), _avg_with_override(EMITTERS["AvgPool2d"])
for _nd in (1, 2, 3):
    EMITTERS[f"MaxPool{_nd}d"], EMITTERS[f"AvgPool{_nd}d"] = _max, _avg
    EMITTERS[f"LPPool{_nd}d"] = EMITTERS["LPPool2d"]
    EMITTERS[f"ConvTranspose{_nd}d"] = EMITTERS["ConvTranspose2d"]
EMITTERS["BatchNorm3d"] = EMITTERS["BatchNorm2d"]
