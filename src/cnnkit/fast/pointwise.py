"""1x1 convolutions as one matrix multiply, with no columns at all, on NCHW or channels-last memory.

Speeds up: :func:`cnnkit.reference.conv.convnd` for layers with 1x1 filters and no padding (ResNet's
bottlenecks, MobileNet's pointwise layers): their im2col is the input itself, or with a stride (ResNet's
downsampling shortcuts) the input's pixels at the strided positions, copied once.
- NCHW memory: per image and group, (K/G, C/G) @ (C/G, H*W) -> NCHW output.
- channels-last memory (groups=1; :mod:`cnnkit.layout`): ONE (N*H*W, C) @ (C, K) for the whole
  batch, whose output is channels-last too, so a chain of such layers never transposes.
"""

from __future__ import annotations

import math

import numpy as np

from cnnkit.fast.tuning import COLUMNS_PER_PART
from cnnkit.geometry import conv_setup
from cnnkit.layout import channels_last, is_channels_last
from cnnkit.runtime import batch_parts, elementwise_threads, over_parts


def fits(weight_shape, stride, pads) -> bool:
    """True for 1x1 filters and no padding: the convolution is a matrix multiply over channels."""
    return all(f == 1 for f in weight_shape[2:]) and not any(lo or hi for lo, hi in pads)


def _taken(stride, out):
    """The input pixels a 1x1 layer reads: every ``stride``-th, ``out`` of them per axis."""
    return (..., *(slice(None, (n - 1) * s + 1, s) for s, n in zip(stride, out, strict=True)))


def convnd(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error", *, name="conv"):
    """As :func:`cnnkit.reference.conv.convnd` for 1x1 filters and no padding (see :func:`fits`)."""
    stride, _, out, _ = conv_setup(x.shape, weight.shape, stride, padding, dilation, groups, fit, name=name)
    x_shape = x.shape
    if x.shape[2:] != tuple(out):  # strided (or cropped): the pixels it reads, as one array
        x = (channels_last if is_channels_last(x) else np.ascontiguousarray)(x[_taken(stride, out)])
    N, C = x.shape[:2]
    K, G = weight.shape[0], groups
    w = weight.reshape(G, K // G, C // G)
    rows = None
    if G == 1 and is_channels_last(x):  # ONE (N*S, C) @ (C, K), channels-last output
        rows = np.moveaxis(x, 1, -1).reshape(-1, C)  # a view
        y_rows = rows @ w[0].T
        if bias is not None:
            y_rows += bias
        y = np.moveaxis(y_rows.reshape(N, *out, K), -1, 1)
    else:  # a 1x1 convolution is already a matrix multiply over channels: per image, in batch parts
        L = math.prod(out)
        y = np.empty((N, K, *out), x.dtype)
        x_g, y_g = x.reshape(N, G, C // G, L), y.reshape(N, G, K // G, L)
        shift = None if bias is None else bias.reshape(G, K // G, 1)
        parts = batch_parts(N, K * L, COLUMNS_PER_PART, elementwise_threads())

        def work(i):  # on the elementwise threads, each with a one-thread BLAS; the bias while in cache
            np.matmul(w, x_g[parts[i]], out=y_g[parts[i]])
            if shift is not None:
                y_g[parts[i]] += shift

        over_parts(work, len(parts))
    return y, dict(x=x, rows=rows, weight=weight, groups=G, has_bias=bias is not None, x_shape=x_shape,
                   stride=stride)


def convnd_backward(dy, cache, *, input_grad=True):
    """dy (N, K, *S) -> (dx, dweight, dbias): dW = dy @ x^T and dx = W^T @ dy, in the forward's layout
    (zeros at the pixels a strided layer skips)."""
    dx, dw, db = _backward(dy, cache, input_grad)
    if dx is not None and dx.shape != cache["x_shape"]:
        N, C, *spatial = cache["x_shape"]
        full = np.moveaxis(np.zeros((N, *spatial, C), dx.dtype), -1, 1) if is_channels_last(dx) else \
            np.zeros(cache["x_shape"], dx.dtype)
        full[_taken(cache["stride"], dy.shape[2:])] = dx
        dx = full
    return dx, dw, db


def _backward(dy, cache, input_grad):
    x, weight, G = cache["x"], cache["weight"], cache["groups"]
    N, K, *out = dy.shape
    C = x.shape[1]
    db = dy.sum(axis=(0, *range(2, dy.ndim))) if cache["has_bias"] else None
    if cache["rows"] is not None:  # channels-last: dW = dy^T @ rows, dx = dy @ W, channels-last
        dy_rows = np.moveaxis(dy, 1, -1).reshape(-1, K)  # free when dy is channels-last too, else a copy
        dw = (dy_rows.T @ cache["rows"]).reshape(weight.shape)
        dx = np.moveaxis((dy_rows @ weight.reshape(K, C)).reshape(N, *out, C), -1, 1) if input_grad else None
        return dx, dw, db
    L = math.prod(out)
    dy_g, cols = dy.reshape(N, G, K // G, L), x.reshape(N, G, C // G, L)
    dw = np.matmul(dy_g, cols.swapaxes(-1, -2)).sum(axis=0).reshape(weight.shape)
    w_t = weight.reshape(G, K // G, C // G).transpose(0, 2, 1)
    dx = np.matmul(w_t, dy_g).reshape(x.shape) if input_grad else None
    return dx, dw, db
