"""Depthwise 2-D convolution (groups = C = K): one F x F filter per channel, forward and backward tap by tap.

With one input channel per group there is no sum over channels for a matrix multiply to do: every output
is F*F multiply-adds. The kernel does them as F*F passes, each over one slice of the flattened padded
channels (cnnkit.fast.flat: a single long run per channel instead of H_out short rows, 2-3x faster
per element, measured), with the output on the flat module's wide grid:

    y_wide += w_t * x_flat[slice_t]          (forward)
    dx_flat[slice_t] += w_t * dy_wide        dweight[t] = dy_wide . x_flat[slice_t]   (backward; a BLAS dot)

The batch is cut into (image, block of channels) items of about ``DEPTHWISE_ITEM_ELEMENTS`` numbers
(cnnkit.fast.tuning) that stay in the core's cache through all F*F passes, and the items run on the
:mod:`cnnkit.runtime` threads
(NumPy releases the GIL inside its loops). Each item writes only its own slice of the outputs and its own
row of dweight partial sums, so results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from cnnkit.fast import flat
from cnnkit.fast.tuning import DEPTHWISE_ITEM_ELEMENTS
from cnnkit.geometry import conv_setup
from cnnkit.runtime import CHUNK_BYTES, batch_slices, over_batch, workspace


def _items(N, C, plan):
    """(image, channel block) pairs of about DEPTHWISE_ITEM_ELEMENTS padded numbers each."""
    block = max(1, min(C, DEPTHWISE_ITEM_ELEMENTS // plan["flat"]))
    return [(n, channels) for n in range(N) for channels in batch_slices(C, block)]


def _padded(x, n, block, plan, pads):
    """x[n, block] zero-padded into this thread's scratch, as (channels, flat) rows."""
    buffer = workspace("depthwise.x", (block.stop - block.start, plan["flat"]), x.dtype)
    return flat.pad_into(buffer, x[n, block], plan, pads)


def depthwise_conv2d(x, weight, bias, stride, dilation, pads, out):
    """Depthwise convolution of x (N, C, H, W) with weight (C, 1, F_h, F_w) -> y (N, C, H_out, W_out).

    ``stride`` and ``dilation`` are pairs, ``pads`` ((top, bottom), (left, right)) and ``out`` (H_out, W_out)
    as :func:`cnnkit.geometry.conv_geometry` computes them. Returns ``(y, cache)``.

    >>> x, w = np.ones((1, 2, 4, 4), np.float32), np.ones((2, 1, 3, 3), np.float32)
    >>> y, cache = depthwise_conv2d(x, w, None, (1, 1), (1, 1), ((1, 1), (1, 1)), (4, 4))
    >>> y[0, 0].tolist()
    [[4.0, 6.0, 6.0, 4.0], [6.0, 9.0, 9.0, 6.0], [6.0, 9.0, 9.0, 6.0], [4.0, 6.0, 6.0, 4.0]]
    """
    N, C = x.shape[:2]
    plan = flat.plan(x.shape[2:], weight.shape[2:], stride, dilation, pads, out)
    items = _items(N, C, plan)
    taps = weight.reshape(C, -1, 1)  # (C, F*F, 1): one scalar per channel and tap, broadcast along a row
    shift = np.zeros((C, 1, 1), x.dtype) if bias is None else bias.reshape(C, 1, 1)
    y = np.empty((N, C, *out), x.dtype)

    def work(chunk):
        for n, block in items[chunk]:
            xp, w = _padded(x, n, block, plan, pads), taps[block]
            acc = workspace("depthwise.acc", (len(w), plan["wide"]), x.dtype)
            product = workspace("depthwise.product", acc.shape, x.dtype)
            np.multiply(flat.tap(xp, plan["offsets"][0], plan), w[:, 0], out=acc)
            for t, offset in enumerate(plan["offsets"][1:], 1):
                np.multiply(flat.tap(xp, offset, plan), w[:, t], out=product)
                acc += product
            np.add(flat.from_wide(acc, plan), shift[block], out=y[n, block])  # bias, scratch columns dropped

    over_batch(work, len(items), CHUNK_BYTES)  # CHUNK_BYTES per item: each item is its own chunk
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
    N, C = x.shape[:2]
    plan = flat.plan(x.shape[2:], weight.shape[2:], cache["stride"], cache["dilation"], pads, out)
    items, offsets = _items(N, C, plan), plan["offsets"]
    taps = weight.reshape(C, -1, 1)
    dx = np.empty(x.shape, dy.dtype) if input_grad else None
    dw_images = np.empty((N, C, len(offsets), 1, 1), dy.dtype)  # per-image partial sums, added at the end

    def work(chunk):
        for n, block in items[chunk]:
            xp, w = _padded(x, n, block, plan, pads), taps[block]
            dy_wide = flat.to_wide(workspace("depthwise.dy", (len(w), out[0], plan["row"]), dy.dtype),
                                   dy[n, block], plan)[:, None]  # (c, 1, wide)
            for t, offset in enumerate(offsets):  # dweight[c, t] = dy_wide[c] . x_flat[c, slice_t]
                np.matmul(dy_wide, flat.tap(xp, offset, plan)[:, :, None], out=dw_images[n, block, t])
            if not input_grad:
                continue
            dxp = workspace("depthwise.x", xp.shape, dy.dtype)  # x's scratch: dead now
            dxp.fill(0)
            product = workspace("depthwise.product", (len(w), plan["wide"]), dy.dtype)
            for t, offset in enumerate(offsets):
                np.multiply(dy_wide[:, 0], w[:, t], out=product)
                flat.tap(dxp, offset, plan)[...] += product
            dx[n, block] = flat.unpad(dxp, plan, pads, x.shape[2:])

    over_batch(work, len(items), CHUNK_BYTES)
    db = np.einsum("nchw->c", dy) if cache["has_bias"] else None  # 3x faster than dy.sum(axis=(0, 2, 3))
    return dx, dw_images.sum(axis=0).reshape(weight.shape), db


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error", *, name="conv2d"):
    """As :func:`cnnkit.reference.conv.convnd` for 2-D layers with groups = in_channels = out_channels."""
    stride, dilation, out, pads = conv_setup(x.shape, weight.shape, stride, padding, dilation, groups, fit,
                                             name=name)
    return depthwise_conv2d(x, weight, bias, stride, dilation, pads, out)


conv2d_backward = depthwise_conv2d_backward
