"""ONNX export of adaptive pooling and the padding layers, added to ``cnnkit.interop.onnx.EMITTERS``.

ONNX has no adaptive pool, but the export fixes the spatial sizes, so the windows are known:
- an adaptive *average* is a matrix per axis (:func:`cnnkit.reference.adaptive.averaging_matrix`), one
  ``MatMul`` on the last axis (the other axes are moved there and back with ``Transpose``);
- an adaptive *max* gathers every window from the flattened planes (``Gather`` with the window indices,
  narrower windows repeating a position) and takes ``ReduceMax`` over each window.
Padding is ``Pad`` for a constant, and a ``Gather`` per axis with the mode's source indices for reflect,
replicate and circular (any opset, negative pads included).
"""

from __future__ import annotations

import math

import numpy as np

from cnnkit.interop.onnx import DEFAULT_OPSET, EMITTERS, _key
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
    if layer.mode == "constant":
        pads = [0, 0, *(lo for lo, _ in layer.padding), 0, 0, *(hi for _, hi in layer.padding)]
        inputs = [x, g.constant(pads, _key(prefix, "pads"), np.int64),
                  g.constant(layer.value, _key(prefix, "value"))]
        return g.node("Pad", inputs, prefix or "pad", mode="constant")
    y = x
    for axis, (n, (lo, hi)) in enumerate(zip(shape[2:], layer.padding, strict=True)):
        src = source_indices(n, lo, hi, layer.mode)
        if np.array_equal(src, np.arange(n)):
            continue
        y = g.node("Gather", [y, g.constant(src, _key(prefix, f"sources{axis}"), np.int64)],
                   _key(prefix, f"pad{axis}"), axis=2 + axis)
    return y if y != x else g.node("Identity", [x], prefix or "pad")


for _nd in (1, 2, 3):
    EMITTERS[f"AdaptiveAvgPool{_nd}d"] = _adaptive_avg
    EMITTERS[f"AdaptiveMaxPool{_nd}d"] = _adaptive_max
    for _prefix in ("ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad", "CircularPad"):
        EMITTERS[f"{_prefix}{_nd}d"] = _pad
