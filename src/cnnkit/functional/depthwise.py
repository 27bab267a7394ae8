"""Depthwise 2-D convolution (groups = C = K): one F x F filter per channel, forward and backward tap by tap.

With one input channel per group there is no sum over channels for a matrix multiply to do: every output
is F*F multiply-adds. The kernel does them as F*F passes over *flattened* padded channels. Keep the output
on a grid R columns wide, R >= W_out (columns past W_out are scratch); then with strides (S_h, S_w) and
dilation (D_h, D_w), tap (i, k) of output (h, j) reads

    x_flat[S_w * (h * R + j) + i * D_h * W_p + k * D_w]       (R = S_h * W_p / S_w, W_p a multiple of S_w)

which for each tap is ONE slice of x_flat with a fixed offset and step S_w: a single long run per
channel instead of H_out short rows -- what NumPy's loops are fast at (2-3x faster per element than the
window slices of the 2-D image, measured). Backward reads the same slices the other way round, with
dy placed on the wide grid and zeros in its scratch columns, so that they add nothing:

    dx_flat[slice_t] += w_t * dy_wide          dweight[t] = dy_wide . x_flat[slice_t]   (a BLAS dot product)

The batch is cut into (image, block of channels) items of about ``ITEM_ELEMENTS`` numbers that stay in
the core's cache through all F*F passes, and the items run on :func:`cnnkit.functional.batching` threads
(NumPy releases the GIL inside its loops). Each item writes only its own slice of the outputs and its own
row of dweight partial sums, so results do not depend on the thread count.
"""

from __future__ import annotations

import itertools

import numpy as np

from cnnkit.functional.batching import CHUNK_BYTES, over_batch
from cnnkit.functional.workspace import workspace

ITEM_ELEMENTS = 1 << 19  # padded input numbers per item (2 MB of float32): measured best on (8, 64, 56, 56)


