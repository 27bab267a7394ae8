"""Element-wise activations (and softmax over one axis), each forward next to its backward.

Every kernel keeps the input's dtype (float32 stays float32) and takes arrays of any shape and memory
order. The caches hold only what the backward needs: a mask, or the output itself when the derivative is
cheapest to write in terms of it (sigmoid, tanh, softmax, the negative side of ELU).
"""

from __future__ import annotations

import numpy as np


def relu(x):
    """max(0, x). Returns (y, cache); the cache is the mask ``x > 0`` (the gradient at 0 is 0, as in PyTorch).

    >>> y, _ = relu(np.array([-1.0, 0.0, 2.0]))
    >>> y.tolist()
    [0.0, 0.0, 2.0]
    """
    return np.maximum(x, 0), x > 0  # np.maximum keeps NaN visible, as PyTorch does


def relu_backward(dy, cache):
    """dy -> dx: the gradient passes where the input was positive."""
    return np.where(cache, dy, 0).astype(dy.dtype, copy=False)


def relu6(x):
    """min(max(0, x), 6) (MobileNet). The gradient passes only strictly inside (0, 6), as in PyTorch.

    >>> relu6(np.array([-1.0, 3.0, 7.0]))[0].tolist()
    [0.0, 3.0, 6.0]
    """
    return np.clip(x, 0, 6), (x > 0) & (x < 6)


relu6_backward = relu_backward


def leaky_relu(x, negative_slope=0.01):
    """x for x > 0, negative_slope * x otherwise. The cache is the mask ``x > 0`` and the slope.

    >>> leaky_relu(np.array([-2.0, 3.0]), 0.1)[0].tolist()
    [-0.2, 3.0]
    """
    mask = x > 0
    return np.where(mask, x, x * negative_slope).astype(x.dtype, copy=False), (mask, negative_slope)


def leaky_relu_backward(dy, cache):
    mask, negative_slope = cache
    return np.where(mask, dy, dy * negative_slope).astype(dy.dtype, copy=False)


def elu(x, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise (Clevert et al. 2015).

    ``expm1`` of ``min(x, 0)``: accurate near 0 and no overflow warning for large positive x.

    >>> [round(v, 4) for v in elu(np.array([-1.0, 2.0]))[0].tolist()]
    [-0.6321, 2.0]
    """
    mask = x > 0
    y = np.where(mask, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)
    return y, (mask, y, alpha)


def elu_backward(dy, cache):
    """On the negative side d/dx alpha*(exp(x)-1) = alpha*exp(x) = y + alpha."""
    mask, y, alpha = cache
    return np.where(mask, dy, dy * (y + alpha)).astype(dy.dtype, copy=False)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow for any x.

    With e = exp(-|x|) <= 1 the two algebraically equal forms 1/(1+e) (for x >= 0) and e/(1+e) (for x < 0)
    never exponentiate a large positive number. The cache is y, since dy/dx = y (1 - y).

    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))[0].tolist()
    [0.0, 0.5, 1.0]
    """
    e = np.exp(-np.abs(x))
    y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
    return y, y


def sigmoid_backward(dy, cache):
    y = cache
    return dy * y * (1 - y)


def tanh(x):
    """Hyperbolic tangent; the cache is y, since dy/dx = 1 - y^2.

    >>> tanh(np.array([0.0]))[0].tolist()
    [0.0]
    """
    y = np.tanh(x)
    return y, y


def tanh_backward(dy, cache):
    y = cache
    return dy * (1 - y * y)


def softmax(x, axis=1):
    """exp(x) / sum(exp(x)) along ``axis``, stable for any scores.

    Subtracting the maximum along the axis first leaves the result unchanged (it cancels in the ratio) and
    makes every exponent <= 0, so nothing overflows. The cache is (y, axis).

    >>> y, _ = softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]]))
    >>> y.round(4).tolist()
    [[0.5, 0.5], [0.25, 0.75]]
    """
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)
    return y, (y, axis)


def softmax_backward(dy, cache):
    """dx = y * (dy - sum(dy * y)) along the axis: the Jacobian diag(y) - y y^T applied to dy."""
    y, axis = cache
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))
