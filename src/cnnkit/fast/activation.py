"""Fast element-wise activations (and softmax over one axis), each forward next to its backward.

Speeds up: :mod:`cnnkit.reference.activation` (same signatures, bit-for-bit the same results): selections
without NumPy's mispredicting branch per element, and ReLU on large arrays in cache-sized batch chunks on
the elementwise threads (docs/performance-elementwise.md).

Every kernel keeps the input's dtype (float32 stays float32) and takes arrays of any shape and memory
order. The caches hold only what the backward needs: a mask, or the output itself when the derivative is
cheapest to write in terms of it (sigmoid, tanh, softmax, the negative side of ELU).

Selections by a mask (``np.where``) go through :func:`keep_where` and :func:`select`, which give the same
bits without NumPy's branch per element (see there).
"""

from __future__ import annotations

import numpy as np

from cnnkit.fast.tuning import RELU_CHUNKED_ELEMENTS
from cnnkit.layout import copy_as, memory_order
from cnnkit.runtime import over_batch


def _chunked(x) -> bool:
    return x.ndim >= 2 and len(x) > 1 and x.size >= RELU_CHUNKED_ELEMENTS


def _bits(a):
    """The same memory read as unsigned integers of the same size: bit patterns, for exact selections."""
    return a.view(f"u{a.dtype.itemsize}")


def _bitwise_ok(a) -> bool:
    return a.dtype.kind in "fiu" and a.dtype.itemsize in (1, 2, 4, 8)


def keep_where(mask, a, out=None):
    """``np.where(mask, a, 0)`` bit for bit (NaN, inf and the sign of zero included), several times faster.

    ``np.where`` takes a data-dependent branch per element, which mispredicts on the random masks of ReLU
    and max pooling (measured 6-10x slower than a multiply). Multiplying the bit patterns, read as unsigned
    integers, by the 0/1 mask keeps or zeroes every element without a branch; a float multiply would not
    do (0 * inf is NaN, -x * 0 is -0.0). ``out`` may be any array of a's shape, e.g. a strided view.

    >>> keep_where(np.array([True, False, True]), np.array([np.inf, np.inf, -2.0], np.float32)).tolist()
    [inf, 0.0, -2.0]
    """
    if not _bitwise_ok(a):
        result = np.where(mask, a, 0).astype(a.dtype, copy=False)
        if out is None:
            return result
        out[...] = result
        return out
    out = np.empty_like(a) if out is None else out
    np.multiply(_bits(a), mask, out=_bits(out))
    return out


def select(mask, a, b):
    """``np.where(mask, a, b).astype(a.dtype)`` for arrays of one shape, bit for bit, without the branch.

    ``b ^ ((a ^ b) * mask)`` on the bit patterns is a where mask is 1 and b where it is 0: three
    branch-free integer passes instead of one mispredicting pass (see :func:`keep_where`).

    >>> select(np.array([True, False]), np.array([1.0, 2.0]), np.array([-1.0, -2.0])).tolist()
    [1.0, -2.0]
    """
    b = np.asarray(b).astype(a.dtype, copy=False)  # the result has a's dtype, as the kernels want
    if not (_bitwise_ok(a) and a.shape == b.shape):
        return np.where(mask, a, b)
    out = np.empty_like(a)
    mixed = np.bitwise_xor(_bits(a), _bits(b), out=_bits(out))
    np.multiply(mixed, mask, out=mixed)
    np.bitwise_xor(mixed, _bits(b), out=mixed)
    return out


def relu(x):
    """max(0, x), element-wise; NaN stays NaN.

    Shape: any -> the same shape; y keeps x's dtype.

    Args:
        x: a floating-point array.

    Returns:
        ``(y, cache)``; the cache is the mask ``x > 0`` (the gradient at 0 is 0, as in PyTorch).

    >>> y, _ = relu(np.array([-1.0, 0.0, 2.0]))
    >>> y.tolist()
    [0.0, 0.0, 2.0]
    """
    if not _chunked(x):
        return np.maximum(x, 0), x > 0  # np.maximum keeps NaN visible, as PyTorch does
    y, mask = np.empty_like(x), np.empty_like(x, dtype=bool)  # in x's memory order

    def work(b):
        np.maximum(x[b], 0, out=y[b])
        np.greater(x[b], 0, out=mask[b])

    over_batch(work, len(x), x[:1].nbytes)
    return y, mask


def relu_inference(x):
    """:func:`relu` when no backward follows (``cnnkit.no_grad()``): y only, ``(y, None)``; no mask pass."""
    if not _chunked(x):
        return np.maximum(x, 0), None
    y = np.empty_like(x)
    over_batch(lambda b: np.maximum(x[b], 0, out=y[b]), len(x), x[:1].nbytes)
    return y, None


def relu_backward(dy, cache):
    """The gradient of :func:`relu` (and :func:`relu6`): dx = dy where the cached mask holds, else 0.

    Shape: dy like x -> dx like dy.

    Args:
        dy: the gradient of y. cache: from the forward.

    Returns:
        dx.
    """
    if not _chunked(dy):
        return keep_where(cache, dy)
    dx = np.empty_like(dy)
    over_batch(lambda b: keep_where(cache[b], dy[b], out=dx[b]), len(dy), dy[:1].nbytes)
    return dx


