"""Batch normalization and local response normalization, each forward next to its backward.

Batch norm normalises every channel over the batch (and the spatial axes): for x (N, C, *S) the
statistics of channel c are taken over the M = N * prod(S) values ``x[:, c]``. The kernels are pure:
updating running statistics is the layer's job, which reads the batch statistics from the cache.
"""

import numpy as np


def _channel_view(v, ndim):
    """(C,) -> (1, C, 1, ...): broadcastable against an (N, C, *S) array."""
    return v.reshape(1, -1, *(1,) * (ndim - 2))


def batch_norm(x, weight=None, bias=None, mean=None, var=None, eps=1e-5):
    """Normalise each channel, then scale and shift: ``y = (x - mean) / sqrt(var + eps) * weight + bias``.

    With ``mean``/``var`` None the batch's own statistics are used (training); given, they are treated as
    constants (evaluation with running statistics). The batch variance is the biased one (divided by M),
    as in the normalisation of PyTorch and of Ioffe & Szegedy.

    Shape: x (N, C) or (N, C, *S); weight, bias, mean, var (C,) -> y like x.

    Args:
        x: floating-point input. weight=None, bias=None: (C,) or None (no scale / no shift).
        mean=None, var=None: (C,) running statistics, or None for the batch's over its M = N * prod(S)
        values per channel. eps=1e-5: added to var.

    Returns:
        ``(y, cache)``; y has x's dtype. The cache holds ``batch_mean`` and ``batch_var`` (None when the
        statistics were given) so that a layer can update its running averages, and ``x_hat``,
        ``inv_std`` and ``axes`` (the reduced axes), which synchronised batch norm reads.

    >>> y, cache = batch_norm(np.array([[1.0], [3.0]]))
    >>> y.round(3).tolist(), float(cache["batch_mean"][0]), float(cache["batch_var"][0])
    ([[-1.0], [1.0]], 2.0, 1.0)
    """
    axes = (0, *range(2, x.ndim))  # every axis but the channels
    batch_stats = mean is None
    if batch_stats:
        mean = x.mean(axis=axes)
        var = ((x - _channel_view(mean, x.ndim)) ** 2).mean(axis=axes)  # biased: divided by M, not M - 1
    else:  # running statistics, in x's dtype so that float32 stays float32
        mean, var = mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False)
    inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
    x_hat = (x - _channel_view(mean, x.ndim)) * _channel_view(inv_std, x.ndim)  # mean 0, variance 1
    y = x_hat if weight is None else x_hat * _channel_view(weight, x.ndim)
    if bias is not None:
        y = y + _channel_view(bias, x.ndim)
    cache = dict(x_hat=x_hat, inv_std=inv_std, weight=weight, has_bias=bias is not None, axes=axes,
                 batch_stats=batch_stats, batch_mean=mean if batch_stats else None,
                 batch_var=var if batch_stats else None)
    return y, cache


def batch_norm_backward(dy, cache):
    """The gradient of :func:`batch_norm`: dy -> (dx, dweight, dbias).

    Shape: dy like x -> dx like x; dweight, dbias (C,).

    Returns:
        ``(dx, dweight, dbias)``; dweight / dbias are None when the forward had no weight / no bias.

    ``dweight = sum(dy * x_hat)`` and ``dbias = sum(dy)`` over the batch (and spatial) axes. With batch
    statistics the mean and variance depend on every x, which gives the compact form
    ``dx = weight * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat))``; with fixed statistics it is
    simply ``dx = weight * inv_std * dy``.
    """
    x_hat, inv_std, weight, axes = cache["x_hat"], cache["inv_std"], cache["weight"], cache["axes"]
    dweight = None if weight is None else (dy * x_hat).sum(axis=axes)
    dbias = dy.sum(axis=axes) if cache["has_bias"] else None
    scale = inv_std if weight is None else inv_std * weight  # d y / d x_hat times d x_hat / d x
    if not cache["batch_stats"]:
        return dy * _channel_view(scale, dy.ndim), dweight, dbias
    # The mean pulls every x_hat down by mean(dy); the variance rescales along x_hat by mean(dy * x_hat).
    dy_mean = dy.mean(axis=axes, keepdims=True)
    dy_x_hat_mean = (dy * x_hat).mean(axis=axes, keepdims=True)
    dx = _channel_view(scale, dy.ndim) * (dy - dy_mean - x_hat * dy_x_hat_mean)
    return dx, dweight, dbias


def _window_sum(a, before, after, size):
    """Sum over a window of ``size`` zero-padded channels: out[c] = sum a[c - before .. c + after]."""
    padded = np.pad(a, ((0, 0), (before, after), *((0, 0),) * (a.ndim - 2)))
    C = a.shape[1]
    out = padded[:, 0:C].copy()
    for offset in range(1, size):  # a loop over the window, never over pixels
        out += padded[:, offset:offset + C]
    return out


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalization across channels (AlexNet), exactly PyTorch's definition.

    ``y_c = x_c / d_c ** beta`` with ``d_c = k + alpha / size * sum_{c'} x_{c'}^2``, where c' runs over the
    window ``c - size//2 .. c + (size-1)//2`` and channels outside 0..C-1 count as zeros. Note that alpha
    is divided by ``size`` (PyTorch's and Caffe's convention; the AlexNet paper's formula has no division).

    Shape: x (N, C, *S) -> y (N, C, *S).

    Args:
        x: floating-point input. size: the window, in channels. alpha=1e-4, beta=0.75, k=1.0: as in the
        formula (not checked here; the layer requires k > 0 and alpha >= 0).

    Returns:
        ``(y, cache)``; y has x's dtype.

    >>> y, _ = local_response_norm(np.ones((1, 3, 1, 1)), size=3, alpha=3.0, beta=1.0, k=0.0)
    >>> y.ravel().tolist()  # edge channels see 2 squares, the middle one 3
    [0.5, 0.3333333333333333, 0.5]
    """
    before, after = size // 2, (size - 1) // 2
    scale = x.dtype.type(alpha / size)  # NumPy scalars of x's dtype: float32 stays float32
    d = x.dtype.type(k) + scale * _window_sum(x * x, before, after, size)
    d_pow = d ** x.dtype.type(-beta)  # d^-beta
    y = x * d_pow
    return y, dict(x=x, d=d, d_pow=d_pow, size=size, scale=scale, beta=beta)


def local_response_norm_backward(dy, cache):
    """The gradient of :func:`local_response_norm`: dy (N, C, *S) -> dx (N, C, *S).

    ``dx_j = dy_j d_j^-beta - 2 beta (alpha/size) x_j sum_{c : j in window(c)} dy_c x_c d_c^(-beta-1)``;
    the channels c whose window contains j are ``j - (size-1)//2 .. j + size//2``: the same window,
    mirrored.
    """
    x, d, d_pow, size, scale, beta = (cache[k] for k in ("x", "d", "d_pow", "size", "scale", "beta"))
    t = dy * x * d_pow / d  # dy_c x_c d_c^(-beta-1)
    mirrored = _window_sum(t, (size - 1) // 2, size // 2, size)
    return dy * d_pow - x.dtype.type(2 * beta) * scale * x * mirrored
