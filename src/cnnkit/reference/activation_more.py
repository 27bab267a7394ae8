"""The activations of the ConvNets after AlexNet and VGG, each forward next to its backward: PReLU (a
learned leak), SELU and CELU (smooth exponential units), GELU and SiLU/Swish and Mish (smooth gates),
Softplus and Softsign, and the piecewise-linear Hardtanh, Hardsigmoid and Hardswish of MobileNet-V3.

Every kernel keeps x's dtype and takes any shape; the definitions, and the gradient at every kink, are
PyTorch's. The caches hold x (or what the derivative is cheapest to write in): the backward of a smooth
gate needs the gate and its slope at x.
"""

import math

import numpy as np

# SELU's constants (Klambauer et al. 2017): with them, activations keep mean 0 and variance 1.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(x):
    """1 / (1 + exp(-x)) without overflow (see reference.activation.sigmoid)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _channel_view(weight, x):
    """PReLU's weight (C,) or (1,) against x: along axis 1 (the channels) when x has one, else as is."""
    if weight.size == 1 or x.ndim < 2:
        return weight.reshape(())
    return weight.reshape(1, -1, *(1,) * (x.ndim - 2))


def prelu(x, weight):
    """x for x > 0, ``weight * x`` otherwise, the slope learned per channel (He et al. 2015).

    Shape: x any (channels on axis 1); weight (1,) shared, or (C,) one per channel -> y like x.

    Returns:
        ``(y, cache)``.

    >>> prelu(np.array([[-2.0, 3.0]]), np.array([0.25]))[0].tolist()
    [[-0.5, 3.0]]
    """
    w = _channel_view(weight.astype(x.dtype, copy=False), x)
    return np.where(x > 0, x, w * x), (x, w, weight.shape)


def prelu_backward(dy, cache):
    """The gradients of :func:`prelu`: ``dx = dy`` where x > 0, ``weight * dy`` elsewhere; the slope's
    gradient sums ``dy * x`` over the negative side, per channel.

    Shape: dy like x -> (dx like x, dweight like weight).
    """
    x, w, weight_shape = cache
    negative = x <= 0
    dx = np.where(negative, w * dy, dy)
    contribution = np.where(negative, dy * x, dy.dtype.type(0))
    if len(weight_shape) and weight_shape[0] > 1 and x.ndim >= 2:
        dweight = contribution.sum(axis=(0, *range(2, x.ndim)))
    else:
        dweight = np.asarray(contribution.sum(), dtype=dy.dtype).reshape(weight_shape)
    return dx, dweight


def selu(x):
    """``scale * (x if x > 0 else alpha * (exp(x) - 1))`` with SELU's fixed alpha and scale.

    Shape: any -> the same shape.

    Returns:
        ``(y, cache)``.

    >>> round(float(selu(np.array([1.0]))[0][0]), 4)
    1.0507
    """
    return _exponential_unit(x, SELU_ALPHA, SELU_SCALE, 1.0)


def selu_backward(dy, cache):
    """The gradient of :func:`selu`: ``scale`` for x > 0, ``scale * alpha * exp(x)`` elsewhere (also at 0).

    Shape: dy like x -> dx.
    """
    return _exponential_unit_backward(dy, cache)