def add(a, b, *, out=None, relu=False):
    """:func:`cnnkit.reference.activation.add` (bit for bit): on large arrays in batch chunks on the
    elementwise threads, the ReLU applied to each chunk while it is in cache (one pass over memory, where a
    sum and then a ReLU are two, each on one core).

    Terms in different layouts (a ResNet's first block adds an NCHW shortcut to a channels-last body):
    each chunk of b is first copied into a's layout, in scratch memory -- NumPy's sum across layouts reads
    one term across its cache lines and took 2-5x as long as a sum of like terms.
    """
    out = np.empty_like(a) if out is None else out  # in a's memory order (channels-last stays so)
    mixed = a.shape == b.shape and {memory_order(a), memory_order(b)} == {"channels-last", "NCHW"}

    def work(c):
        term = b[c]
        if mixed:
            term = copy_as(a, term, scratch="add.term")
        np.add(a[c], term, out=out[c])
        if relu:
            np.maximum(out[c], 0, out=out[c])

    if _chunked(a) and a.shape == b.shape:
        over_batch(work, len(a), a[:1].nbytes)
    else:
        work(slice(None))
    return out, None


def add_backward(dy, cache):
    """The gradient of :func:`add` without its ReLU: dy for each term."""
    return dy, dy


def relu6(x):
    """min(max(0, x), 6) (MobileNet). The gradient passes only strictly inside (0, 6), as in PyTorch.

    Shape: any -> the same shape; y keeps x's dtype.

    Args:
        x: a floating-point array.

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

    Args:
        x: a floating-point array. negative_slope=0.01: a finite real (not checked here).

    Returns:
        ``(y, cache)``; the cache is ``(x > 0, negative_slope)``.

    >>> leaky_relu(np.array([-2.0, 3.0]), 0.1)[0].tolist()
    [-0.2, 3.0]
    """
    mask = x > 0
    y = x * x.dtype.type(negative_slope)
    if 0 < negative_slope <= 1:
        # slope * x <= x exactly when x >= 0, so the max is the same selection in one branch-free pass
        # (not for slope 0: inf * 0 is NaN, which the max would pick over inf)
        np.maximum(y, x, out=y)
    else:
        y = select(mask, x, y)
    return y, (mask, negative_slope)


def leaky_relu_backward(dy, cache):
    """The gradient of :func:`leaky_relu`: dx = dy where x > 0, ``negative_slope * dy`` elsewhere.

    Shape: dy like x -> dx like dy.

    Args:
        dy: the gradient of y. cache: from the forward.

    Returns:
        dx.
    """
    mask, negative_slope = cache
    return select(mask, dy, dy * negative_slope)


def elu(x, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise (Clevert et al. 2015).

    ``expm1`` of ``min(x, 0)``: accurate near 0 and no overflow warning for large positive x.

    Shape: any -> the same shape; y keeps x's dtype.

    Args:
        x: a floating-point array. alpha=1.0: -alpha is the negative side's limit (not checked here).

    Returns:
        ``(y, cache)``; the cache is ``(x > 0, y, alpha)``.

    >>> [round(v, 4) for v in elu(np.array([-1.0, 2.0]))[0].tolist()]
    [-0.6321, 2.0]
    """
    mask = x > 0
    y = select(mask, x, alpha * np.expm1(np.minimum(x, 0)))
    return y, (mask, y, alpha)


def elu_backward(dy, cache):
    """The gradient of :func:`elu`: dx = dy for x > 0; on the negative side d/dx alpha*(exp(x)-1) =
    alpha*exp(x) = y + alpha, so dx = dy * (y + alpha).

    Shape: dy like x -> dx like dy.

    Args:
        dy: the gradient of y. cache: from the forward.

    Returns:
        dx.
    """
    mask, y, alpha = cache
    return select(mask, dy, dy * (y + alpha))


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow for any x.

    With e = exp(-|x|) <= 1 the two algebraically equal forms 1/(1+e) (for x >= 0) and e/(1+e) (for x < 0)
    never exponentiate a large positive number.

    Shape: any -> the same shape; y keeps x's dtype.

    Args:
        x: a floating-point array.

    Returns:
        ``(y, cache)``; the cache is y, since dy/dx = y (1 - y).

    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))[0].tolist()
    [0.0, 0.5, 1.0]
    """
    e = np.exp(-np.abs(x))
    y = select(x >= 0, 1 / (1 + e), e / (1 + e))
    return y, y


def sigmoid_backward(dy, cache):
    """The gradient of :func:`sigmoid`: dx = dy * y * (1 - y).

    Shape: dy like x -> dx like dy.

    Args:
        dy: the gradient of y. cache: from the forward.

    Returns:
        dx.
    """
    y = cache
    return dy * y * (1 - y)


def tanh(x):
    """Hyperbolic tangent, element-wise.

    Shape: any -> the same shape; y keeps x's dtype.

    Args:
        x: a floating-point array.

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

    Args:
        dy: the gradient of y. cache: from the forward.

    Returns:
        dx.
    """
    y = cache
    return dy * (1 - y * y)


def softmax(x, dim=1):
    """exp(x) / sum(exp(x)) along ``dim``, stable for any scores.

    Subtracting the maximum along dim first leaves the result unchanged (it cancels in the ratio) and
    makes every exponent <= 0, so nothing overflows.

    Shape: any -> the same shape; y keeps x's dtype.

    Args:
        x: a floating-point array. dim=1: the axis to normalise over (PyTorch's name).

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

    Args:
        dy: the gradient of y. cache: from the forward.

    Returns:
        dx.
    """
    y, dim = cache
    return y * (dy - (dy * y).sum(axis=dim, keepdims=True))
