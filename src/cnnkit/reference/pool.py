"""Pooling: max, average, power-average (L_p) and fixed-filter blur over sliding windows, plus global pools.

Layout: ``x`` is (N, C, *S) (NCHW for 2-D). Pooling works on every depth slice independently: the notes'
W x H x D volume keeps its depth D = C and shrinks in W and H.

Every windowed pool is the convolution's first step followed by a reduction over the window:

    forward:   cols = im2col(pad(x))          (N, C, prod(F), *S_out): column t holds kernel tap t
               y    = reduce(cols, axis=2)    max, mean, L_p norm or a weighted sum
    backward:  dcols = dy * d reduce / d cols, then dx = unpad(col2im(dcols)): col2im sums what several
               overlapping windows send to one input

Sizes come from the one output-size rule (:func:`cnnkit.geometry.pool_geometry`): ``fit="error"`` raises
when the windows do not tile the input, ``fit="crop"`` is PyTorch's floor rule and ``fit="pad"`` its
``ceil_mode=True``.
"""

import numpy as np

from cnnkit.geometry import padding_pairs, pool_geometry
from cnnkit.reference.conv import col2im, im2col, pad, unpad


def _windows(x, geometry, fill=0.0):
    """Every window of x padded with ``fill``: x (N, C, *S) -> cols (N, C, prod(F), *S_out)."""
    g = geometry
    return im2col(pad(x, g["pads"], fill), g["kernel_size"], g["stride"], g["dilation"], g["out"])


def _scatter(dcols, x_shape, geometry):
    """The adjoint of :func:`_windows`: dcols (N, C, prod(F), *S_out) -> dx (N, C, *S), overlaps summed."""
    g = geometry
    padded = (*x_shape[:2], *(n + lo + hi for n, (lo, hi) in zip(x_shape[2:], g["pads"], strict=True)))
    dxp = col2im(dcols, padded, g["kernel_size"], g["stride"], g["dilation"], g["out"])
    return np.ascontiguousarray(unpad(dxp, g["pads"]))


# -- max pooling ------------------------------------------------------------------------------------------

def max_poolnd(x, kernel_size, stride=None, padding=0, dilation=1, fit="error", *, nd=None, name="max_pool"):
    """Max over each window, in 1, 2 or 3 spatial dimensions: ``y[n, c, j] = max_t cols[n, c, t, j]``.

    Shape:
        x (N, C, *S) -> y (N, C, *S_out), per axis ``S_out = (S - F_eff + 2P) / stride + 1`` with
        ``F_eff = dilation * (kernel_size - 1) + 1`` (rounded as ``fit`` says).

    Padding is -inf so that it never wins a max (PyTorch's rule); so are the extra far-side positions
    that ``fit="pad"`` adds. Ties go to the first max in row-major window order; a NaN wins its window.

    Args:
        x: (N, C, *S) floating-point array. kernel_size (F), stride=None (= kernel_size), padding (P)=0,
        dilation=1, fit="error": as :func:`cnnkit.geometry.pool_geometry`. nd: the expected number of
        spatial axes (None: any). name: prefix of error messages.

    Returns:
        ``(y, cache)``: y has x's dtype; the cache holds the *switches*, the tap index of the max of every
        window, so that :func:`max_poolnd_backward` routes each gradient to the one input that won.

    Raises:
        ValueError/TypeError: a bad kernel_size, stride, dilation, padding or fit (as Layer arguments).
        ShapeError: x is not (nd + 2)-D; F_eff > S + 2P on some axis; with fit="error", S_out is not an
            integer.
    """
    g = pool_geometry(x.shape, kernel_size, stride, padding, dilation, fit, nd=nd, name=name)
    cols = _windows(x, g, -np.inf)
    # argmax: the first max of the window, or its first NaN (NaN compares as the largest), as PyTorch.
    switches = cols.argmax(axis=2)  # (N, C, *S_out)
    y = np.take_along_axis(cols, switches[:, :, None], axis=2)[:, :, 0]
    return y, dict(geometry=g, switches=switches, x_shape=x.shape)


