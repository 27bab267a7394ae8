"""im2col convolution in cache-sized batch parts, on the wide grid for 2-D layers.

Speeds up: :func:`cnnkit.reference.conv.convnd` (same signature, same results up to float32 rounding),
for every layer the other fast kernels do not take (see :mod:`cnnkit.fast.dispatch`).

The idea, in three parts:
- the matrix of columns is prod(F) times larger than the input (50 MB for a 3x3 layer on a batch of 64
  CIFAR images); made for the whole batch at once it streams through main memory twice. Made for a few
  images at a time (about ``COLUMNS_PER_PART`` numbers, :mod:`cnnkit.fast.tuning`) in reused scratch
  memory (:func:`cnnkit.runtime.workspace`), it is written and multiplied while in the core's cache, and no
  call pays for fresh pages. The cache keeps only the input; backward makes the columns again.
- 2-D layers gather their columns on the wide grid of :mod:`cnnkit.fast.flat`: one long slice per tap
  instead of H_out short rows (on LeNet's and CIFAR's small maps NumPy spent more time starting inner
  loops than in them); strided layers first split their input into phases, where each tap is a slice
  again; a single image whose columns exceed a part (ResNet's stem) is gathered and multiplied in bands
  of output rows, forward and backward. In backward, for filter matrices above ONE_MULTIPLY_MIN_FILTERS
  numbers, the columns of a part's images lie side by side, (C * F_h * F_w, n * wide), so that dW is one
  matrix multiply per part (where a multiply per image and a sum cost up to 1.25x as much for large
  layers; for small filter matrices the one long multiply of a few rows is the slower one); the forward
  multiplies per image, straight into NCHW output (side by side it needed a transposing copy out: 3-16%
  slower on one thread).
- layers whose filter matrix is small multiply little per column copied, and larger ones copy on one core
  while BLAS's threads wait: their batch parts run on the elementwise threads, each with a one-thread
  BLAS (:func:`cnnkit.runtime.over_parts`), the larger ones when the parts fall evenly (:func:`_parts`).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from cnnkit.fast import flat
from cnnkit.fast.tuning import (
    BACKWARD_BAND_COLUMNS,
    COLUMNS_PER_PART,
    LAST_COLUMNS_MIN_CHANNELS,
    ONE_MULTIPLY_MIN_FILTERS,
    THREADED_MIN_MACS,
    THREADED_PARTS,
)
from cnnkit.geometry import conv_setup, window_slices
from cnnkit.layout import is_channels_last, pad_last
from cnnkit.runtime import COLUMNS, batch_parts, elementwise_threads, over_parts, workspace


def pad(x, pads, value=0.0, *, buffer=None):
    """Pad the spatial axes of (N, C, *S) with ``value``; returns x itself when there is nothing to pad.

    ``buffer``: an array of the padded shape to write into instead of allocating a new one.
    """
    if not any(lo or hi for lo, hi in pads):
        return x
    if buffer is None:
        return np.pad(x, ((0, 0), (0, 0), *pads), constant_values=value)
    buffer.fill(value)
    unpad(buffer, pads)[...] = x
    return buffer


def unpad(xp, pads):
    """The inverse of :func:`pad`: a view of the interior."""
    return xp[(..., *(slice(lo, xp.shape[2 + i] - hi) for i, (lo, hi) in enumerate(pads)))]


def im2col(xp, kernel_size, stride, dilation, out, *, buffer=None):
    """(N, C, *S_padded) -> cols (N, C, prod(F), *S_out): one slice copy per kernel tap, no pixel loops.

    ``buffer``: an array of the result's shape to write into instead of allocating a new one.
    """
    N, C = xp.shape[:2]
    cols = np.empty((N, C, math.prod(kernel_size), *out), xp.dtype) if buffer is None else buffer
    for i, offset in enumerate(itertools.product(*map(range, kernel_size))):
        cols[:, :, i] = xp[window_slices(offset, dilation, stride, out)]
    return cols


def col2im(cols, padded_shape, kernel_size, stride, dilation, out, *, buffer=None):
    """The adjoint of :func:`im2col`: (N, C, prod(F), *S_out) -> (N, C, *S_padded), summing overlaps.

    ``buffer``: an array of ``padded_shape`` to zero and sum into instead of allocating a new one.
    """
    xp = np.zeros(padded_shape, cols.dtype) if buffer is None else buffer
    if buffer is not None:
        xp.fill(0)
    for i, offset in enumerate(itertools.product(*map(range, kernel_size))):
        xp[window_slices(offset, dilation, stride, out)] += cols[:, :, i]
    return xp


def _parts(weight_shape, N, positions, per_image):
    """A layer's batch parts (slices of the batch whose columns hold about COLUMNS_PER_PART elements, at
    least one image) and the threads that run them. The elementwise threads, each part's multiply on a
    one-thread BLAS, when the layer has THREADED_MIN_MACS multiply-adds (N images of ``positions``
    outputs) and either a small filter matrix (THREADED_PARTS) or parts that fall evenly, at least two per
    thread: an uneven split leaves a core idle through a multiply that a two-thread BLAS would share.
    Else one thread: the copies inline, BLAS's threads inside each multiply."""
    K, Cg, *F = weight_shape
    filters, threads = K * Cg * math.prod(F), elementwise_threads()
    if threads > 1 and N * positions * filters >= THREADED_MIN_MACS:
        parts = batch_parts(N, per_image, COLUMNS_PER_PART, threads)
        if filters <= THREADED_PARTS or (len(parts) >= 2 * threads and len(parts) % threads == 0):
            return parts, threads
    return batch_parts(N, per_image, COLUMNS_PER_PART), 1


