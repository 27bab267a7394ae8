"""The fully connected layer, flattening a volume into a vector, and (inverted) dropout.

A fully connected layer is a matrix multiply: every output is connected to every input, ``y = x W^T + b``
with W (out_features, in_features) as in PyTorch. Flatten is the reshape between the last volume
(N, C, H, W) and the first fully connected layer; its backward is the reshape back.
"""

import numpy as np


def linear(x, weight, bias=None):
    """y = x W^T + b over the last axis.

    Shape: x (N, *, in_features), weight (out_features, in_features), bias (out_features,) or None
    -> y (N, *, out_features).

    Args:
        x: floating-point input. weight: (out_features, in_features). bias=None: (out_features,) or None.

    Returns:
        ``(y, cache)``; the cache is ``(x, weight, has_bias)`` for :func:`linear_backward`.

    Raises:
        ValueError (from ``np.matmul`` / broadcasting): x.shape[-1] != in_features, or a bias of another
            length.

    >>> y, _ = linear(np.ones((2, 3)), np.arange(6.0).reshape(2, 3), np.array([0.5, -0.5]))
    >>> y.tolist()
    [[3.5, 11.5], [3.5, 11.5]]
    """
    y = np.matmul(x, weight.T)
    if bias is not None:
        y += bias
    return y, (x, weight, bias is not None)


def linear_backward(dy, cache):
    """The gradient of :func:`linear`: dx = dy W, dW = dy^T x, db = the sum of dy over every leading axis.

    Shape: dy (N, *, out_features) -> dx (N, *, in_features), dweight (out_features, in_features),
    dbias (out_features,).

    Args:
        dy: the gradient of y. cache: from :func:`linear`.

    Returns:
        ``(dx, dweight, dbias)``; dbias is None when the forward had no bias.
    """
    x, weight, has_bias = cache
    dx = np.matmul(dy, weight)
    dy2, x2 = dy.reshape(-1, dy.shape[-1]), x.reshape(-1, x.shape[-1])  # fold every leading axis into rows
    dw = dy2.T @ x2
    db = dy2.sum(axis=0) if has_bias else None
    return dx, dw, db


def flatten(x, start_dim=1, end_dim=-1):
    """Merge the axes start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) with the defaults.

    The order is C-order over (C, H, W) like PyTorch's, so a Linear after it has PyTorch's weight layout.

    Shape: x (d_0, ..., d_{n-1}) -> y (d_0, ..., d_{start-1}, prod(d_start..d_end), d_{end+1}, ...).

    Args:
        x: any array with at least one axis. start_dim=1, end_dim=-1: negative values count from the end.

    Returns:
        ``(y, cache)``; y is a view when possible, the cache is the input shape.

    >>> flatten(np.zeros((2, 3, 4, 5)))[0].shape
    (2, 60)
    """
    shape = x.shape
    start, end = start_dim % x.ndim, end_dim % x.ndim
    merged = int(np.prod(shape[start:end + 1]))  # not -1: an empty batch leaves nothing to infer it from
    return x.reshape(*shape[:start], merged, *shape[end + 1:]), shape


def flatten_backward(dy, cache):
    """The gradient of :func:`flatten`: the reshape back, dy (N, C*H*W) -> dx (N, C, H, W).

    Args:
        dy: the gradient of y. cache: from :func:`flatten` (the input shape).

    Returns:
        dx.
    """
    return dy.reshape(cache)


def dropout(x, p=0.5, *, rng, training=True):
    """Inverted dropout: zero each element with probability p and scale the survivors by 1 / (1 - p).

    Scaling at training time (rather than multiplying by 1 - p at test time, as in the original paper)
    keeps the expected activation unchanged, so evaluation is the identity and needs no special case.

    Shape: any -> the same shape; y keeps x's dtype.

    Args:
        x: a floating-point array. p=0.5: the drop probability in [0, 1] (not checked here).
        rng: a ``numpy.random.Generator`` (keyword, required unless nothing is dropped).
        training=True: False returns x unchanged.

    Returns:
        ``(y, cache)``; the cache is the mask times 1 / (1 - p) (all zeros for p=1; None when training is
        False or p=0, and then y is x itself).

    >>> y, mask = dropout(np.ones((2, 1000)), 0.25, rng=np.random.default_rng(0))
    >>> sorted(set(y.ravel().round(4).tolist())), round(float(y.mean()), 1)
    ([0.0, 1.3333], 1.0)
    """
    if not training or p == 0:
        return x, None
    if p == 1:  # everything dropped; 1 / (1 - p) would be inf and 0 * inf NaN
        mask = np.zeros_like(x)
    else:
        keep = rng.random(x.shape, dtype=np.float32) >= p
        mask = keep.astype(x.dtype) * x.dtype.type(1 / (1 - p))
    return x * mask, mask


def dropout_backward(dy, cache):
    """The gradient of :func:`dropout`: dx = dy * mask, through the kept units only, scaled alike.

    Shape: dy like x -> dx like dy.

    Args:
        dy: the gradient of y. cache: from :func:`dropout`.

    Returns:
        dx (dy itself when the forward dropped nothing).
    """
    mask = cache
    return dy if mask is None else dy * mask
