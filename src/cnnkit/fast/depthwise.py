"""Depthwise 2-D convolution (groups = C = K): one F x F filter per channel, forward and backward tap by tap.

With one input channel per group there is no sum over channels for a matrix multiply to do: every output
is F*F multiply-adds. The kernel does them as F*F passes, each over one slice of the flattened padded
channels (cnnkit.fast.flat: a single long run per channel instead of H_out short rows, 2-3x faster
per element, measured), with the output on the flat module's wide grid:

    y_wide += w_t * x_flat[slice_t]          (forward)
    dx_flat[slice_t] += w_t * dy_wide        dweight[t] = dy_wide . x_flat[slice_t]   (backward; a BLAS dot)

The N * C (image, channel) planes are cut into blocks of about ``DEPTHWISE_ITEM_ELEMENTS`` padded numbers
(cnnkit.fast.tuning) that stay in the core's cache through all F*F passes -- a block may span images, so
small maps (7 x 7 with 960 channels) make a few large blocks instead of one small item per image -- and
the blocks run on the :mod:`cnnkit.runtime` threads (NumPy releases the GIL inside its loops). Each block
writes only its own planes of the outputs and its own rows of dweight partial sums, so results do not
depend on the thread count.

Small maps (MobileNet's 28 x 28 down to 7 x 7 layers: 9 passes over rows of 9-30 numbers each) go
channels-last instead: x copied once to (N, H, W, C), each tap is ONE multiply-add over
runs of C contiguous numbers, ``y[n, h, w, :] += w[:, t] * x_padded[n, h + i, w + j, :]``, and y (and dx)
come back as NCHW-shaped views of channels-last memory, as Winograd's do.
"""

from __future__ import annotations

import itertools

import numpy as np

from cnnkit.fast import flat
from cnnkit.fast.tuning import DEPTHWISE_CHANNELS_LAST_POSITIONS, DEPTHWISE_ITEM_ELEMENTS
from cnnkit.geometry import conv_setup
from cnnkit.layout import pad_last
from cnnkit.runtime import CHUNK_BYTES, batch_slices, elementwise_threads, over_batch, over_parts, workspace


