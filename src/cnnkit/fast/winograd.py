"""Winograd convolution F(m x m, 3 x 3) for 3x3 stride-1 layers: forward and backward in the Winograd domain.

Lavin & Gray (2015), "Fast Algorithms for Convolutional Neural Networks". The output is cut into m x m
tiles; each needs an (m+2) x (m+2) input tile d. With the small constant matrices B, G, A below,

    y_tile = A^T [ (G w G^T)  *  (B^T d B) ] A          (* elementwise, summed over input channels)

so the 9 m^2 multiplies of a direct 3x3 convolution become (m+2)^2: 2.25x fewer for m=2, 4x for m=4.
Summed over channels, the elementwise product becomes one matrix multiply per position (xi, nu) of the
(m+2)^2 tile positions: M[xi,nu] (K, P) = U[xi,nu] (K, C) @ V[xi,nu] (C, P), P = N * tiles. That is where
the time goes and where BLAS runs at full speed.

Backward is the same algorithm read backwards (its exact adjoint), sharing the transformed output
gradient dM = A dY A^T between both gradients:

    dU = dM @ V^T  ->  dweight = G^T dU G           dV = U^T @ dM  ->  dx tiles = B dV B^T

and the dx tiles, which overlap by 2 pixels, are summed back in place like col2im.

Rounding: for m=4 the transforms hold entries up to 8 and G fractions down to 1/24 (for m=2 only 1 and
1/2), so float32 results differ from a direct convolution by about 1e-5 (m=4) or 1e-6 (m=2) of their
scale instead of 1e-7; measured over the test grid, always within the 1e-4 parity tolerance.
Use ``algorithm="im2col"`` where bit-level comparability matters more than speed.

Layout: inside, everything is channels-last -- (tile position, N, tile row, tile column, channels) -- so
that every tile copy moves runs of C contiguous floats (an NCHW tile gather moves runs of W/m floats and
was 10x slower), and the matrix multiplies see (P, C) @ (C, K). The outputs y and dx are NCHW-shaped
views of channels-last memory (what PyTorch calls channels_last): a following Winograd layer reads them
without a transpose, and any other NumPy code sees an ordinary (N, C, H, W) array.
"""

from __future__ import annotations

import numpy as np

from cnnkit.fast.tuning import (
    WINOGRAD_KEPT_FILTERS,
    WINOGRAD_MIN_PART_TILES,
    WINOGRAD_PART_ELEMENTS,
    WINOGRAD_THREADED_PARTS,
)
from cnnkit.geometry import conv_setup
from cnnkit.layout import pad_into
from cnnkit.runtime import batch_slices, derived, elementwise_threads, over_parts, staggered, workspace

