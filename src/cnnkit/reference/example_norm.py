"""Normalization within each example: group norm and its two ends, layer norm and instance norm.

Batch norm (:mod:`cnnkit.reference.norm`) takes its statistics over the batch; these take them over parts
of one example, so each example is normalized on its own and the batch size does not matter:

    group_norm     x (N, C, *S): the C channels in G groups; one mean and variance per (example, group)
                   over its C/G channels and all positions (Wu & He 2018); weight, bias per channel
    instance_norm  G = C: one mean and variance per (example, channel) over the positions (Ulyanov et
                   al. 2016, style transfer); or given running statistics per channel
    layer_norm     one mean and variance per example over the trailing axes ``normalized_shape``
                   (Ba et al. 2016); weight and bias of that shape, one per normalized element

All use the biased variance (divided by the count) and ``x_hat = (x - mean) / sqrt(var + eps)``, and
share one backward: with ``g = dL/dx_hat``, ``dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))``
over the reduced axes, the batch norm formula applied per group.
"""

import numpy as np


def _standardize(x, axes, eps):
    """(x_hat, inv_std, mean, var) with statistics over ``axes`` (kept as size-1 axes)."""
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=axes, keepdims=True)  # biased: divided by the count
    inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
    return centered * inv_std, inv_std, mean, var


def _standardize_backward(g, x_hat, inv_std, axes):
    """dL/dx from g = dL/dx_hat when the statistics over ``axes`` depend on x (see the module doc)."""
    return inv_std * (g - g.mean(axis=axes, keepdims=True)
                      - x_hat * (g * x_hat).mean(axis=axes, keepdims=True))


def _channel_view(v, ndim):
    return v.reshape(1, -1, *(1,) * (ndim - 2))


def _affine(x_hat, weight, bias, view):
    y = x_hat if weight is None else x_hat * view(weight)
    return y if bias is None else y + view(bias)