def max_poolnd_backward(dy, cache):
    """The gradient of :func:`max_poolnd`: each dy goes to the argmax of its window, zero elsewhere.

    Shape: dy (N, C, *S_out) -> dx (N, C, *S), dx.dtype = dy.dtype.

    Returns:
        dx; where overlapping windows share a winner, their dy are summed (by col2im).
    """
    g, switches = cache["geometry"], cache["switches"]
    N, C, *out = dy.shape
    dcols = np.zeros((N, C, int(np.prod(g["kernel_size"])), *out), dy.dtype)
    np.put_along_axis(dcols, switches[:, :, None], dy[:, :, None], axis=2)  # dy under the winning tap
    return _scatter(dcols, cache["x_shape"], g)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, fit="error", *, name="max_pool1d"):
    """1-D max pooling: x (N, C, W) -> (y (N, C, W_out), cache). See :func:`max_poolnd`."""
    return max_poolnd(x, kernel_size, stride, padding, dilation, fit, nd=1, name=name)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, fit="error", *, name="max_pool2d"):
    """2-D max pooling: x (N, C, H, W) -> (y (N, C, H_out, W_out), cache). See :func:`max_poolnd`.

    The notes' example: 2x2 windows with stride 2 keep the largest of every four numbers.

    >>> x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], np.float32)[None, None]
    >>> y, cache = max_pool2d(x, 2, stride=2)
    >>> y[0, 0].tolist()
    [[6.0, 8.0], [3.0, 4.0]]
    >>> max_pool2d_backward(np.ones_like(y), cache)[0, 0].astype(int).tolist()
    [[0, 0, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 1]]
    """
    return max_poolnd(x, kernel_size, stride, padding, dilation, fit, nd=2, name=name)


# -- average and L_p pooling ------------------------------------------------------------------------------

def avg_poolnd(x, kernel_size, stride=None, padding=0, count_include_pad=True, fit="error", *, nd=None,
               name="avg_pool"):
    """Mean over each window: ``y[n, c, j] = sum_t cols[n, c, t, j] / divisor[j]``.

    Shape: x (N, C, *S) -> y (N, C, *S_out), ``S_out = (S - F + 2P) / stride + 1`` per axis (no
    dilation), rounded as ``fit`` says.

    Args:
        x: (N, C, *S) floating-point array. kernel_size (F), stride=None (= kernel_size), padding (P)=0,
        fit="error": as :func:`cnnkit.geometry.pool_geometry`. count_include_pad=True: see below. nd, name:
        as :func:`max_poolnd`.

    Returns:
        ``(y, cache)``: y has x's dtype; the cache holds the geometry and the divisor of every window.

    Raises:
        ValueError/TypeError: a bad kernel_size, stride, padding or fit (as Layer arguments).
        ShapeError: x is not (nd + 2)-D; F_eff > S + 2P on some axis; with fit="error", S_out is not an
            integer.

    The divisor follows PyTorch: with ``count_include_pad`` it is the window clipped to the zero-padded
    input (``padding`` counts, the extra far-side zeros of ``fit="pad"`` do not); without it, only the
    input values inside the window count.
    """
    g = pool_geometry(x.shape, kernel_size, stride, padding, 1, fit, nd=nd, name=name)
    user_pads = padding_pairs(padding, len(g["out"]), g["kernel_size"], g["dilation"])
    divisor = window_divisor(x.shape[2:], g, user_pads, count_include_pad, x.dtype)
    y = _windows(x, g).sum(axis=2) / divisor
    return y, dict(geometry=g, divisor=divisor, x_shape=x.shape)


def window_divisor(spatial, geometry, user_pads, count_include_pad, dtype):
    """How many values each window averages over, (*S_out), as PyTorch counts them (see avg_poolnd).

    Per axis the window [start, stop) is clipped to the input plus the user's padding (or to the input
    alone without count_include_pad); a window's count is the product of its per-axis lengths.
    """
    divisor = np.ones((), dtype=np.int64)
    for n, k, s, m, (lo, hi) in zip(spatial, geometry["kernel_size"], geometry["stride"], geometry["out"],
                                    user_pads, strict=True):
        start = np.arange(m) * s - lo
        stop = np.minimum(start + k, n + hi)
        if not count_include_pad:
            start, stop = np.maximum(start, 0), np.minimum(stop, n)
        divisor = np.multiply.outer(divisor, np.maximum(stop - start, 1))  # >= 1: padding alone averages to 0
    return divisor.astype(dtype)


