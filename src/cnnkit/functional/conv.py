"""Convolution in 1, 2 or 3 spatial dimensions: im2col + matrix multiply, and its backward.

Layout: ``x`` is (N, C, *S) -- batch, channels, then the spatial axes (W; H, W; or D, H, W). The notes'
W x H x D "volume" of one image is ``x[n]`` here, with depth D = C first (NCHW, as in PyTorch and ONNX).
The weight is (K, C/groups, *F) like PyTorch's, the bias (K,).

Forward lowers the convolution to one matrix multiply: im2col copies every receptive field into a column,
so that ``y = W @ cols``. Backward is the same two steps read backwards: ``dW = dy @ cols^T`` (a matrix
multiply) and ``dx = col2im(W^T @ dy)``, which is a transposed convolution of dy with the same filters.

Faster kernels sit behind the same two functions, chosen per shape by :func:`choose_algorithm` (the
``algorithm=`` keyword forces one): Winograd for 3x3 stride-1 layers (cnnkit.fast.winograd) and
a tap-by-tap kernel for depthwise layers (cnnkit.fast.depthwise).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.fast import flat
from cnnkit.fast.depthwise import depthwise_conv2d, depthwise_conv2d_backward
from cnnkit.fast.winograd import winograd_conv2d, winograd_conv2d_backward
from cnnkit.functional.layout import is_channels_last
from cnnkit.geometry import as_tuple, conv_geometry, window_slices
from cnnkit.runtime import elementwise_threads, over_parts, workspace

ALGORITHMS = ("auto", "im2col", "winograd", "winograd2", "depthwise")
WINOGRAD_TILES = {"winograd": 4, "winograd2": 2}  # F(4x4, 3x3) and F(2x2, 3x3)


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


COLUMNS_PER_PART = 1 << 19  # im2col elements per batch part: ~2 MB of float32, made and used while in cache
# Layers whose filter matrix (K x C/G * prod(F)) has at most THREADED_PARTS numbers multiply little per
# column copied: their batch parts run on the elementwise threads, one-thread BLAS each (see over_parts),
# if the layer has THREADED_MIN_MACS multiply-adds to share. Interleaved A/B on two cores: fwd+bwd
# 0.61-0.91x the time on (64, 3, 32, 32) with 3x3 and 5x5 filters; LeNet-5's layers (8-15 M MACs) lost.
THREADED_PARTS, THREADED_MIN_MACS = 4096, 32_000_000


def _batch_parts(N, per_image, threads=1):
    """Slices of the batch whose columns hold about COLUMNS_PER_PART elements (at least one image), in a
    multiple of ``threads`` parts when the batch has the images for it."""
    count = -(-N // max(1, COLUMNS_PER_PART // per_image))
    count = max(1, min(N, -(-count // threads) * threads))
    step = max(1, -(-N // count))
    return [slice(n, min(n + step, N)) for n in range(0, N, step)]


def _part_threads(weight_shape, N, positions):
    """Threads for a layer's batch parts: the elementwise threads for small filter matrices with enough
    multiply-adds in all (N images of ``positions`` outputs each), else 1."""
    K, Cg, *F = weight_shape
    filters = K * Cg * math.prod(F)
    big_enough = N * positions * filters >= THREADED_MIN_MACS
    return elementwise_threads() if filters <= THREADED_PARTS and big_enough else 1


def _columns(x, pads, kernel_size, stride, dilation, out, groups, *, scratch=True):
    """im2col of x padded, as (N, G, C/G * prod(F), L); in reused scratch memory unless scratch=False."""
    N, C = x.shape[:2]
    padded = (N, C, *(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], pads, strict=True)))
    shape = (N, C, math.prod(kernel_size), *out)
    if scratch:
        xp = pad(x, pads, buffer=workspace("conv.xp", padded, x.dtype))
        cols = im2col(xp, kernel_size, stride, dilation, out, buffer=workspace("conv.cols", shape, x.dtype))
    else:
        cols = im2col(pad(x, pads), kernel_size, stride, dilation, out)
    return cols.reshape(N, groups, -1, math.prod(out))


def _flat_columns(x, plan, pads, groups):
    """im2col on the wide grid of cnnkit.fast.flat: (N, G, C/G * prod(F), wide), in scratch memory.

    One long slice copy per tap and channel instead of H_out short rows: on LeNet's and CIFAR's small
    images most of im2col's (and col2im's) time was NumPy starting inner loops of 8-28 numbers.
    """
    N, C = x.shape[:2]
    xp = flat.pad_into(workspace("conv.xp", (N, C, plan["flat"]), x.dtype), x, plan, pads)
    cols = workspace("conv.cols", (N, C, *plan["kernel"], plan["wide"]), x.dtype)
    np.copyto(cols, flat.taps(xp, plan))  # every tap in one call
    return cols.reshape(N, groups, -1, plan["wide"])


class ConvCache(dict):
    """The forward cache: the input and the geometry, not the prod(F) times larger matrix of columns.

    The columns live in scratch memory reused by every convolution (a fresh 50 MB array per call costs as
    much as the arithmetic in page faults), and backward rebuilds them: one more copy, no allocation. Code
    that reads ``cache["cols"]`` (ConvTranspose2d's dweight does) gets a fresh array built on demand.
    """

    def __missing__(self, key):
        if key != "cols" or "x" not in self:
            raise KeyError(key)
        self["cols"] = _columns(self["x"], self["pads"], self["weight"].shape[2:], self["stride"],
                                self["dilation"], self["out"], self["groups"], scratch=False)
        return self["cols"]


WINOGRAD_MIN_CHANNELS, WINOGRAD_MIN_TILES = 32, 32


def choose_algorithm(weight_shape, stride, dilation, groups, algorithm="auto", *, name="conv", out=None,
                     batch=None):
    """The per-shape dispatch: which kernel computes this convolution.

    ``"auto"`` picks, where each measured faster than im2col (docs/performance.md): Winograd F(4x4, 3x3)
    for 2-D 3x3 stride-1 undilated layers with at least 32 input channels per group and, when the output
    size ``out`` and ``batch`` are given, at least 32 tiles of 4x4 outputs in the batch (its filter
    transform costs 36 * C * K numbers per call, which a few tiles do not repay); "depthwise" (im2col's
    forward, a tap-by-tap backward) for 2-D layers with one input and one output channel per group;
    im2col for everything else.
    A forced algorithm that cannot compute the layer raises ValueError.

    >>> [choose_algorithm((64, C, 3, 3), (1, 1), (1, 1), 1) for C in (64, 3)]
    ['winograd', 'im2col']
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{name}: Invalid algorithm {algorithm!r}, should be one of {ALGORITHMS}.")
    K, Cg, *F = weight_shape
    winograd_fits = F == [3, 3] and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
    depthwise_fits = len(F) == 2 and Cg == 1 and K == groups
    if algorithm == "auto":
        tiles = math.inf if out is None or batch is None else batch * math.prod(-(-n // 4) for n in out)
        if winograd_fits and Cg >= WINOGRAD_MIN_CHANNELS and tiles >= WINOGRAD_MIN_TILES:
            return "winograd"
        return "depthwise" if depthwise_fits else "im2col"
    if algorithm in WINOGRAD_TILES and not winograd_fits:
        raise ValueError(f"{name}: algorithm={algorithm!r} computes 2-D 3x3 convolutions with stride 1 and "
                         f"dilation 1; received kernel_size={tuple(F)}, stride={tuple(stride)}, "
                         f"dilation={tuple(dilation)}. Use algorithm='auto' or 'im2col'.")
    if algorithm == "depthwise" and not depthwise_fits:
        raise ValueError(f"{name}: algorithm='depthwise' computes 2-D convolutions with groups = in_channels "
                         f"= out_channels; received weight {tuple(weight_shape)} with groups={groups}. "
                         f"Use algorithm='auto' or 'im2col'.")
    return algorithm


def convnd(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error", *, name="conv",
           algorithm="auto"):
    """N-d convolution (really cross-correlation, as in every deep learning library).

    Shape:
        x (N, C, *S), weight (K, C/groups, *F), bias (K,) or None -> y (N, K, *S_out) with, per axis,
        ``S_out = (S - F_eff + P_before + P_after) / stride + 1`` and ``F_eff = dilation * (F - 1) + 1``.

    ``algorithm``: "auto" (per shape, see :func:`choose_algorithm`), "im2col", "winograd" (F(4x4, 3x3),
    float32 results within ~1e-5 of im2col's), "winograd2" (F(2x2, 3x3), ~1e-6) or "depthwise".

    Returns ``(y, cache)``; pass the cache to :func:`convnd_backward`.
    """
    nd = x.ndim - 2
    N, C, *spatial = x.shape
    K, Cg, *F = weight.shape
    if C != Cg * groups or K % groups:
        raise ShapeError(f"{name}: input has {C} channels and the weight {tuple(weight.shape)}; with "
                         f"groups={groups} the weight must be (K, C/groups={C // groups}, ...) "
                         f"and K divisible by groups.")
    stride, dilation = as_tuple(stride, nd, "stride"), as_tuple(dilation, nd, "dilation")
    out, pads = conv_geometry(spatial, F, stride, padding, dilation, fit, name=name)
    G, Kg, L = groups, K // groups, math.prod(out)
    algorithm = choose_algorithm(weight.shape, stride, dilation, groups, algorithm, name=name, out=out,
                                 batch=N)
    if algorithm in WINOGRAD_TILES:
        y, cache = winograd_conv2d(x, weight, bias, pads, groups, tile=WINOGRAD_TILES[algorithm])
        return y, ConvCache(cache, x=x, stride=stride, dilation=dilation, out=out)
    if algorithm == "depthwise":
        y, cache = depthwise_conv2d(x, weight, bias, stride, dilation, pads, out)
        return y, ConvCache(cache, groups=groups)

    padded_shape = (N, C, *(n + lo + hi for n, (lo, hi) in zip(spatial, pads, strict=True)))
    pointwise = all(f == 1 for f in F) and all(s == 1 for s in stride) and padded_shape == x.shape
    w = weight.reshape(G, Kg, -1)  # (G, K/G, C/G * prod(F))
    wide = flat.plan(spatial, F, stride, dilation, pads, out) if nd == 2 and stride == (1, 1) else None
    rows = None  # a 1x1 layer on channels-last memory (cnnkit.functional.layout): x as (N*S, C) rows
    if pointwise and G == 1 and is_channels_last(x):  # ONE (N*S, C) @ (C, K), channels-last output
        rows = np.moveaxis(x, 1, -1).reshape(-1, C)  # a view
        y = np.moveaxis((rows @ w[0].T).reshape(N, *out, K), -1, 1)
    elif pointwise:
        cols = x.reshape(N, G, Cg, L)  # a 1x1 convolution is already a matrix multiply over channels
        y = np.matmul(w, cols).reshape(N, K, *out)
    else:  # im2col in batch parts of scratch columns (backward rebuilds them), maybe on threads
        y = np.empty((N, K, *out), x.dtype)
        threads = _part_threads(weight.shape, N, L)
        parts = _batch_parts(N, C * math.prod(F) * (wide["wide"] if wide is not None else L), threads)

        def work(i):
            part = parts[i]
            if wide is not None:  # 2-D, stride 1: columns on the wide grid (cnnkit.fast.flat)
                cols = _flat_columns(x[part], wide, pads, G)
                y_wide = workspace("conv.y", (len(cols), G, Kg, wide["wide"]), x.dtype)
                np.matmul(w, cols, out=y_wide)
                y[part] = flat.from_wide(y_wide.reshape(len(cols), K, -1), wide)
            else:  # (G,Kg,CF) @ (n,G,CF,L) -> (n,G,Kg,L): already NCHW order
                cols = _columns(x[part], pads, F, stride, dilation, out, G)
                np.matmul(w, cols, out=y[part].reshape(-1, G, Kg, L))

        over_parts(work, len(parts), threaded=threads > 1)
    if bias is not None:
        y += bias.reshape(K, *(1,) * nd)
    cache = ConvCache(x=x, x_shape=x.shape, padded_shape=padded_shape, weight=weight, pads=pads,
                      stride=stride, dilation=dilation, out=out, groups=groups, has_bias=bias is not None,
                      pointwise=pointwise, algorithm=algorithm, wide=wide)
    if rows is not None:
        cache["rows"] = rows
    elif pointwise:
        cache["cols"] = cols
    return y, cache


def convnd_backward(dy, cache, *, input_grad=True):
    """dy (N, K, *S_out) -> (dx, dweight, dbias); dbias is None when the forward had no bias.

    ``input_grad=False`` skips dx (returned as None) where that saves work: the first layer of a network
    needs no gradient for its input, and there col2im is a large share of the backward pass.
    """
    algorithm = cache.get("algorithm", "im2col")
    if algorithm.startswith("winograd"):
        return winograd_conv2d_backward(dy, cache)
    if algorithm == "depthwise":
        return depthwise_conv2d_backward(dy, cache, input_grad=input_grad)
    weight, G, stride, dilation, pads = (cache[k] for k in ("weight", "groups", "stride", "dilation", "pads"))
    N, K, *out = dy.shape
    (_, C, *padded), Kg, F = cache["padded_shape"], K // G, weight.shape[2:]
    dy_g = dy.reshape(N, G, Kg, math.prod(out))
    db = dy.sum(axis=(0, *range(2, dy.ndim))) if cache["has_bias"] else None
    w_t = weight.reshape(G, Kg, -1).transpose(0, 2, 1)
    # dW = dy @ cols^T, summed over the batch and the output positions: one multiply per image, then a sum
    # (a single tensordot over (N, L) would first copy both operands into (N*L)-major order: 2-4x slower).
    if "rows" in cache:  # a channels-last 1x1 layer: dW = dy^T @ rows, dx = dy @ W, channels-last
        dy_rows = np.moveaxis(dy, 1, -1).reshape(-1, K)  # free when dy is channels-last too, else a copy
        dw = (dy_rows.T @ cache["rows"]).reshape(weight.shape)
        dx = np.moveaxis((dy_rows @ weight.reshape(K, C)).reshape(N, *out, C), -1, 1)
        return dx, dw, db
    if cache["pointwise"]:
        dw = np.matmul(dy_g, cache["cols"].swapaxes(-1, -2)).sum(axis=0).reshape(weight.shape)
        return np.matmul(w_t, dy_g).reshape(cache["x_shape"]), dw, db
    dx = np.empty(cache["x_shape"], dy.dtype) if input_grad else None
    wide, kept = cache.get("wide"), dict.get(cache, "cols")  # "cols": only if some code asked for them
    threads = _part_threads(weight.shape, N, math.prod(out)) if kept is None else 1
    positions = wide["wide"] if wide is not None else math.prod(out)
    parts = _batch_parts(N, C * math.prod(F) * positions, threads)

    def work(i):  # one batch part: its share of dW (returned) and its slice of dx
        part = parts[i]
        if wide is not None:  # the forward's wide-grid columns (cnnkit.fast.flat), rebuilt
            cols = _flat_columns(cache["x"][part], wide, pads, G)
            n = len(cols)
            dy_part = flat.to_wide(workspace("conv.y", (n, K, out[0], wide["row"]), dy.dtype), dy[part], wide)
            dy_part = dy_part.reshape(n, G, Kg, -1)  # zeros in the scratch columns: they add nothing below
        else:
            cols = kept[part] if kept is not None else _columns(cache["x"][part], pads, F, stride, dilation,
                                                                 out, G)
            n, dy_part = len(cols), dy_g[part]
        dw_part = np.matmul(dy_part, cols.swapaxes(-1, -2)).sum(axis=0)
        if not input_grad:
            return dw_part
        # W^T @ dy, into the columns' own scratch buffer: they are dead once dW has them
        dcols = np.matmul(w_t, dy_part, out=workspace("conv.cols", cols.shape, dy.dtype))
        if wide is not None:
            dcols = dcols.reshape(n, C, len(wide["offsets"]), -1)
            dxp = workspace("conv.xp", (n, C, wide["flat"]), dy.dtype)
            dxp.fill(0)
            for t, offset in enumerate(wide["offsets"]):  # col2im: one long slice-add per tap
                flat.tap(dxp, offset, wide)[...] += dcols[:, :, t]
            dx[part] = flat.unpad(dxp, wide, pads, cache["x_shape"][2:])
        else:
            dxp = col2im(dcols.reshape(n, C, math.prod(F), *out), (n, C, *padded), F, stride, dilation, out,
                         buffer=workspace("conv.xp", (n, C, *padded), dy.dtype))
            dx[part] = unpad(dxp, pads)
        return dw_part

    partial = over_parts(work, len(parts), threaded=threads > 1)
    dw = sum(partial[1:], partial[0]) if partial else np.zeros((G, Kg, w_t.shape[1]), dy.dtype)  # part order
    return dx, dw.reshape(weight.shape), db


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error", *,
           algorithm="auto"):
    """1-D convolution: x (N, C, W) -> y (N, K, W_out). See :func:`convnd`."""
    return convnd(x, weight, bias, stride, padding, dilation, groups, fit, name="conv1d", algorithm=algorithm)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error", *,
           algorithm="auto"):
    """2-D convolution: x (N, C, H, W) -> y (N, K, H_out, W_out). See :func:`convnd`.

    >>> y, cache = conv2d(np.ones((1, 3, 5, 5), np.float32), np.ones((2, 3, 3, 3), np.float32), padding=1)
    >>> y.shape, float(y[0, 0, 2, 2]), float(y[0, 0, 0, 0])
    ((1, 2, 5, 5), 27.0, 12.0)
    """
    return convnd(x, weight, bias, stride, padding, dilation, groups, fit, name="conv2d", algorithm=algorithm)


def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error", *,
           algorithm="auto"):
    """3-D convolution: x (N, C, D, H, W) -> y (N, K, D_out, H_out, W_out). See :func:`convnd`."""
    return convnd(x, weight, bias, stride, padding, dilation, groups, fit, name="conv3d", algorithm=algorithm)


conv1d_backward = conv2d_backward = conv3d_backward = convnd_backward