def _affine_backward(dy, x_hat, weight, has_bias, view, axes):
    """(g = dL/dx_hat, dweight, dbias) of ``y = x_hat * weight + bias`` with the parameters broadcast by
    ``view``; their gradients are summed over ``axes``, the axes they do not have."""
    dweight = None if weight is None else (dy * x_hat).sum(axis=axes)
    dbias = dy.sum(axis=axes) if has_bias else None
    return (dy if weight is None else dy * view(weight)), dweight, dbias


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalize each group of C / num_groups channels of each example, then scale and shift per channel.

    Shape: x (N, C, *S) with C divisible by num_groups; weight, bias (C,) or None -> y like x.

    Returns:
        ``(y, cache)``; ``cache["mean"]``, ``cache["var"]`` are the (N, num_groups) statistics.

    >>> y, _ = group_norm(np.array([[[1.0], [3.0], [5.0], [5.0]]]), 2)  # groups {1, 3} and {5, 5}
    >>> y.ravel().round(4).tolist()
    [-1.0, 1.0, 0.0, 0.0]
    """
    N, C = x.shape[:2]
    per_group = C // num_groups * int(np.prod(x.shape[2:]))
    grouped = x.reshape(N, num_groups, per_group)  # (N, G, C/G * prod(S)): one row per group
    x_hat, inv_std, mean, var = _standardize(grouped, (2,), eps)
    x_hat = x_hat.reshape(x.shape)
    y = _affine(x_hat, weight, bias, lambda v: _channel_view(v, x.ndim))
    cache = dict(x_hat=x_hat, inv_std=inv_std, weight=weight, has_bias=bias is not None, rows=grouped.shape,
                 mean=mean[..., 0], var=var[..., 0])
    return y, cache


def group_norm_backward(dy, cache):
    """The gradients of :func:`group_norm`: dy -> (dx, dweight, dbias); dweight/dbias None without them.

    Shape: dy like x -> dx like x; dweight, dbias (C,).
    """
    x_hat, inv_std, weight = cache["x_hat"], cache["inv_std"], cache["weight"]
    axes = (0, *range(2, dy.ndim))  # the parameters' gradients sum over examples and positions
    g, dweight, dbias = _affine_backward(dy, x_hat, weight, cache["has_bias"],
                                         lambda v: _channel_view(v, dy.ndim), axes)
    rows = cache["rows"]
    dx = _standardize_backward(g.reshape(rows), x_hat.reshape(rows), inv_std, (2,))
    return dx.reshape(dy.shape), dweight, dbias


def instance_norm(x, weight=None, bias=None, mean=None, var=None, eps=1e-5):
    """Normalize each channel of each example over its positions, then scale and shift per channel.

    With ``mean``/``var`` None the statistics are each (example, channel)'s own (training, and evaluation
    without running statistics); given (C,) running statistics, they are constants for every example,
    exactly as in :func:`cnnkit.reference.norm.batch_norm`.

    Shape: x (N, C, *S); weight, bias, mean, var (C,) or None -> y like x.

    Returns:
        ``(y, cache)``; ``cache["mean"]`` and ``cache["var"]`` are the (N, C) instance statistics (None
        when given), from which a layer updates its running averages.

    >>> y, _ = instance_norm(np.array([[[1.0, 3.0], [0.0, 4.0]]]))
    >>> y.round(4).tolist()
    [[[-1.0, 1.0], [-1.0, 1.0]]]
    """
    def view(v):  # per channel, broadcast over N and S
        return _channel_view(v, x.ndim)

    if mean is None:
        axes = tuple(range(2, x.ndim))
        x_hat, inv_std, mean, var = _standardize(x, axes, eps)
        y = _affine(x_hat, weight, bias, view)
        return y, dict(x_hat=x_hat, inv_std=inv_std, weight=weight, has_bias=bias is not None, axes=axes,
                       mean=mean.reshape(x.shape[:2]), var=var.reshape(x.shape[:2]))
    mean, var = mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False)
    inv_std = view(1 / np.sqrt(var + x.dtype.type(eps)))
    x_hat = (x - view(mean)) * inv_std
    return _affine(x_hat, weight, bias, view), dict(x_hat=x_hat, inv_std=inv_std, weight=weight,
                                                    has_bias=bias is not None, axes=None, mean=None, var=None)


def instance_norm_backward(dy, cache):
    """The gradients of :func:`instance_norm`: dy -> (dx, dweight, dbias); with given statistics
    ``dx = weight * inv_std * dy``.

    Shape: dy like x -> dx like x; dweight, dbias (C,).
    """
    x_hat, inv_std, weight = cache["x_hat"], cache["inv_std"], cache["weight"]
    g, dweight, dbias = _affine_backward(dy, x_hat, weight, cache["has_bias"],
                                         lambda v: _channel_view(v, dy.ndim), (0, *range(2, dy.ndim)))
    if cache["axes"] is None:
        return g * inv_std, dweight, dbias
    return _standardize_backward(g, x_hat, inv_std, cache["axes"]), dweight, dbias


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize each example over its trailing axes ``normalized_shape``, then scale and shift each
    normalized element.

    Shape: x (*, *normalized_shape); weight, bias of normalized_shape or None -> y like x.

    Returns:
        ``(y, cache)``.

    >>> y, _ = layer_norm(np.array([[1.0, 3.0], [2.0, 2.0]]), (2,))
    >>> y.round(4).tolist()
    [[-1.0, 1.0], [0.0, 0.0]]
    """
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    x_hat, inv_std, _, _ = _standardize(x, axes, eps)
    y = _affine(x_hat, weight, bias, lambda v: v)
    return y, dict(x_hat=x_hat, inv_std=inv_std, weight=weight, has_bias=bias is not None, axes=axes)


def layer_norm_backward(dy, cache):
    """The gradients of :func:`layer_norm`: dy -> (dx, dweight, dbias), the parameters' summed over the
    leading axes.

    Shape: dy like x -> dx like x; dweight, dbias of normalized_shape.
    """
    x_hat, inv_std, weight, axes = cache["x_hat"], cache["inv_std"], cache["weight"], cache["axes"]
    leading = tuple(range(dy.ndim - len(axes)))
    g, dweight, dbias = _affine_backward(dy, x_hat, weight, cache["has_bias"], lambda v: v, leading)
    return _standardize_backward(g, x_hat, inv_std, axes), dweight, dbias