def avg_poolnd_backward(dy, cache):
    """The gradient of :func:`avg_poolnd`: every input in a window gets dy / divisor (summed over windows).

    Shape: dy (N, C, *S_out) -> dx (N, C, *S), dx.dtype = dy.dtype.
    """
    g = cache["geometry"]
    N, C, *out = dy.shape
    share = dy / cache["divisor"]  # (N, C, *S_out): the same share for every tap of a window
    dcols = np.broadcast_to(share[:, :, None], (N, C, int(np.prod(g["kernel_size"])), *out))
    return _scatter(dcols, cache["x_shape"], g)


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True, fit="error", *,
               name="avg_pool2d"):
    """2-D average pooling: x (N, C, H, W) -> (y (N, C, H_out, W_out), cache). See :func:`avg_poolnd`.

    >>> y, _ = avg_pool2d(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4), 2)
    >>> y[0, 0].tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    return avg_poolnd(x, kernel_size, stride, padding, count_include_pad, fit, nd=2, name=name)


def lp_poolnd(x, norm_type, kernel_size, stride=None, fit="error", *, nd=None, name="lp_pool"):
    """Power-average pooling: the L_p norm of each window, ``y = (sum_t |cols_t|^p) ** (1/p)``.

    p=2 is L2 pooling.

    Shape: x (N, C, *S) -> y (N, C, *S_out), ``S_out = (S - F) / stride + 1`` per axis (no padding, no
    dilation), rounded as ``fit`` says. ``fit="pad"`` zero-pads the far side, which adds nothing to a
    window's norm.

    Args:
        x: (N, C, *S) floating-point array. norm_type (p): a real number, not checked here (the layer
        requires a finite p >= 1). kernel_size (F), stride=None (= kernel_size), fit="error": as
        :func:`cnnkit.geometry.pool_geometry`. nd, name: as :func:`max_poolnd`.

    Returns:
        ``(y, cache)``: y has x's dtype.

    Raises:
        ValueError/TypeError: a bad kernel_size, stride or fit (as Layer arguments).
        ShapeError: x is not (nd + 2)-D; F_eff > S on some axis; with fit="error", S_out is not an
            integer.

    This is PyTorch's ``lp_pool2d`` wherever PyTorch's result is a norm (even p, or x >= 0 as after a
    ReLU); PyTorch raises x (not |x|) to the power p and rescales partial windows of ``ceil_mode``.
    """
    p = float(norm_type)  # a Python float keeps float32 arrays float32 (a NumPy float64 would upcast)
    g = pool_geometry(x.shape, kernel_size, stride, 0, 1, fit, nd=nd, name=name)
    y = (np.abs(_windows(x, g)) ** p).sum(axis=2) ** (1.0 / p)
    return y, dict(geometry=g, x=x, y=y, p=p)


def lp_poolnd_backward(dy, cache):
    """The gradient of :func:`lp_poolnd`: with y = (sum |x|^p)^(1/p), dy/dx = y^(1-p) |x|^(p-1) sign(x).

    Shape: dy (N, C, *S_out) -> dx (N, C, *S), dx.dtype = dy.dtype; summed over overlapping windows. A
    window whose norm is 0 passes no gradient (its derivative is undefined; PyTorch also gives 0).
    """
    x, y, p, g = cache["x"], cache["y"], cache["p"], cache["geometry"]
    cols = _windows(x, g)
    y_power = y ** (p - 1)
    scale = np.zeros_like(dy)
    np.divide(dy, y_power, out=scale, where=y_power > 0)  # dy * y^(1-p), without dividing by 0
    dcols = scale[:, :, None] * np.sign(cols) * np.abs(cols) ** (p - 1)
    return _scatter(dcols, x.shape, g)


def lp_pool2d(x, norm_type, kernel_size, stride=None, fit="error", *, name="lp_pool2d"):
    """2-D power-average pooling: x (N, C, H, W) -> (y, cache). See :func:`lp_poolnd`.

    >>> y, _ = lp_pool2d(np.array([[[[3, 0], [0, 4]]]], np.float32), 2, 2)
    >>> float(y[0, 0, 0, 0])
    5.0
    """
    return lp_poolnd(x, norm_type, kernel_size, stride, fit, nd=2, name=name)


# -- fixed-filter blur ------------------------------------------------------------------------------------

def binomial_filter(size, nd=2):
    """The normalised binomial (Pascal's triangle) filter: size 3 is [1, 2, 1] / 4 per axis, outer product.

    Shape: -> (size,) * nd, float64, summing to 1; in 2-D ``k[i, j] = C(size-1, i) C(size-1, j) /
    4^(size-1)``.

    Args:
        size: the filter width (>= 1). nd=2: the number of axes.

    >>> (binomial_filter(3) * 16).tolist()
    [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    row = np.ones(1)
    for _ in range(size - 1):  # each row of Pascal's triangle is the previous one convolved with [1, 1]
        row = np.convolve(row, [1.0, 1.0])
    kernel = row
    for _ in range(nd - 1):
        kernel = np.multiply.outer(kernel, row)
    return kernel / kernel.sum()


def blurnd(x, kernel, stride=1, padding=0, fit="error", *, name="blur"):
    """One fixed filter applied to every channel: ``y[n, c, j] = sum_t kernel[t] * cols[n, c, t, j]``.

    A depthwise convolution whose frozen kernel is shared by every channel (anti-aliased downsampling).

    Shape: x (N, C, *S), kernel (*F) -> y (N, C, *S_out), ``S_out = (S - F + 2P) / stride + 1`` per axis,
    rounded as ``fit`` says.

    Args:
        x: (N, C, *S) floating-point array. kernel: array-like of rank nd = x.ndim - 2 (cast to x's dtype).
        stride=1, padding=0, fit="error": as :func:`cnnkit.geometry.pool_geometry`. name: prefix of error
        messages.

    Returns:
        ``(y, cache)``: y has x's dtype.

    Raises:
        ValueError/TypeError: a bad stride, padding or fit (as Layer arguments).
        ShapeError: x is not (kernel.ndim + 2)-D; F > S + 2P on some axis; with fit="error", S_out is not
            an integer.
    """
    kernel = np.asarray(kernel)
    # Blur2d's padding follows from its filter size, so a ShapeError offers stride and fit only.
    g = pool_geometry(x.shape, kernel.shape, stride, padding, 1, fit, nd=kernel.ndim, name=name,
                      max_padding=0)
    # (1, 1, prod(F), 1, ...): one weight per tap, broadcast over the batch, channels and positions
    weights = kernel.astype(x.dtype, copy=False).reshape(1, 1, -1, *(1,) * kernel.ndim)
    y = (_windows(x, g) * weights).sum(axis=2)
    return y, dict(geometry=g, weights=weights, x_shape=x.shape)


def blurnd_backward(dy, cache):
    """The gradient of :func:`blurnd`: every tap sends ``kernel[t] * dy`` back to the input it read.

    Shape: dy (N, C, *S_out) -> dx (N, C, *S), dx.dtype = dy.dtype.
    """
    weights = cache["weights"].astype(dy.dtype, copy=False)
    dcols = dy[:, :, None] * weights  # (N, C, prod(F), *S_out)
    return _scatter(dcols, cache["x_shape"], cache["geometry"])


# -- global pools -------------------------------------------------------------------------------------------

def global_avg_pool(x):
    """Mean over all spatial positions: ``y[n, c] = sum_s x[n, c, s] / prod(S)``.

    Shape: x (N, C, *S) -> y (N, C, 1, ..., 1); y has x's dtype.

    Returns:
        ``(y, cache)``.
    """
    y = x.mean(axis=tuple(range(2, x.ndim)), keepdims=True)
    return y, dict(x_shape=x.shape)


def global_avg_pool_backward(dy, cache):
    """The gradient of :func:`global_avg_pool`: each position gets dy / prod(S).

    Shape: dy (N, C, 1, ..., 1) -> dx (N, C, *S), a new array.
    """
    shape = cache["x_shape"]
    return np.broadcast_to(dy / int(np.prod(shape[2:])), shape).copy()


def global_max_pool(x):
    """Max over all spatial positions: ``y[n, c] = max_s x[n, c, s]`` (the first max, or the first NaN).

    Shape: x (N, C, *S) -> y (N, C, 1, ..., 1); y has x's dtype.

    Returns:
        ``(y, cache)``; the cache holds the flat argmax per channel, where backward sends the gradient.

    Raises:
        ValueError (from ``argmax``): x has no spatial positions (prod(S) == 0).

    >>> y, cache = global_max_pool(np.array([[[[1, 9], [9, 2]]]], np.float32))
    >>> float(y[0, 0, 0, 0]), global_max_pool_backward(np.ones_like(y), cache)[0, 0].tolist()
    (9.0, [[0.0, 1.0], [0.0, 0.0]])
    """
    N, C, *spatial = x.shape
    flat = x.reshape(N, C, int(np.prod(spatial)))
    argmax = flat.argmax(axis=2)[:, :, None]  # (N, C, 1)
    y = np.take_along_axis(flat, argmax, axis=2).reshape(N, C, *(1,) * len(spatial))
    return y, dict(x_shape=x.shape, argmax=argmax)


def global_max_pool_backward(dy, cache):
    """The gradient of :func:`global_max_pool`: dy goes to each channel's argmax, zero elsewhere.

    Shape: dy (N, C, 1, ..., 1) -> dx (N, C, *S), dx.dtype = dy.dtype.
    """
    N, C, *spatial = cache["x_shape"]
    dx = np.zeros((N, C, int(np.prod(spatial))), dy.dtype)
    np.put_along_axis(dx, cache["argmax"], dy.reshape(N, C, 1), axis=2)
    return dx.reshape(cache["x_shape"])


max_pool1d_backward = max_pool2d_backward = max_poolnd_backward
avg_pool2d_backward = avg_poolnd_backward
lp_pool2d_backward = lp_poolnd_backward
