"""Element-wise activations (and softmax over one axis), each forward next to its backward.

Every kernel keeps the input's dtype (float32 stays float32) and takes arrays of any shape. The caches
hold only what the backward needs: a mask, or the output itself when the derivative is cheapest to write
in terms of it (sigmoid, tanh, softmax, the negative side of ELU).

Selections use ``np.where`` rather than a multiply by the mask: ``0 * inf`` would be NaN.
"""

import numpy as np


def relu(x):
    """max(0, x), element-wise; NaN stays NaN.

    Shape: any -> the same shape; y keeps x's dtype.

    Returns:
        ``(y, cache)``; the cache is the mask ``x > 0`` (the gradient at 0 is 0, as in PyTorch).

    >>> y, _ = relu(np.array([-1.0, 0.0, 2.0]))
    >>> y.tolist()
    [0.0, 0.0, 2.0]
    """
    return np.maximum(x, 0), x > 0  # np.maximum keeps NaN visible, as PyTorch does


def relu_backward(dy, cache):
    """The gradient of :func:`relu` (and :func:`relu6`): dx = dy where the cached mask holds, else 0.

    Shape: dy like x -> dx like dy.
    """
    mask = cache
    return np.where(mask, dy, dy.dtype.type(0))


def add(a, b, *, out=None, relu=False):
    """a + b, element-wise, then max(0, .) with ``relu=True``: a residual connection's sum and the ReLU
    after it (ResNet). ``out``: an array of a's shape to write into (``a`` itself for an in-place sum).

    Returns:
        ``(y, None)``: no cache; the gradient of a sum is dy for each term (and the ReLU's is its own).

    >>> add(np.array([1.0, -3.0]), np.array([1.0, 1.0]), relu=True)[0].tolist()
    [2.0, 0.0]
    """
    y = np.add(a, b, out=out)
    return (np.maximum(y, 0, out=y) if relu else y), None


def add_backward(dy, cache):
    """The gradient of :func:`add` without its ReLU: dy for each term."""
    return dy, dy


def relu6(x):
    """min(max(0, x), 6) (MobileNet). The gradient passes only strictly inside (0, 6), as in PyTorch.

    Shape: any -> the same shape; y keeps x's dtype.

    Returns:
        ``(y, cache)``; the cache is the mask ``(x > 0) & (x < 6)``; backward is :func:`relu_backward`.

    >>> relu6(np.array([-1.0, 3.0, 7.0]))[0].tolist()
    [0.0, 3.0, 6.0]
    """
    return np.clip(x, 0, 6), (x > 0) & (x < 6)


relu6_backward = relu_backward


def leaky_relu(x, negative_slope=0.01):
    """x for x > 0, negative_slope * x otherwise.

    Shape: any -> the same shape; y keeps x's dtype.

    Returns:
        ``(y, cache)``; the cache is ``(x > 0, negative_slope)``.

    >>> leaky_relu(np.array([-2.0, 3.0]), 0.1)[0].tolist()
    [-0.2, 3.0]
    """
    mask = x > 0
    return np.where(mask, x, x * x.dtype.type(negative_slope)), (mask, negative_slope)


def leaky_relu_backward(dy, cache):
    """The gradient of :func:`leaky_relu`: dx = dy where x > 0, ``negative_slope * dy`` elsewhere.

    Shape: dy like x -> dx like dy.
    """
    mask, negative_slope = cache
    return np.where(mask, dy, dy * dy.dtype.type(negative_slope))