def _on_wide_grid(weight_shape, stride) -> bool:
    """2-D layers gather their columns on the wide grid of cnnkit.fast.flat: stride-1 layers always,
    strided ones when their columns outnumber their outputs (C/G * F_h * F_w >= K: the wide grid's extra
    passes, the input into its phases and the output off the grid, cost less than the old gather's short
    rows; measured on 3x3, 5x5 and 7x7 stride-2 layers, 0.55-0.97x the time of fwd+bwd)."""
    K, Cg, *F = weight_shape
    return len(F) == 2 and (tuple(stride) == (1, 1) or Cg * math.prod(F) >= K)


def _columns(x, pads, kernel_size, stride, dilation, out, groups):
    """im2col of x padded, as (N, G, C/G * prod(F), L), in reused scratch memory."""
    N, C = x.shape[:2]
    padded = (N, C, *(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], pads, strict=True)))
    shape = (N, C, math.prod(kernel_size), *out)
    xp = pad(x, pads, buffer=workspace("conv.xp", padded, x.dtype))
    cols = im2col(xp, kernel_size, stride, dilation, out, buffer=workspace(COLUMNS, shape, x.dtype))
    return cols.reshape(N, groups, -1, math.prod(out))


def _last_columns(x, kernel_size, stride, dilation, pads, out):
    """im2col of channels-last x (n, C, H, W) as rows (n * H_out * W_out, F_h * F_w * C), in scratch
    memory: padded channels-last, then one copy per tap of runs of C contiguous numbers."""
    n, C = x.shape[:2]
    xp = pad_last(x, pads, "conv.xp")
    cols = workspace(COLUMNS, (n, *out, *kernel_size, C), x.dtype)
    for i, k in itertools.product(*map(range, kernel_size)):
        cols[:, :, :, i, k] = xp[(*window_slices((i, k), dilation, stride, out), slice(None))]
    return cols.reshape(n * math.prod(out), -1)


def _flat_padded(x, plan, pads):
    """x zero-padded (and split into phases) as flat channels (N, C, flat), in scratch memory."""
    return flat.pad_into(workspace("conv.xp", (*x.shape[:2], plan["flat"]), x.dtype), x, plan, pads)