def celu(x, alpha=1.0):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`` (Barron 2017): ELU whose slope is 1 at 0 for
    every alpha.

    Shape: any -> the same shape.

    Returns:
        ``(y, cache)``.

    >>> [round(v, 4) for v in celu(np.array([-1.0, 2.0]), alpha=2.0)[0].tolist()]
    [-0.7869, 2.0]
    """
    return _exponential_unit(x, alpha, 1.0, 1.0 / alpha)


def celu_backward(dy, cache):
    """The gradient of :func:`celu`: 1 for x > 0, ``exp(x / alpha)`` elsewhere.

    Shape: dy like x -> dx.
    """
    return _exponential_unit_backward(dy, cache)


def _exponential_unit(x, alpha, scale, input_scale):
    """PyTorch's one exponential unit: ``scale * (x if x > 0 else alpha * (exp(x * input_scale) - 1))``.
    ELU is (alpha, 1, 1), SELU (SELU_ALPHA, SELU_SCALE, 1), CELU (alpha, 1, 1/alpha)."""
    t = x.dtype.type
    mask = x > 0
    negative = t(alpha) * np.expm1(np.minimum(x, 0) * t(input_scale))  # expm1 of <= 0: no overflow
    return t(scale) * np.where(mask, x, negative), (mask, negative, alpha, scale, input_scale)


def _exponential_unit_backward(dy, cache):
    """The gradient of :func:`_exponential_unit`: scale for x > 0, ``scale * input_scale * (negative +
    alpha)`` elsewhere, since d/dx alpha (exp(x s) - 1) = s alpha exp(x s)."""
    mask, negative, alpha, scale, input_scale = cache
    t = dy.dtype.type
    slope = t(input_scale) * (negative + t(alpha))
    return t(scale) * np.where(mask, dy, dy * slope)


_erf = np.frompyfunc(math.erf, 1, 1)  # NumPy has no erf; math.erf is correctly rounded for doubles


def gelu(x, approximate="none"):
    """``x * Phi(x)``, x times the standard normal CDF (Hendrycks & Gimpel 2016), the activation of
    transformers and ConvNeXt. ``approximate="tanh"``: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    Shape: any -> the same shape.

    Returns:
        ``(y, cache)``.

    >>> [round(v, 4) for v in gelu(np.array([-1.0, 0.0, 1.0]))[0].tolist()]
    [-0.1587, 0.0, 0.8413]
    """
    t = x.dtype.type
    if approximate == "tanh":
        k = t(math.sqrt(2 / math.pi))
        inner = k * (x + t(0.044715) * x * x * x)
        gate = np.tanh(inner)
        return t(0.5) * x * (1 + gate), (x, gate, approximate)
    cdf = t(0.5) * (1 + np.asarray(_erf(x / t(math.sqrt(2))), dtype=x.dtype))
    return x * cdf, (x, cdf, approximate)


def gelu_backward(dy, cache):
    """The gradient of :func:`gelu`: ``Phi(x) + x * phi(x)`` (phi the normal density); for the tanh form,
    ``0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)``.

    Shape: dy like x -> dx.
    """
    x, gate, approximate = cache
    t = x.dtype.type
    if approximate == "tanh":
        k = t(math.sqrt(2 / math.pi))
        slope = t(0.5) * (1 + gate) + t(0.5) * x * (1 - gate * gate) * k * (1 + t(3 * 0.044715) * x * x)
        return dy * slope
    density = np.exp(t(-0.5) * x * x) * t(1 / math.sqrt(2 * math.pi))
    return dy * (gate + x * density)


def silu(x):
    """``x * sigmoid(x)`` (SiLU, Swish; Elfwing et al. 2017, Ramachandran et al. 2017).

    Shape: any -> the same shape.

    Returns:
        ``(y, cache)``.

    >>> silu(np.array([0.0, -1000.0]))[0].tolist()
    [0.0, -0.0]
    """
    s = _sigmoid(x)
    return x * s, (x, s)


def silu_backward(dy, cache):
    """The gradient of :func:`silu`: ``s (1 + x (1 - s))`` with s = sigmoid(x).

    Shape: dy like x -> dx.
    """
    x, s = cache
    return dy * (s * (1 + x * (1 - s)))


def _softplus(x):
    """log(1 + exp(x)) for any x without overflow: ``max(x, 0) + log1p(exp(-|x|))``."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def mish(x):
    """``x * tanh(softplus(x))`` (Misra 2019): a smooth, non-monotonic gate like SiLU.

    Shape: any -> the same shape.

    Returns:
        ``(y, cache)``.

    >>> round(float(mish(np.array([1.0]))[0][0]), 4)
    0.8651
    """
    gate = np.tanh(_softplus(x))
    return x * gate, (x, gate)


def mish_backward(dy, cache):
    """The gradient of :func:`mish`: ``tanh(sp) + x * sigmoid(x) * (1 - tanh(sp)^2)`` with sp =
    softplus(x), whose derivative is sigmoid(x).

    Shape: dy like x -> dx.
    """
    x, gate = cache
    return dy * (gate + x * _sigmoid(x) * (1 - gate * gate))