def _plan(x_shape, weight_shape, stride, dilation, pads, out):
    """Geometry shared by forward and backward: padded sizes, the wide grid, tap offsets, work items."""
    N, C, H, W = x_shape
    (top, bottom), (left, right) = pads
    (S_h, S_w), (D_h, D_w) = stride, dilation
    Hp, Wp = H + top + bottom, -(-(W + left + right) // S_w) * S_w  # extra zero columns: W_p % S_w == 0
    R = S_h * Wp // S_w
    offsets = [i * D_h * Wp + k * D_w for i, k in itertools.product(*map(range, weight_shape[2:]))]
    wide = out[0] * R
    flat = max(Hp * Wp, max(offsets) + S_w * (wide - 1) + 1)  # every tap's slice fits in the scratch channel
    block = max(1, min(C, ITEM_ELEMENTS // flat))
    blocks = [slice(c, min(c + block, C)) for c in range(0, C, block)]
    return dict(padded=(Hp, Wp), row=R, step=S_w, offsets=offsets, wide=wide, flat=flat,
                items=[(n, b) for n in range(N) for b in blocks])


def _padded_channels(x, n, block, plan, pads, dtype):
    """x[n, block] zero-padded into this thread's scratch, as (channels, flat) rows."""
    (Hp, Wp), ((top, _), (left, _)) = plan["padded"], pads
    H, W = x.shape[2:]
    xp = workspace("depthwise.x", (block.stop - block.start, plan["flat"]), dtype)
    image = xp[:, :Hp * Wp].reshape(-1, Hp, Wp)
    image[:, :top] = 0  # only the border is zeroed: the interior is overwritten next
    image[:, top + H:] = 0
    image[:, top:top + H, :left] = 0
    image[:, top:top + H, left + W:] = 0
    xp[:, Hp * Wp:] = 0
    image[:, top:top + H, left:left + W] = x[n, block]
    return xp


def _tap(xp, offset, plan):
    """The slice of flat channels that one tap reads for the whole wide output grid: (channels, wide)."""
    return xp[:, offset:offset + plan["step"] * (plan["wide"] - 1) + 1:plan["step"]]


def depthwise_conv2d(x, weight, bias, stride, dilation, pads, out):
    """Depthwise convolution of x (N, C, H, W) with weight (C, 1, F_h, F_w) -> y (N, C, H_out, W_out).

    ``stride`` and ``dilation`` are pairs, ``pads`` ((top, bottom), (left, right)) and ``out`` (H_out, W_out)
    as :func:`cnnkit.functional.conv.conv_geometry` computes them. Returns ``(y, cache)``.

    >>> x, w = np.ones((1, 2, 4, 4), np.float32), np.ones((2, 1, 3, 3), np.float32)
    >>> y, cache = depthwise_conv2d(x, w, None, (1, 1), (1, 1), ((1, 1), (1, 1)), (4, 4))
    >>> y[0, 0].tolist()
    [[4.0, 6.0, 6.0, 4.0], [6.0, 9.0, 9.0, 6.0], [6.0, 9.0, 9.0, 6.0], [4.0, 6.0, 6.0, 4.0]]
    """
    N, C = x.shape[:2]
    plan = _plan(x.shape, weight.shape, stride, dilation, pads, out)
    taps = weight.reshape(C, -1, 1)  # (C, F*F, 1): one scalar per channel and tap, broadcast along a row
    shift = np.zeros((C, 1, 1), x.dtype) if bias is None else bias.reshape(C, 1, 1)
    y = np.empty((N, C, *out), x.dtype)

    def work(items):
        for n, block in plan["items"][items]:
            xp, w = _padded_channels(x, n, block, plan, pads, x.dtype), taps[block]
            acc = workspace("depthwise.acc", (len(w), plan["wide"]), x.dtype)
            product = workspace("depthwise.product", acc.shape, x.dtype)
            np.multiply(_tap(xp, plan["offsets"][0], plan), w[:, 0], out=acc)
            for t, offset in enumerate(plan["offsets"][1:], 1):
                np.multiply(_tap(xp, offset, plan), w[:, t], out=product)
                acc += product
            wide = acc.reshape(len(w), out[0], plan["row"])
            np.add(wide[:, :, :out[1]], shift[block], out=y[n, block])  # bias; the scratch columns dropped

    over_batch(work, len(plan["items"]), CHUNK_BYTES)  # CHUNK_BYTES per item: each item is its own chunk
    cache = dict(algorithm="depthwise", x=x, x_shape=x.shape, weight=weight, stride=tuple(stride),
                 dilation=tuple(dilation), pads=pads, out=tuple(out), has_bias=bias is not None)
    return y, cache


def depthwise_conv2d_backward(dy, cache, *, input_grad=True):
    """dy (N, C, H_out, W_out) -> (dx, dweight, dbias) from :func:`depthwise_conv2d`'s cache.

    ``input_grad=False`` skips dx (returned as None). dbias is None when the forward had no bias.

    >>> x, w = np.ones((1, 2, 4, 4), np.float32), np.ones((2, 1, 3, 3), np.float32)
    >>> y, cache = depthwise_conv2d(x, w, None, (1, 1), (1, 1), ((1, 1), (1, 1)), (4, 4))
    >>> dx, dw, db = depthwise_conv2d_backward(np.ones_like(y), cache)
    >>> float(dx[0, 0, 1, 1]), float(dw[0, 0, 1, 1]), db is None
    (9.0, 16.0, True)
    """
    x, weight, pads, out = cache["x"], cache["weight"], cache["pads"], cache["out"]
    N, C, H, W = x.shape
    plan = _plan(x.shape, weight.shape, cache["stride"], cache["dilation"], pads, out)
    (Hp, Wp), offsets = plan["padded"], plan["offsets"]
    (top, _), (left, _) = pads
    taps = weight.reshape(C, -1, 1)
    dx = np.empty(x.shape, dy.dtype) if input_grad else None
    dw_images = np.empty((N, C, len(offsets), 1, 1), dy.dtype)  # per-image partial sums, added at the end

    def work(items):
        for n, block in plan["items"][items]:
            xp, w = _padded_channels(x, n, block, plan, pads, dy.dtype), taps[block]
            dy_wide = workspace("depthwise.dy", (len(w), out[0], plan["row"]), dy.dtype)
            dy_wide[:, :, out[1]:] = 0  # scratch columns: zero, so they add nothing below
            dy_wide[:, :, :out[1]] = dy[n, block]
            dy_wide = dy_wide.reshape(len(w), 1, plan["wide"])
            for t, offset in enumerate(offsets):  # dweight[c, t] = dy_wide[c] . x_flat[c, slice_t]
                np.matmul(dy_wide, _tap(xp, offset, plan)[:, :, None], out=dw_images[n, block, t])
            if not input_grad:
                continue
            dxp = workspace("depthwise.x", xp.shape, dy.dtype)  # x's scratch: dead now
            dxp.fill(0)
            product = workspace("depthwise.product", (len(w), plan["wide"]), dy.dtype)
            for t, offset in enumerate(offsets):
                np.multiply(dy_wide[:, 0], w[:, t], out=product)
                _tap(dxp, offset, plan)[...] += product
            dx[n, block] = dxp[:, :Hp * Wp].reshape(-1, Hp, Wp)[:, top:top + H, left:left + W]

    over_batch(work, len(plan["items"]), CHUNK_BYTES)
    db = np.einsum("nchw->c", dy) if cache["has_bias"] else None  # 3x faster than dy.sum(axis=(0, 2, 3))
    return dx, dw_images.sum(axis=0).reshape(weight.shape), db