def elu(x, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise (Clevert et al. 2015).

    ``expm1`` of ``min(x, 0)``: accurate near 0 and no overflow warning for large positive x.

    Shape: any -> the same shape; y keeps x's dtype.

    Returns:
        ``(y, cache)``; the cache is ``(x > 0, y, alpha)``.

    >>> [round(v, 4) for v in elu(np.array([-1.0, 2.0]))[0].tolist()]
    [-0.6321, 2.0]
    """
    mask = x > 0
    y = np.where(mask, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0)))
    return y, (mask, y, alpha)


def elu_backward(dy, cache):
    """The gradient of :func:`elu`: dx = dy for x > 0; on the negative side d/dx alpha*(exp(x)-1) =
    alpha*exp(x) = y + alpha, so dx = dy * (y + alpha).

    Shape: dy like x -> dx like dy.
    """
    mask, y, alpha = cache
    return np.where(mask, dy, dy * (y + y.dtype.type(alpha)))


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow for any x.

    With e = exp(-|x|) <= 1 the two algebraically equal forms 1/(1+e) (for x >= 0) and e/(1+e) (for x < 0)
    never exponentiate a large positive number.

    Shape: any -> the same shape; y keeps x's dtype.

    Returns:
        ``(y, cache)``; the cache is y, since dy/dx = y (1 - y).

    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))[0].tolist()
    [0.0, 0.5, 1.0]
    """
    e = np.exp(-np.abs(x))
    y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return y, y


def sigmoid_backward(dy, cache):
    """The gradient of :func:`sigmoid`: dx = dy * y * (1 - y).

    Shape: dy like x -> dx like dy.
    """
    y = cache
    return dy * y * (1 - y)


def tanh(x):
    """Hyperbolic tangent, element-wise.

    Shape: any -> the same shape; y keeps x's dtype.

    Returns:
        ``(y, cache)``; the cache is y, since dy/dx = 1 - y^2.

    >>> tanh(np.array([0.0]))[0].tolist()
    [0.0]
    """
    y = np.tanh(x)
    return y, y


def tanh_backward(dy, cache):
    """The gradient of :func:`tanh`: dx = dy * (1 - y^2).

    Shape: dy like x -> dx like dy.
    """
    y = cache
    return dy * (1 - y * y)


def softmax(x, dim=1):
    """exp(x) / sum(exp(x)) along ``dim``, stable for any scores.

    Subtracting the maximum along dim first leaves the result unchanged (it cancels in the ratio) and
    makes every exponent <= 0, so nothing overflows.

    Shape: any -> the same shape; y keeps x's dtype.

    Returns:
        ``(y, cache)``; the cache is ``(y, dim)``.

    Raises:
        numpy.exceptions.AxisError (a ValueError and IndexError): x has no axis ``dim``.

    >>> y, _ = softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]]))
    >>> y.round(4).tolist()
    [[0.5, 0.5], [0.25, 0.75]]
    """
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    y = e / e.sum(axis=dim, keepdims=True)
    return y, (y, dim)


def softmax_backward(dy, cache):
    """The gradient of :func:`softmax`: dx = y * (dy - sum(dy * y)) along the axis, i.e. the Jacobian
    diag(y) - y y^T applied to dy.

    Shape: dy like x -> dx like dy.
    """
    y, dim = cache
    return y * (dy - (dy * y).sum(axis=dim, keepdims=True))


def log_softmax(x, dim=1):
    """log(softmax(x)) along ``dim``, computed as ``x - max - log(sum(exp(x - max)))``.

    Taking the log of :func:`softmax` would give -inf where a probability underflows to 0; this form stays
    finite for any finite scores (a score 1e4 below the others gives about -1e4, not -inf).

    Shape: any -> the same shape; y keeps x's dtype.

    Returns:
        ``(y, cache)``; the cache is ``(y, dim)``, since softmax(x) = exp(y).

    Raises:
        numpy.exceptions.AxisError (a ValueError and IndexError): x has no axis ``dim``.

    >>> y, _ = log_softmax(np.array([[1e4, 0.0]]))
    >>> y.tolist()
    [[0.0, -10000.0]]
    """
    shifted = x - x.max(axis=dim, keepdims=True)
    y = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
    return y, (y, dim)


def log_softmax_backward(dy, cache):
    """The gradient of :func:`log_softmax`: dx = dy - softmax(x) * sum(dy) along the axis (each output
    y_i = x_i - log sum exp(x) pulls every x_j down by its probability).

    Shape: dy like x -> dx like dy.
    """
    y, dim = cache
    return dy - np.exp(y) * dy.sum(axis=dim, keepdims=True)