# Lavin & Gray's matrices with interpolation points 0, +-1 (m=2) and 0, +-1, +-2 (m=4), plus infinity.
_MATRICES = {
    2: dict(
        BT=[[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        G=[[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
        AT=[[1, 1, 1, 0], [0, 1, -1, -1]],
    ),
    4: dict(
        BT=[[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        G=[[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
           [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        AT=[[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
}


def _matrices(tile: int, dtype):
    """B^T, G, A^T and their Kronecker squares: (L (x) L) @ vec(t) is L t L^T for every tile at once."""
    mats = {k: np.array(v, dtype=np.float64) for k, v in _MATRICES[tile].items()}
    mats.update({f"{k}2": np.kron(v, v) for k, v in list(mats.items())})
    return {k: v.astype(dtype) for k, v in mats.items()}


def _transform(L2, t, out=None):
    """L t L^T for every tile: t (a*b tile positions first, ...) -> (p*p, rest), given L2 = L (x) L.

    One (p^2, a*b) @ (a*b, rest) multiply; it measured as fast as two passes with L and keeps no temporary.
    """
    return np.matmul(L2, t.reshape(L2.shape[1], -1), out=out)


def _batch_parts(N, tiles_per_image, elements_per_image, filters):
    """(images, tiles) slice pairs cutting the batch into parts (see cnnkit.fast.tuning), and whether they
    run on the elementwise threads, each with a one-thread BLAS: when there are threads and a layer's
    ``filters`` (C/G * K/G) are at most WINOGRAD_THREADED_PARTS; then at least one part per thread when the
    batch has the images for it."""
    threads = elementwise_threads() if filters <= WINOGRAD_THREADED_PARTS else 1
    step = max(1, WINOGRAD_PART_ELEMENTS // elements_per_image,
               -(-WINOGRAD_MIN_PART_TILES // tiles_per_image))
    step = max(1, min(step, -(-N // threads)))
    return [(images, slice(images.start * tiles_per_image, images.stop * tiles_per_image))
            for images in batch_slices(N, step)], threads > 1


def _filter_transform(G2, weight, groups, out=None):
    """U = G w G^T for every filter, as one (alpha^2, 9) @ (9, K*C/groups) multiply -> (alpha^2, G, C/G, K/G).

    (G w G^T)[a, b] = sum_ij G[a, i] G[b, j] w[i, j] is the Kronecker product G (x) G applied to the 9 taps.
    U is alpha^2 / 9 = 4 times the weight's size; it goes to scratch memory (or ``out``) and backward makes
    it again (about 1 ms for 128 x 128 filters) instead of the forward cache keeping it: a layer's cache
    then holds no copy of its filters. Large filter banks keep theirs beside the weights (:func:`_filters`).
    """
    K, Cg = weight.shape[:2]
    taps = weight.reshape(groups, K // groups, Cg, 9).transpose(3, 0, 2, 1)  # (9, G, C/G, K/G)
    U = workspace("winograd.U", (G2.shape[0], groups, Cg, K // groups), weight.dtype) if out is None else out
    np.matmul(G2, taps.reshape(9, -1), out=U.reshape(G2.shape[0], -1))
    return U


def _filters(G2, weight, groups):
    """:func:`_filter_transform`, kept beside the weights (cnnkit.runtime.derived) when it is large: for
    filter banks of WINOGRAD_KEPT_FILTERS numbers and more, making U costs far more than checking that the
    weights did not change (measured 10-20 ms vs ~1 ms for 512 x 512 filters), and the forward's U serves
    the backward and every later inference call."""
    if weight.size < WINOGRAD_KEPT_FILTERS:
        return _filter_transform(G2, weight, groups)
    return derived(f"winograd{G2.shape[0]}/{groups}", weight,
                   lambda w: _filter_transform(G2, w, groups, out=np.empty((G2.shape[0], groups, w.shape[1],
                                                                            w.shape[0] // groups), w.dtype)))


def winograd_conv2d(x, weight, bias=None, pads=((0, 0), (0, 0)), groups=1, tile=4, *, keep=True):
    """3x3 stride-1 convolution by Winograd F(tile x tile, 3 x 3); same result as im2col up to rounding.

    ``keep=False`` when no backward follows: the transformed input tiles V (2.25x the input for tile 4),
    which dweight needs, are made part by part in scratch memory instead of kept, and the cache is None.

    Shape:
        x (N, C, H, W), weight (K, C/groups, 3, 3), bias (K,) or None, pads ((top, bottom), (left, right))
        -> y (N, K, H_out, W_out) with ``H_out = H + top + bottom - 2`` (and the same for W); y is a view
        of channels-last memory.

    Returns ``(y, cache)`` for :func:`winograd_conv2d_backward`.

    >>> x, w = np.ones((1, 2, 5, 5), np.float32), np.ones((3, 2, 3, 3), np.float32)
    >>> y, _ = winograd_conv2d(x, w, pads=((1, 1), (1, 1)))
    >>> y.shape, round(float(y[0, 0, 2, 2]), 4), round(float(y[0, 0, 0, 0]), 4)
    ((1, 3, 5, 5), 18.0, 8.0)
    """
    mats, dtype = _matrices(tile, x.dtype), x.dtype
    N, C, H, W = x.shape
    K, Cg = weight.shape[:2]
    G, Kg, m, alpha = groups, K // groups, tile, tile + 2
    (top, bottom), (left, right) = pads
    Ho, Wo = H + top + bottom - 2, W + left + right - 2
    th, tw = -(-Ho // m), -(-Wo // m)  # tiles per column and row; the last ones may hang over the edge
    T = th * tw

    U = _filters(mats["G2"], weight, G)  # G w G^T: (alpha^2, G, C/G, K/G)
    # B^T d B of every tile, kept for dweight. Here and below, arrays of (tile position, ...) rows that one
    # multiply reads or writes all at once are staggered (cnnkit.runtime.staggered; docs/performance.md).
    V = staggered((alpha * alpha, N * T, G, Cg), dtype) if keep else None
    cropped = (Ho, Wo) != (th * m, tw * m)  # tiles hang over the edge: whole tiles to scratch, then a crop
    shape = (N, th, m, tw, m, K)
    y = workspace("winograd.y", shape, dtype) if cropped else np.empty(shape, dtype)
    parts, threaded = _batch_parts(N, T, alpha * alpha * T * max(C, K), Cg * Kg)

    def work(i):  # one part of the batch; parts may run on threads (scratch memory is per thread)
        part, tiles = parts[i]
        n = part.stop - part.start
        # Two scratch buffers serve every temporary, alternately: each is dead before its buffer is reused.
        xp = pad_into(workspace("winograd.a", (n, th * m + 2, tw * m + 2, C), dtype),
                       x[part].transpose(0, 2, 3, 1), top, left)
        d = staggered((alpha * alpha, n, th, tw, C), dtype, "winograd.b").reshape(alpha, alpha, n, th, tw, C)
        for a in range(alpha):  # overlapping input tiles: im2col with window alpha and stride m
            for b in range(alpha):
                d[a, b] = xp[:, a:a + m * th:m, b:b + m * tw:m]
        V_part = V[:, tiles] if keep else staggered((alpha * alpha, n * T, G, Cg), dtype, "winograd.V")
        _transform(mats["BT2"], d, out=V_part.reshape(alpha * alpha, -1))
        M = staggered((alpha * alpha, n * T, G, Kg), dtype, "winograd.a")
        np.matmul(V_part.transpose(0, 2, 1, 3), U, out=M.transpose(0, 2, 1, 3))  # per position: (P,C) @ (C,K)
        Y = _transform(mats["AT2"], M, out=staggered((m * m, n * T * K), dtype, "winograd.b"))  # A^T M A
        tiles_out = Y.reshape(m, m, n, th, tw, K).transpose(2, 3, 0, 4, 1, 5)  # to (n, th, m, tw, m, K)
        if bias is None:
            y[part] = tiles_out
        else:  # added while the part is in cache, on its thread, in the same pass as the copy out
            np.add(tiles_out, bias, out=y[part])

    over_parts(work, len(parts), threaded=threaded)
    y = y.reshape(N, th * m, tw * m, K)
    if cropped:
        y = np.ascontiguousarray(y[:, :Ho, :Wo])
    cache = dict(algorithm=f"winograd{tile}", x_shape=x.shape, weight=weight, V=V, pads=pads,
                 groups=groups, tile=tile, tiles=(th, tw), has_bias=bias is not None) if keep else None
    return y.transpose(0, 3, 1, 2), cache


def winograd_conv2d_backward(dy, cache):
    """dy (N, K, H_out, W_out) -> (dx, dweight, dbias), all three in the Winograd domain of the forward."""
    mats, dtype = _matrices(cache["tile"], dy.dtype), dy.dtype
    V, G = cache["V"], cache["groups"]
    U = _filters(mats["G2"], cache["weight"], G)  # (alpha^2, G, C/G, K/G): the forward's, if still kept
    N, C, H, W = cache["x_shape"]
    K, Cg = cache["weight"].shape[:2]
    (th, tw), m, alpha = cache["tiles"], cache["tile"], cache["tile"] + 2
    (top, _), (left, _) = cache["pads"]
    T = th * tw
    db = dy.sum(axis=(0, 2, 3)) if cache["has_bias"] else None

    dy = dy.transpose(0, 2, 3, 1)  # (N, H_out, W_out, K): free when dy came from a channels-last layer
    # smaller layers' parts on the threads, each returning its share of dU; one thread sums them in place
    parts, threaded = _batch_parts(N, T, alpha * alpha * T * max(C, K), Cg * (K // G))
    dx = np.empty((N, H, W, C), dtype)
    dU_shape = (alpha * alpha, G, K // G, Cg)

    def work(i, out=None):  # one part: its slice of dx, and its share of dU (returned; in ``out`` if given)
        part, tiles = parts[i]
        n, dy_part = part.stop - part.start, dy[part]
        if dy_part.shape[1:3] != (th * m, tw * m):  # tiles that hang over the edge see zero gradient there
            dy_part = pad_into(workspace("winograd.a", (n, th * m, tw * m, K), dtype), dy_part, 0, 0)
        dY = staggered((m * m, n, th, tw, K), dtype, "winograd.b").reshape(m, m, n, th, tw, K)
        dY.transpose(2, 3, 0, 4, 1, 5)[...] = dy_part.reshape(n, th, m, tw, m, K)
        dM = _transform(mats["AT2"].T, dY, out=staggered((alpha * alpha, n * T * K), dtype, "winograd.a"))
        dM = dM.reshape(alpha * alpha, n * T, G, K // G).transpose(0, 2, 1, 3)  # A dY A^T: (a^2, G, P, K/G)

        # dU as (alpha^2, G, K/G, C/G): the filters' own order, so that dweight needs no 5-axis transpose
        dU_part = np.matmul(dM.transpose(0, 1, 3, 2), V[:, tiles].transpose(0, 2, 1, 3), out=out)
        dV = staggered((alpha * alpha, n * T, G, Cg), dtype, "winograd.b")
        np.matmul(dM, U.transpose(0, 1, 3, 2), out=dV.transpose(0, 2, 1, 3))
        dd = _transform(mats["BT2"].T, dV, out=staggered((alpha * alpha, n * T * C), dtype, "winograd.a"))
        dd = dd.reshape(alpha, alpha, n, th, tw, C)  # B dV B^T

        # Sum the overlapping tiles back (col2im with window alpha, stride m). The offsets a, b < m cover
        # the th*m x tw*m block exactly once, so they assign; only the 2-pixel fringe needs zeros first.
        dxp = workspace("winograd.b", (n, th * m + 2, tw * m + 2, C), dtype)
        dxp[:, th * m:] = 0
        dxp[:, :, tw * m:] = 0
        for a in range(alpha):
            for b in range(alpha):
                window = dxp[:, a:a + m * th:m, b:b + m * tw:m]
                if a < m and b < m:
                    window[...] = dd[a, b]
                else:
                    window += dd[a, b]
        dx[part] = dxp[:, top:top + H, left:left + W]
        return dU_part

    if threaded:  # parts on threads, each returning its own share (36 C K / G numbers: 2.4 MB at 128 x 128)
        shares = over_parts(work, len(parts))
        dU = sum(shares[1:], shares[0]) if shares else np.zeros(dU_shape, dtype)  # no parts: an empty batch
    else:  # one stream, summed in scratch memory: a fresh 10 MB array per call was as slow as the multiply
        dU = workspace("winograd.dU", dU_shape, dtype)
        if not parts:  # an empty batch: the first part would have written dU
            dU.fill(0)
        for i in range(len(parts)):
            if i == 0:
                work(0, out=dU)
            else:
                dU += work(i, out=workspace("winograd.dU_part", dU_shape, dtype))
    dw = np.matmul(mats["G2"].T, dU.reshape(alpha * alpha, -1),  # G^T dU G: (9, G * K/G * C/G)
                   out=workspace("winograd.dw", (9, dU[0].size), dtype))
    dweight = np.empty((K, Cg, 3, 3), dtype)  # the result: fresh memory, filled from the scratch
    dweight.reshape(-1, 9)[...] = dw.T  # (G * K/G * C/G, 9) is (K, C/G, 3, 3) already
    return dx.transpose(0, 3, 1, 2), dweight, db


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error", *, name="conv2d",
           tile=4, keep=True):
    """As :func:`cnnkit.reference.conv.convnd` for 2-D 3x3 filters, stride 1, dilation 1: F(tile, 3x3)."""
    _, _, _, pads = conv_setup(x.shape, weight.shape, stride, padding, dilation, groups, fit, name=name)
    return winograd_conv2d(x, weight, bias, pads, groups, tile=tile, keep=keep)


def conv2d_tile2(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error", *,
                 name="conv2d", keep=True):
    """:func:`conv2d` with F(2x2, 3x3): fewer multiplies saved, float32 results ~10x closer to im2col's."""
    return conv2d(x, weight, bias, stride, padding, dilation, groups, fit, name=name, tile=2, keep=keep)


def conv2d_inference(*args, **kwargs):
    """:func:`conv2d` when no backward follows (``cnnkit.no_grad()``): ``(y, None)``, V never kept."""
    return conv2d(*args, **kwargs, keep=False)


def conv2d_tile2_inference(*args, **kwargs):
    """:func:`conv2d_tile2` when no backward follows: ``(y, None)``."""
    return conv2d_tile2(*args, **kwargs, keep=False)


def conv2d_backward(dy, cache, *, input_grad=True):
    """dy -> (dx, dweight, dbias) from :func:`conv2d`'s cache (dx is always computed: it shares dM)."""
    return winograd_conv2d_backward(dy, cache)
