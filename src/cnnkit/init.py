"""Weight initializers: He/Kaiming and Xavier/Glorot, normal and uniform.

Each takes the weight's shape and an optional ``rng`` (a ``numpy.random.Generator``); without one a fresh
unseeded generator is used, never NumPy's global state. ``fan_in`` of a conv weight (K, C/groups, *F) is
C/groups * prod(F), its ``fan_out`` K * prod(F), as in PyTorch.
"""

from __future__ import annotations

import math

import numpy as np

RELU_GAIN = math.sqrt(2.0)  # He et al.: ReLU zeroes half the inputs, so the variance needs a factor 2


def fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a Linear (out, in) or conv (K, C/groups, *F) weight shape."""
    if len(shape) < 2:
        raise ValueError(f"Received shape={tuple(shape)}: fans need at least 2 dimensions.")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _rng(rng):
    return rng if rng is not None else np.random.default_rng()


def _uniform(rng, bound, shape, dtype):
    """U(-bound, bound) drawn directly in ``dtype``: VGG-16's 138 M weights would otherwise pass through
    a float64 array twice their final size, which made building the model take seconds."""
    values = _rng(rng).random(shape, dtype=dtype)
    values *= 2 * bound  # in-place with a Python float keeps the array's dtype
    values -= bound
    return values


def _normal(rng, std, shape, dtype):
    values = _rng(rng).standard_normal(shape, dtype=dtype)
    values *= std
    return values


def kaiming_normal(shape, *, gain=RELU_GAIN, mode="fan_in", rng=None, dtype=np.float32):
    """N(0, gain^2 / fan): He et al. 2015, the default for ReLU networks (gain sqrt(2))."""
    return _normal(rng, gain / math.sqrt(_fan(shape, mode)), shape, dtype)


def kaiming_uniform(shape, *, gain=RELU_GAIN, mode="fan_in", rng=None, dtype=np.float32):
    """U(-b, b) with b = gain * sqrt(3 / fan): the same variance as :func:`kaiming_normal`."""
    return _uniform(rng, gain * math.sqrt(3.0 / _fan(shape, mode)), shape, dtype)


def xavier_normal(shape, *, gain=1.0, rng=None, dtype=np.float32):
    """N(0, gain^2 * 2 / (fan_in + fan_out)): Glorot & Bengio 2010, for tanh/sigmoid networks."""
    fan_in, fan_out = fans(shape)
    return _normal(rng, gain * math.sqrt(2.0 / (fan_in + fan_out)), shape, dtype)


def xavier_uniform(shape, *, gain=1.0, rng=None, dtype=np.float32):
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    return _uniform(rng, gain * math.sqrt(6.0 / (fan_in + fan_out)), shape, dtype)


def _fan(shape, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Invalid mode {mode!r}, should be one of 'fan_in', 'fan_out'.")
    return fans(shape)[0 if mode == "fan_in" else 1]


def default_parameters(weight_shape, bias_shape, rng=None, dtype=np.float32):
    """PyTorch's default for Conv and Linear: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    (That is kaiming_uniform with gain sqrt(1/3).) Using PyTorch's default makes freshly built cnnkit and
    PyTorch models behave alike, which keeps training comparisons honest.
    """
    rng = _rng(rng)
    bound = 1.0 / math.sqrt(fans(weight_shape)[0])
    weight = _uniform(rng, bound, weight_shape, dtype)
    bias = None if bias_shape is None else _uniform(rng, bound, bias_shape, dtype)
    return weight, bias
