"""Depthwise 2-D convolution (groups = C = K): one F x F filter per channel, computed tap by tap.

With one input channel per group, im2col's matrix multiply degenerates into C * N products of a (1, F*F)
row with an (F*F, L) matrix: tiny multiplies, a 9x larger cache, and a backward of C small tensordots. Here
each of the F*F taps is instead one broadcast multiply-add over a shifted window of the input:

    y[n, c] = sum over taps (i, j) of  w[c, i, j] * x_padded[n, c, window(i, j)]

and backward reads the same sum backwards: ``dx[window(i, j)] += w[c, i, j] * dy`` and
``dw[c, i, j] = sum_{n, h, w} dy * x_padded[window(i, j)]``. The forward cache is the padded input (not
the F*F times larger columns). The batch is processed a few images at a time so that the running sum
stays in cache between taps.
"""

from __future__ import annotations

import itertools

import numpy as np

from cnnkit.functional.workspace import workspace

_CHUNK_ELEMENTS = 1 << 18  # about 1 MB of float32 output per chunk: fits in L2 with its temporary


def _window(offset, dilation, stride, out):
    """The input rows and columns that tap (i, j) reads for every output position: two strided slices."""
    return (..., *(slice(o * d, o * d + s * (n - 1) + 1, s)
                   for o, d, s, n in zip(offset, dilation, stride, out, strict=True)))


def _padded(x, pads):
    (top, bottom), (left, right) = pads
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + top + bottom, W + left + right), x.dtype)
    xp[:, :, top:top + H, left:left + W] = x
    return xp


def depthwise_conv2d(x, weight, bias, stride, dilation, pads, out):
    """Depthwise convolution: x (N, C, H, W), weight (C, 1, F_h, F_w), bias (C,) or None -> y (N, C, *out).

    ``stride``, ``dilation`` are per-axis tuples, ``pads`` (before, after) pairs and ``out`` the output
    size, all from :func:`cnnkit.functional.conv.conv_geometry`. Returns ``(y, cache)``.

    >>> y, _ = depthwise_conv2d(np.ones((1, 2, 4, 4), np.float32), np.ones((2, 1, 3, 3), np.float32),
    ...                         None, (1, 1), (1, 1), ((1, 1), (1, 1)), (4, 4))
    >>> y.shape, float(y[0, 0, 1, 1]), float(y[0, 0, 0, 0])
    ((1, 2, 4, 4), 9.0, 4.0)
    """
    N, C = x.shape[:2]
    xp = _padded(x, pads)
    taps = list(itertools.product(*map(range, weight.shape[2:])))
    w = weight.reshape(C, -1, 1, 1)  # (C, taps, 1, 1): one scalar per channel and tap, broadcast over H, W
    y = np.empty((N, C, *out), x.dtype)
    chunk = max(1, _CHUNK_ELEMENTS // y[0].size)
    for n in range(0, N, chunk):
        y_n, x_n = y[n:n + chunk], xp[n:n + chunk]
        product = workspace("depthwise.product", y_n.shape, x.dtype)
        for t, offset in enumerate(taps):
            if t == 0:
                np.multiply(x_n[_window(offset, dilation, stride, out)], w[:, t], out=y_n)
            else:
                np.multiply(x_n[_window(offset, dilation, stride, out)], w[:, t], out=product)
                y_n += product
    if bias is not None:
        y += bias.reshape(C, 1, 1)
    cache = dict(algorithm="depthwise", xp=xp, weight=weight, stride=stride, dilation=dilation, pads=pads,
                 has_bias=bias is not None)
    return y, cache


def depthwise_conv2d_backward(dy, cache):
    """dy (N, C, *out) -> (dx, dweight, dbias); dbias is None when the forward had no bias."""
    xp, weight, stride, dilation = cache["xp"], cache["weight"], cache["stride"], cache["dilation"]
    N, C, *out = dy.shape
    taps = list(itertools.product(*map(range, weight.shape[2:])))
    w = weight.reshape(C, -1, 1, 1)
    windows = [_window(offset, dilation, stride, out) for offset in taps]
    # dweight: per tap, a dot product over batch and positions, for every channel at once.
    dw = np.stack([np.einsum("nchw,nchw->c", dy, xp[window]) for window in windows], axis=1)
    db = dy.sum(axis=(0, 2, 3)) if cache["has_bias"] else None

    dxp = np.zeros(xp.shape, dy.dtype)
    chunk = max(1, _CHUNK_ELEMENTS // dy[0].size)
    for n in range(0, N, chunk):
        dy_n, dx_n = dy[n:n + chunk], dxp[n:n + chunk]
        product = workspace("depthwise.product", dy_n.shape, dy.dtype)
        for t, window in enumerate(windows):
            np.multiply(dy_n, w[:, t], out=product)
            dx_n[window] += product
    (top, bottom), (left, right) = cache["pads"]
    dx = dxp[:, :, top:dxp.shape[2] - bottom, left:dxp.shape[3] - right]
    return np.ascontiguousarray(dx), dw.reshape(weight.shape).astype(dy.dtype, copy=False), db