def softplus(x, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta x)) / beta``, a smooth ReLU; where ``beta x > threshold`` it is x itself (the two
    differ by less than exp(-threshold)), as in PyTorch.

    Shape: any -> the same shape.

    Returns:
        ``(y, cache)``.

    >>> [round(v, 4) for v in softplus(np.array([0.0, 30.0]))[0].tolist()]
    [0.6931, 30.0]
    """
    t = x.dtype.type
    z = x * t(beta)
    linear = z > t(threshold)
    return np.where(linear, x, _softplus(z) / t(beta)), (z, linear)


def softplus_backward(dy, cache):
    """The gradient of :func:`softplus`: ``sigmoid(beta x)``, and 1 where it is linear.

    Shape: dy like x -> dx.
    """
    z, linear = cache
    return np.where(linear, dy, dy * _sigmoid(z))


def softsign(x):
    """``x / (1 + |x|)``: a tanh-shaped curve that approaches +-1 polynomially.

    Shape: any -> the same shape.

    Returns:
        ``(y, cache)``.

    >>> softsign(np.array([-3.0, 1.0]))[0].tolist()
    [-0.75, 0.5]
    """
    denominator = 1 + np.abs(x)
    return x / denominator, denominator


def softsign_backward(dy, cache):
    """The gradient of :func:`softsign`: ``1 / (1 + |x|)^2``.

    Shape: dy like x -> dx.
    """
    denominator = cache
    return dy / (denominator * denominator)


def hardtanh(x, min_val=-1.0, max_val=1.0):
    """x clipped to ``[min_val, max_val]``. The gradient passes strictly inside the interval, as in
    PyTorch (0 at both ends).

    Shape: any -> the same shape.

    Returns:
        ``(y, cache)``; the cache is the mask where the gradient passes.

    >>> hardtanh(np.array([-2.0, 0.5, 3.0]))[0].tolist()
    [-1.0, 0.5, 1.0]
    """
    t = x.dtype.type
    return np.clip(x, t(min_val), t(max_val)), (x > t(min_val)) & (x < t(max_val))


def hardtanh_backward(dy, cache):
    """The gradient of :func:`hardtanh`: dy inside (min_val, max_val), 0 elsewhere.

    Shape: dy like x -> dx.
    """
    return np.where(cache, dy, dy.dtype.type(0))


def hardsigmoid(x):
    """``relu6(x + 3) / 6``: a piecewise-linear sigmoid, 0 below -3 and 1 above 3 (MobileNet-V3).

    Shape: any -> the same shape.

    Returns:
        ``(y, cache)``; the cache is the mask -3 < x < 3 where the slope is 1/6.

    >>> hardsigmoid(np.array([-4.0, 0.0, 1.5]))[0].tolist()
    [0.0, 0.5, 0.75]
    """
    t = x.dtype.type
    return np.clip(x + t(3), 0, t(6)) / t(6), (x > t(-3)) & (x < t(3))


def hardsigmoid_backward(dy, cache):
    """The gradient of :func:`hardsigmoid`: dy / 6 strictly inside (-3, 3), 0 elsewhere.

    Shape: dy like x -> dx.
    """
    return np.where(cache, dy / dy.dtype.type(6), dy.dtype.type(0))


def hardswish(x):
    """``x * relu6(x + 3) / 6``: MobileNet-V3's cheap SiLU.

    Shape: any -> the same shape.

    Returns:
        ``(y, cache)``.

    >>> hardswish(np.array([-4.0, 0.0, 3.0, 5.0]))[0].tolist()
    [-0.0, 0.0, 3.0, 5.0]
    """
    t = x.dtype.type
    return x * np.clip(x + t(3), 0, t(6)) / t(6), x


def hardswish_backward(dy, cache):
    """The gradient of :func:`hardswish`: 0 for x <= -3, ``x / 3 + 1/2`` for -3 < x < 3, 1 from 3 on
    (PyTorch's choice at the two kinks: the slope of the outer side).

    Shape: dy like x -> dx.
    """
    x = cache
    t = x.dtype.type
    middle = dy * (x / t(3) + t(0.5))
    return np.where(x <= t(-3), t(0), np.where(x < t(3), middle, dy))