def _bands(plan, per_image, images, size):
    """(first, stop) output rows of the parts of one image's wide grid: all of them, unless a part holds
    one image whose columns exceed ``size`` numbers (ResNet's stem: 7.6 MB); then row bands of about that
    size, each gathered and multiplied while in cache (measured: docs/performance.md, sessions 9 and 11;
    the backward's bands are BACKWARD_BAND_COLUMNS)."""
    rows = plan["out"][0]
    count = max(1, min(rows, -(-per_image // size))) if images == 1 else 1
    step = max(1, -(-rows // count))
    return [(first, min(first + step, rows)) for first in range(0, rows, step)] or [(0, 0)]


def _flat_columns(xp, plan, groups, *, side_by_side=False):
    """im2col on the wide grid of cnnkit.fast.flat of padded flat channels ``xp`` (N, C, flat) from
    :func:`_flat_padded` (for a :func:`cnnkit.fast.flat.band` of its plan, ``xp`` shifted to the band's
    first row), in scratch memory: (N, G, C/G * prod(F), wide), or with ``side_by_side`` the images'
    columns next to each other, (G, C/G * prod(F), N * wide), so that a batch part is ONE matrix multiply
    per group (dW = dy @ cols^T without a multiply per image and a sum; the forward's per-image
    multiplies write NCHW output directly and measured faster)."""
    N, C = xp.shape[:2]
    if not side_by_side:
        cols = workspace(COLUMNS, (N, C, *plan["kernel"], plan["wide"]), xp.dtype)
        return flat.gather(xp, plan, out=cols).reshape(N, groups, -1, plan["wide"])
    cols = workspace(COLUMNS, (C, *plan["kernel"], N, plan["wide"]), xp.dtype)
    flat.gather(xp, plan, out=np.moveaxis(cols, -2, 0))  # written as (N, C, F_h, F_w, wide)
    return cols.reshape(groups, -1, N * plan["wide"])


def convnd(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error", *, name="conv"):
    """As :func:`cnnkit.reference.conv.convnd`: im2col in batch parts of scratch columns, maybe on threads.

    Returns ``(y, cache)``; the cache keeps x, not the columns (backward makes them again).
    """
    stride, dilation, out, pads = conv_setup(x.shape, weight.shape, stride, padding, dilation, groups, fit,
                                             name=name)
    N, C, *spatial = x.shape
    K, _, *F = weight.shape
    G, Kg, L = groups, K // groups, math.prod(out)
    w = weight.reshape(G, Kg, -1)  # (G, K/G, C/G * prod(F))
    wide = flat.plan(spatial, F, stride, dilation, pads, out) if _on_wide_grid(weight.shape, stride) else None
    # the output in the input's layout where the multiply can write it so: a channels-last network (after
    # a Winograd layer) stays channels-last, and a residual sum never meets two layouts (a sum across
    # layouts reads one term across its cache lines: 5-10x slower than the sum itself, measured)
    rows = wide is not None and G == 1 and is_channels_last(x) and C > 1
    # strided, with many channels: the columns themselves channels-last, (positions, F_h F_w C), no phases
    last = rows and C >= LAST_COLUMNS_MIN_CHANNELS and any(s > 1 for s in stride)
    y_last = np.empty((N, *out, K), x.dtype) if rows else None  # channels-last memory behind y
    y = y_last.transpose(0, 3, 1, 2) if rows else np.empty((N, K, *out), x.dtype)
    per_image = C * math.prod(F) * (L if wide is None or last else wide["wide"])
    parts, threads = _parts(weight.shape, N, L, per_image)

    shift = None if bias is None else bias.reshape(K, *(1,) * len(out))
    w_last = weight.transpose(0, 2, 3, 1).reshape(K, -1) if last else None  # (K, F_h F_w C): a copy

    def work(i):
        part = parts[i]
        if last:  # (n * L, F_h F_w C) @ (F_h F_w C, K) straight into channels-last y
            y_rows = y_last[part].reshape(-1, K)
            np.matmul(_last_columns(x[part], F, stride, dilation, pads, out), w_last.T, out=y_rows)
            if bias is not None:
                y_rows += bias
            return
        if rows:  # (n * wide, CF) @ (CF, K): channels-last rows, the bias added to each
            cols = _flat_columns(_flat_padded(x[part], wide, pads), wide, G, side_by_side=True)
            y_rows = np.matmul(cols[0].T, w[0].T, out=workspace("conv.y", (cols.shape[-1], K), x.dtype))
            if bias is not None:
                y_rows += bias
            y[part].transpose(0, 2, 3, 1)[...] = y_rows.reshape(-1, out[0], wide["row"], K)[:, :, :out[1]]
            return
        if wide is not None:  # 2-D: columns on the wide grid (cnnkit.fast.flat), in row bands
            xp = _flat_padded(x[part], wide, pads)
            for first, stop in _bands(wide, C * math.prod(F) * wide["wide"], part.stop - part.start,
                                      COLUMNS_PER_PART):
                band = flat.band(wide, first, stop)
                cols = _flat_columns(xp[..., first * wide["row"]:], band, G)
                y_wide = workspace("conv.y", (len(cols), G, Kg, band["wide"]), x.dtype)
                np.matmul(w, cols, out=y_wide)
                y_band = y[part][:, :, first:stop]
                y_band[...] = flat.from_wide(y_wide.reshape(len(cols), K, -1), band)
                if shift is not None:  # while the band is in cache, on its thread (not one more pass)
                    y_band += shift
            return
        # (G,Kg,CF) @ (n,G,CF,L) -> (n,G,Kg,L): already NCHW order
        cols = _columns(x[part], pads, F, stride, dilation, out, G)
        np.matmul(w, cols, out=y[part].reshape(-1, G, Kg, L))
        if shift is not None:  # while the part is in cache, on its thread (not one more pass over y)
            y[part] += shift

    over_parts(work, len(parts), threaded=threads > 1)
    cache = dict(x=x, weight=weight, pads=pads, stride=stride, dilation=dilation, out=out, groups=groups,
                 has_bias=bias is not None, wide=wide)
    return y, cache


def _dw(cols, dy_part):
    """A part's dW = dy @ cols^T, multiplied as its transpose cols @ dy^T (OpenBLAS runs a product of a few
    columns (CF x Kg) 1.0-1.9x faster than one of a few rows (Kg x CF), never slower, measured): (G, Kg, CF)
    from columns side by side (G, CF, L), or summed over the images of (n, G, CF, L)."""
    dw_t = np.matmul(cols, dy_part.swapaxes(-1, -2))
    return (dw_t if dw_t.ndim == 3 else dw_t.sum(axis=0)).swapaxes(-1, -2)


def convnd_backward(dy, cache, *, input_grad=True):
    """dy (N, K, *S_out) -> (dx, dweight, dbias), from :func:`convnd`'s cache, in the forward's batch parts.

    dW = dy @ cols^T summed over the parts; dx = col2im(W^T @ dy) into each part's slice.
    ``input_grad=False`` skips dx (returned as None).
    """
    x, weight, G, stride, dilation, pads = (cache[k] for k in ("x", "weight", "groups", "stride", "dilation",
                                                                "pads"))
    N, K, *out = dy.shape
    (_, C, *spatial), Kg, F = x.shape, K // G, weight.shape[2:]
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(spatial, pads, strict=True))
    dy_g = dy.reshape(N, G, Kg, math.prod(out))
    db = dy.sum(axis=(0, *range(2, dy.ndim))) if cache["has_bias"] else None
    w_t = weight.reshape(G, Kg, -1).transpose(0, 2, 1)
    dx = np.empty(x.shape, dy.dtype) if input_grad else None
    wide = cache["wide"]
    positions = wide["wide"] if wide is not None else math.prod(out)
    parts, threads = _parts(weight.shape, N, math.prod(out), C * math.prod(F) * positions)
    one_multiply = Kg * w_t.shape[1] > ONE_MULTIPLY_MIN_FILTERS  # dW of a part's columns side by side

    def work(i):  # one batch part: its share of dW (returned) and its slice of dx
        part = parts[i]
        if wide is None:  # (n, G, CF, L), a multiply per image, then a sum (a single tensordot over (n, L)
            # would first copy both operands into (n*L)-major order: 2-4x slower)
            cols, n = _columns(x[part], pads, F, stride, dilation, out, G), part.stop - part.start
            dw_part = _dw(cols, dy_g[part])
            if input_grad:
                dcols = np.matmul(w_t, dy_g[part], out=workspace(COLUMNS, cols.shape, dy.dtype))
                dxp = col2im(dcols.reshape(n, C, math.prod(F), *out), (n, C, *padded), F, stride, dilation,
                             out, buffer=workspace("conv.xp", (n, C, *padded), dy.dtype))
                dx[part] = unpad(dxp, pads)
            return dw_part
        # 2-D: the forward's wide-grid columns, rebuilt in row bands (one band unless the part is one image
        # whose columns exceed BACKWARD_BAND_COLUMNS: ResNet's stem)
        n, xp = part.stop - part.start, _flat_padded(x[part], wide, pads)
        bands = _bands(wide, C * math.prod(F) * wide["wide"], n, BACKWARD_BAND_COLUMNS)
        dw_part, dxp = None, None
        for first, stop in bands:
            band, shift = flat.band(wide, first, stop), first * wide["row"]
            cols = _flat_columns(xp[..., shift:], band, G, side_by_side=one_multiply)
            dy_band = dy[part][:, :, first:stop]
            if one_multiply:  # (G, CF, n*wide): zeros in dy's scratch columns add nothing below
                dy_part = flat.to_wide(workspace("conv.y", (K, n, stop - first, wide["row"]), dy.dtype),
                                       dy_band.swapaxes(0, 1), band).reshape(G, Kg, -1)
            else:  # (n, G, CF, wide): a multiply per image, then a sum
                dy_part = flat.to_wide(workspace("conv.y", (n, K, stop - first, wide["row"]), dy.dtype),
                                       dy_band, band).reshape(n, G, Kg, -1)
            dw_band = _dw(cols, dy_part)
            if dw_part is None:
                dw_part = dw_band
            else:
                dw_part += dw_band
            if not input_grad:
                continue
            # W^T @ dy, into the columns' own scratch buffer: they are dead once dW has them
            dcols = np.matmul(w_t, dy_part, out=workspace(COLUMNS, cols.shape, dy.dtype))
            T = len(wide["offsets"])  # col2im: one long slice-add per tap, of the (n, C, wide) columns
            dcols = (dcols.reshape(C, T, n, -1).transpose(1, 2, 0, 3) if one_multiply
                     else dcols.reshape(n, C, T, -1).transpose(2, 0, 1, 3))
            if dxp is None:  # one band: x's padded scratch is dead now; bands still read it
                dxp = workspace("conv.xp" if len(bands) == 1 else "conv.dxp", xp.shape, dy.dtype)
                dxp.fill(0)
            for t, offset in enumerate(wide["offsets"]):
                flat.tap(dxp[..., shift:], offset, band)[...] += dcols[t]
        if input_grad:
            flat.unpad(dxp, wide, pads, spatial, out=dx[part])
        return dw_part

    partial = over_parts(work, len(parts), threaded=threads > 1)
    dw = sum(partial[1:], partial[0]) if partial else np.zeros((G, Kg, w_t.shape[1]), dy.dtype)  # part order
    return dx, dw.reshape(weight.shape), db
