"""The fully connected layer, flattening a volume into a vector, and (inverted) dropout.

A fully connected layer is a matrix multiply: every output is connected to every input, ``y = x W^T + b``
with W (out_features, in_features) as in PyTorch. Flatten is the reshape between the last volume
(N, C, H, W) and the first fully connected layer; its backward is the reshape back.
"""

from __future__ import annotations

import numpy as np


def linear(x, weight, bias=None):
    """y = x W^T + b over the last axis.

    Shape: x (N, *, in_features), weight (out_features, in_features), bias (out_features,) or None
    -> y (N, *, out_features).

    Returns ``(y, cache)``; pass the cache to :func:`linear_backward`.

    >>> y, _ = linear(np.ones((2, 3)), np.arange(6.0).reshape(2, 3), np.array([0.5, -0.5]))
    >>> y.tolist()
    [[3.5, 11.5], [3.5, 11.5]]
    """
    y = np.matmul(x, weight.T)
    if bias is not None:
        y += bias
    return y, (x, weight, bias is not None)


def linear_backward(dy, cache):
    """dy (N, *, out) -> (dx, dweight, dbias): dx = dy W, dW = dy^T x, db = sum of dy (None without bias)."""
    x, weight, has_bias = cache
    dx = np.matmul(dy, weight)
    dy2, x2 = dy.reshape(-1, dy.shape[-1]), x.reshape(-1, x.shape[-1])  # fold every leading axis into rows
    dw = dy2.T @ x2
    db = dy2.sum(axis=0) if has_bias else None
    return dx, dw, db


def flatten(x, start_dim=1, end_dim=-1):
    """Merge the axes start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) with the defaults.

    The order is C-order over (C, H, W) like PyTorch's, so a Linear after it has PyTorch's weight layout.
    Returns ``(y, cache)``; the cache is the input shape.

    >>> flatten(np.zeros((2, 3, 4, 5)))[0].shape
    (2, 60)
    """
    shape = x.shape
    start, end = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(*shape[:start], -1, *shape[end + 1:]), shape


def flatten_backward(dy, cache):
    """dy (N, C*H*W) -> dx (N, C, H, W): the reshape back."""
    return dy.reshape(cache)


def dropout(x, p=0.5, *, rng, training=True):
    """Inverted dropout: zero each element with probability p and scale the survivors by 1 / (1 - p).

    Scaling at training time (rather than multiplying by 1 - p at test time, as in the original paper)
    keeps the expected activation unchanged, so evaluation is the identity and needs no special case.

    Args:
        x: any shape. p: the drop probability in [0, 1]. rng: a ``numpy.random.Generator``.
        training: False returns x unchanged.

    Returns ``(y, cache)``; the cache is the scaled mask (None when nothing was dropped).

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
    """dy -> dx = dy * mask: the gradient flows only through the units that were kept, scaled alike."""
    mask = cache
    return dy if mask is None else dy * mask
