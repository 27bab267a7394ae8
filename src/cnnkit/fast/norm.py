"""Fast batch normalization, its forward next to its backward.

Speeds up: :func:`cnnkit.reference.norm.batch_norm` (same signature and cache keys). Statistics,
normalization and gradient each run in one pass over cache-sized batch chunks on the elementwise threads,
channels-last memory stays channels-last, and with given statistics the forward is one multiply-add
``x * scale + shift``. Measured in docs/performance-elementwise.md.

Batch norm normalises every channel over the batch (and the spatial axes): for x (N, C, *S) the
statistics of channel c are taken over the N * prod(S) values ``x[:, c]``. The kernels are pure: updating
running statistics is the layer's job, which reads the batch statistics from the cache.
"""

from __future__ import annotations

import functools

import numpy as np

from cnnkit.layout import is_channels_last
from cnnkit.runtime import map_chunks, over_batch


def _channel_view(v, ndim):
    """(C,) -> (1, C, 1, ...): broadcastable against an (N, C, *S) array."""
    return v.reshape(1, -1, *(1,) * (ndim - 2))


def _channel_sum(a, b=None):
    """Per-channel sum of a (or of a * b, without the temporary) over every axis but 1: (N, C, *S) -> (C,).

    On C-ordered arrays an einsum over the (N, C, prod(S)) view reads the memory once in long runs
    (3x faster than ``a.sum(axis=(0, 2, 3))``, and no product array); channels-last arrays are summed as
    (N*S, C) rows; other layouts use the plain sum.
    """
    if a.flags.c_contiguous and (b is None or (b.flags.c_contiguous and b.shape == a.shape)):
        a3 = a.reshape(*a.shape[:2], -1)
        return np.einsum("nci->c", a3) if b is None else np.einsum("nci,nci->c", a3, b.reshape(a3.shape))
    if is_channels_last(a) and (b is None or (is_channels_last(b) and b.shape == a.shape)):
        a2 = np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])  # channels-last memory: (N*S, C) rows, a view
        b2 = None if b is None else np.moveaxis(b, 1, -1).reshape(a2.shape)
        return a2.sum(axis=0) if b is None else np.einsum("ic,ic->c", a2, b2)
    axes = (0, *range(2, a.ndim))
    return np.sum(a if b is None else a * b, axis=axes)


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
        ``(y, cache)``; y has x's dtype. The cache also holds ``batch_mean`` and ``batch_var`` (None when
        the statistics were given) so that a layer can update its running averages.

    >>> y, cache = batch_norm(np.array([[1.0], [3.0]]))
    >>> y.round(3).tolist(), float(cache["batch_mean"][0]), float(cache["batch_var"][0])
    ([[-1.0], [1.0]], 2.0, 1.0)
    """
    axes, view = (0, *range(2, x.ndim)), functools.partial(_channel_view, ndim=x.ndim)
    if mean is not None:  # fixed statistics: one multiply-add, as PyTorch's kernel (x_hat made on demand)
        mean, var = mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False)
        inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
        scale = inv_std if weight is None else inv_std * weight
        shift = -mean * scale if bias is None else bias - mean * scale
        y = np.empty_like(x)

        def affine(b):
            np.multiply(x[b], view(scale), out=y[b])
            y[b] += view(shift)

        over_batch(affine, len(x), x[:1].nbytes)
        cache = _NormCache(x=x, mean=mean, inv_std=inv_std, weight=weight, has_bias=bias is not None,
                           axes=axes, batch_stats=False, batch_mean=None, batch_var=None)
        return y, cache
    # Batch statistics, in three passes over cache-sized batch chunks (on the elementwise threads): the
    # channel sums; x - mean and its sum of squares; x_hat and y. Each chunk is read while in cache.
    m = x.size // x.shape[1]  # values per channel (a Python int keeps float32 float32)
    mean = _chunk_sums(lambda b: _channel_sum(x[b]), x) / m
    x_hat = np.empty_like(x)

    def center(b):
        np.subtract(x[b], view(mean), out=x_hat[b])
        return _channel_sum(x_hat[b], x_hat[b])

    var = _chunk_sums(center, x) / m
    inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
    y = x_hat if weight is None and bias is None else np.empty_like(x)

    def normalize(b):
        x_hat[b] *= view(inv_std)
        if weight is not None:
            np.multiply(x_hat[b], view(weight), out=y[b])
        elif bias is not None:
            y[b] = x_hat[b]
        if bias is not None:
            y[b] += view(bias)

    over_batch(normalize, len(x), x[:1].nbytes)
    cache = _NormCache(x_hat=x_hat, inv_std=inv_std, weight=weight, has_bias=bias is not None, axes=axes,
                       batch_stats=True, batch_mean=mean, batch_var=var)
    return y, cache


def _chunk_sums(work, a):
    """The sum over a's batch chunks of ``work(chunk)`` (per-channel partial sums), chunks on threads."""
    parts = map_chunks(work, len(a), a[:1].nbytes)
    return np.sum(parts, axis=0) if parts else np.zeros(a.shape[1], a.dtype)


class _NormCache(dict):
    """batch_norm's cache; with fixed statistics ``x_hat`` is made from x only if asked for (the weight's
    gradient needs it; evaluation never does)."""

    def __missing__(self, key):
        if key != "x_hat" or "x" not in self:
            raise KeyError(key)
        x = self["x"]
        self["x_hat"] = (x - _channel_view(self["mean"], x.ndim)) * _channel_view(self["inv_std"], x.ndim)
        return self["x_hat"]


def batch_norm_backward(dy, cache):
    """The gradient of :func:`batch_norm`: dy -> (dx, dweight, dbias).

    Shape: dy like x -> dx like x; dweight, dbias (C,).

    Args:
        dy: the gradient of y. cache: from :func:`batch_norm`.

    Returns:
        ``(dx, dweight, dbias)``; dweight / dbias are None when the forward had no weight / no bias.

    With batch statistics the mean and variance depend on every x, which gives the compact form
    ``dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))`` with ``g = dy * weight`` and the means over
    the batch (and spatial) axes. With fixed statistics it is simply ``dx = g * inv_std``.
    """
    inv_std, weight, nd = cache["inv_std"], cache["weight"], dy.ndim
    scale = inv_std if weight is None else inv_std * weight
    if not cache["batch_stats"]:
        dweight = None if weight is None else _channel_sum(dy, cache["x_hat"])
        dbias = _channel_sum(dy) if cache["has_bias"] else None
        return dy * _channel_view(scale, nd), dweight, dbias
    x_hat, m, view = cache["x_hat"], dy.size // dy.shape[1], functools.partial(_channel_view, ndim=nd)
    sums = _chunk_sums(lambda b: np.stack([_channel_sum(dy[b]), _channel_sum(dy[b], x_hat[b])]), dy)
    dy_sum, dy_x_hat_sum = (sums[0], sums[1]) if sums.ndim == 2 else (sums, sums)  # an empty batch: zeros
    dbias = dy_sum if cache["has_bias"] else None
    dweight = None if weight is None else dy_x_hat_sum
    # g = dy * weight, so the weight factors out: dx = weight * inv_std * (dy - mean(dy) - x_hat *
    # mean(dy x_hat)), built in place in one array, chunk by chunk while it is in cache.
    dx = np.empty_like(x_hat)

    def gradient(b):
        np.multiply(x_hat[b], view(-(dy_x_hat_sum / m)), out=dx[b])
        dx[b] += dy[b]
        dx[b] -= view(dy_sum / m)
        dx[b] *= view(scale)

    over_batch(gradient, len(dy), dy[:1].nbytes)
    return dx, dweight, dbias
