"""Backward of a depthwise 2-D convolution (groups = C = K): one F x F filter per channel, tap by tap.

With one input channel per group, im2col's backward for dx degenerates into C * N outer products
(F*F, 1) @ (1, L) followed by a col2im. Here each of the F*F taps is one broadcast pass instead:

    dx_padded[window(i, j)] += w[c, i, j] * dy        (a few images at a time, so dx stays in cache)

dweight keeps im2col's form, ``dy @ cols^T`` per channel over cache-sized batch parts, which measured
faster than a per-tap dot product (5.8 vs 8.6 ms on (8, 64, 56, 56)); the forward is im2col's
(cnnkit.functional.conv), as fast as a tap-by-tap sum there.
"""

from __future__ import annotations

import itertools

import numpy as np

from cnnkit.functional.workspace import workspace

_CHUNK_ELEMENTS = 1 << 18  # about 1 MB of float32 dy per chunk: fits in L2 with its temporary


def depthwise_conv2d_backward(dy, cache):
    """dy (N, C, *out) -> (dx, dweight, dbias) from im2col's forward cache (x, weight, geometry).

    >>> from cnnkit.functional.conv import conv2d
    >>> x, w = np.ones((1, 2, 4, 4), np.float32), np.ones((2, 1, 3, 3), np.float32)
    >>> y, cache = conv2d(x, w, padding=1, groups=2, algorithm="depthwise")
    >>> dx, dw, db = depthwise_conv2d_backward(np.ones_like(y), cache)
    >>> float(dx[0, 0, 1, 1]), float(dw[0, 0, 1, 1]), db is None
    (9.0, 16.0, True)
    """
    from cnnkit.functional.conv import _batch_parts, _columns, _window_slices  # (conv imports this module)

    weight, stride, dilation, pads = cache["weight"], cache["stride"], cache["dilation"], cache["pads"]
    N, C, *out = dy.shape
    F = weight.shape[2:]
    taps = list(itertools.product(*map(range, F)))
    db = dy.sum(axis=(0, 2, 3)) if cache["has_bias"] else None
    dy_g = dy.reshape(N, C, 1, -1)
    dw = np.zeros((C, 1, len(taps)), dy.dtype)
    for part in _batch_parts(N, C * len(taps) * dy_g.shape[-1]):
        cols = _columns(cache["x"][part], pads, F, stride, dilation, out, C)  # (n, C, taps, L), scratch
        dw += np.matmul(dy_g[part], cols.swapaxes(-1, -2)).sum(axis=0)

    w = weight.reshape(C, -1, 1, 1)  # (C, taps, 1, 1): one scalar per channel and tap, broadcast over H, W
    windows = [_window_slices(offset, dilation, stride, out) for offset in taps]
    dxp = workspace("depthwise.dxp", cache["padded_shape"], dy.dtype)
    dxp.fill(0)
    chunk = max(1, _CHUNK_ELEMENTS // dy[0].size)
    for n in range(0, N, chunk):  # a few images at a time, so that dx stays in cache between taps
        dy_n, dx_n = dy[n:n + chunk], dxp[n:n + chunk]
        product = workspace("depthwise.product", dy_n.shape, dy.dtype)
        for t, window in enumerate(windows):
            np.multiply(dy_n, w[:, t], out=product)
            dx_n[window] += product
    (top, bottom), (left, right) = pads
    dx = dxp[:, :, top:dxp.shape[2] - bottom, left:dxp.shape[3] - right].copy()  # a copy: dxp is scratch
    return dx, dw.reshape(weight.shape), db