def _blocks(planes, plan):
    """Slices of the N*C planes, about DEPTHWISE_ITEM_ELEMENTS padded numbers each, at least as many as
    there are threads when the planes allow it."""
    size = max(1, min(planes, DEPTHWISE_ITEM_ELEMENTS // plan["flat"], -(-planes // elementwise_threads())))
    return batch_slices(planes, size)


def _planes(a):
    """(N, C, H, W) -> (N*C, H, W): a view of C-ordered memory (a copy of channels-last memory)."""
    return np.ascontiguousarray(a).reshape(-1, *a.shape[2:])


def _padded(x_planes, block, plan, pads):
    """The block's planes zero-padded into this thread's scratch, as (planes, flat) rows."""
    buffer = workspace("depthwise.x", (block.stop - block.start, plan["flat"]), x_planes.dtype)
    return flat.pad_into(buffer, x_planes[block], plan, pads)


def _per_plane(v, block):
    """A per-channel array (C, ...) repeated for the block's planes (image-major): (planes, ...)."""
    return v[np.arange(block.start, block.stop) % len(v)]


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
    if out[0] * out[1] <= DEPTHWISE_CHANNELS_LAST_POSITIONS:
        return _channels_last(x, weight, bias, tuple(stride), tuple(dilation), pads, tuple(out))
    plan = flat.plan(x.shape[2:], weight.shape[2:], stride, dilation, pads, out)
    x_planes = _planes(x)
    blocks = _blocks(N * C, plan)
    taps = weight.reshape(C, -1, 1)  # (C, F*F, 1): one scalar per channel and tap, broadcast along a row
    shift = np.zeros((C, 1, 1), x.dtype) if bias is None else bias.reshape(C, 1, 1)
    y = np.empty((N, C, *out), x.dtype)
    y_planes = y.reshape(N * C, *out)

    def work(chunk):
        for block in blocks[chunk]:
            xp, w = _padded(x_planes, block, plan, pads), _per_plane(taps, block)
            acc = workspace("depthwise.acc", (len(w), plan["wide"]), x.dtype)
            product = workspace("depthwise.product", acc.shape, x.dtype)
            np.multiply(flat.tap(xp, plan["offsets"][0], plan), w[:, 0], out=acc)
            for t, offset in enumerate(plan["offsets"][1:], 1):
                np.multiply(flat.tap(xp, offset, plan), w[:, t], out=product)
                acc += product
            # bias, scratch columns dropped
            np.add(flat.from_wide(acc, plan), _per_plane(shift, block), out=y_planes[block])

    over_batch(work, len(blocks), CHUNK_BYTES)  # CHUNK_BYTES per block: each block is its own chunk
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
    if cache.get("channels_last"):
        return _channels_last_backward(dy, cache, input_grad)
    x, weight, pads, out = cache["x"], cache["weight"], cache["pads"], cache["out"]
    N, C = x.shape[:2]
    plan = flat.plan(x.shape[2:], weight.shape[2:], cache["stride"], cache["dilation"], pads, out)
    x_planes, dy_planes = _planes(x), _planes(dy)
    blocks, offsets = _blocks(N * C, plan), plan["offsets"]
    taps = weight.reshape(C, -1, 1)
    dx = np.empty(x.shape, dy.dtype) if input_grad else None
    dx_planes = None if dx is None else dx.reshape(N * C, *x.shape[2:])
    dw_planes = np.empty((N * C, len(offsets), 1, 1), dy.dtype)  # per-plane partial sums, added at the end

    def work(chunk):
        for block in blocks[chunk]:
            xp, w = _padded(x_planes, block, plan, pads), _per_plane(taps, block)
            dy_wide = flat.to_wide(workspace("depthwise.dy", (len(w), out[0], plan["row"]), dy.dtype),
                                   dy_planes[block], plan)[:, None]  # (planes, 1, wide)
            for t, offset in enumerate(offsets):  # dweight[p, t] = dy_wide[p] . x_flat[p, slice_t]
                np.matmul(dy_wide, flat.tap(xp, offset, plan)[:, :, None], out=dw_planes[block, t])
            if not input_grad:
                continue
            dxp = workspace("depthwise.x", xp.shape, dy.dtype)  # x's scratch: dead now
            dxp.fill(0)
            product = workspace("depthwise.product", (len(w), plan["wide"]), dy.dtype)
            for t, offset in enumerate(offsets):
                np.multiply(dy_wide[:, 0], w[:, t], out=product)
                flat.tap(dxp, offset, plan)[...] += product
            flat.unpad(dxp, plan, pads, x.shape[2:], out=dx_planes[block])

    over_batch(work, len(blocks), CHUNK_BYTES)
    db = np.einsum("nchw->c", dy) if cache["has_bias"] else None  # 3x faster than dy.sum(axis=(0, 2, 3))
    return dx, dw_planes.reshape(N, C, len(offsets)).sum(axis=0).reshape(weight.shape), db


def _tap_views(xp, kernel, stride, dilation, out):
    """For each tap (i, k): the (n, H_out, W_out, C) view of padded channels-last xp it reads."""
    (S_h, S_w), (D_h, D_w) = stride, dilation
    return [xp[:, i * D_h:i * D_h + S_h * (out[0] - 1) + 1:S_h, k * D_w:k * D_w + S_w * (out[1] - 1) + 1:S_w]
            for i, k in itertools.product(*map(range, kernel))]


def _image_chunks(x, pads):
    """Slices of the batch whose padded channels-last images fill about CHUNK_BYTES, at least one per
    thread when there are the images for it."""
    (top, bottom), (left, right) = pads
    N, C, H, W = x.shape
    per_image = (H + top + bottom) * (W + left + right) * C * x.itemsize
    return batch_slices(N, max(1, min(CHUNK_BYTES // per_image, -(-N // elementwise_threads()))))


def _channels_last(x, weight, bias, stride, dilation, pads, out):
    """The forward on channels-last memory (see the module doc): y is an NCHW view of (N, H_out, W_out, C)."""
    N, C = x.shape[:2]
    taps = np.ascontiguousarray(weight.reshape(C, -1).T)  # (F*F, C): one row of C scalars per tap
    y = np.empty((N, *out, C), x.dtype)
    chunks = _image_chunks(x, pads)

    def work(i):
        images = chunks[i]
        xp = pad_last(x[images], pads, "depthwise.last")
        views = _tap_views(xp, weight.shape[2:], stride, dilation, out)
        acc, product = y[images], workspace("depthwise.product", y[images].shape, x.dtype)
        np.multiply(views[0], taps[0], out=acc)
        for view, w in zip(views[1:], taps[1:], strict=True):
            np.multiply(view, w, out=product)
            acc += product
        if bias is not None:
            acc += bias

    over_parts(work, len(chunks))
    cache = dict(algorithm="depthwise", channels_last=True, x=x, weight=weight, stride=stride,
                 dilation=dilation, pads=pads, out=out, has_bias=bias is not None)
    return y.transpose(0, 3, 1, 2), cache


def _channels_last_backward(dy, cache, input_grad):
    """dweight[c, t] = sum dy * tap_t, dx_padded[tap_t] += w[:, t] * dy, on channels-last memory."""
    x, weight, pads, out = cache["x"], cache["weight"], cache["pads"], cache["out"]
    N, C, H, W = x.shape
    (top, _), (left, _) = pads
    taps = np.ascontiguousarray(weight.reshape(C, -1).T)
    dy_last = np.ascontiguousarray(dy.transpose(0, 2, 3, 1))  # a view's copy: free if dy is channels-last
    dx = np.empty((N, H, W, C), dy.dtype) if input_grad else None
    chunks = _image_chunks(x, pads)

    def work(i):
        images = chunks[i]
        xp = pad_last(x[images], pads, "depthwise.last")
        g = dy_last[images]
        dw = np.stack([np.einsum("nhwc,nhwc->c", g, view)
                       for view in _tap_views(xp, weight.shape[2:], cache["stride"], cache["dilation"], out)])
        if input_grad:
            dxp = workspace("depthwise.last", xp.shape, dy.dtype)  # x's scratch: dead now
            dxp.fill(0)
            product = workspace("depthwise.product", g.shape, dy.dtype)
            views = _tap_views(dxp, weight.shape[2:], cache["stride"], cache["dilation"], out)
            for view, w in zip(views, taps, strict=True):
                np.multiply(g, w, out=product)
                view += product
            dx[images] = dxp[:, top:top + H, left:left + W]
        return dw

    partial = over_parts(work, len(chunks))
    dw = sum(partial[1:], partial[0]) if partial else np.zeros(taps.shape, dy.dtype)  # chunk order
    db = np.einsum("nhwc->c", dy_last) if cache["has_bias"] else None
    return (None if dx is None else dx.transpose(0, 3, 1, 2)), dw.T.reshape(weight.shape), db


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error", *, name="conv2d"):
    """As :func:`cnnkit.reference.conv.convnd` for 2-D layers with groups = in_channels = out_channels."""
    stride, dilation, out, pads = conv_setup(x.shape, weight.shape, stride, padding, dilation, groups, fit,
                                             name=name)
    return depthwise_conv2d(x, weight, bias, stride, dilation, pads, out)


conv2d_backward = depthwise_conv2d_backward
