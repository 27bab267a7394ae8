"""Weight initializers: He/Kaiming and Xavier/Glorot, normal and uniform.

Each takes the weight's shape and an optional ``rng`` (a ``numpy.random.Generator``); without one a fresh
unseeded generator is used, never NumPy's global state. ``fan_in`` of a conv weight (K, C/groups, *F) is
C/groups * prod(F), its ``fan_out`` K * prod(F), as in PyTorch.
"""

from __future__ import annotations

import math

import numpy as np


def fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a Linear (out, in) or conv (K, C/groups, *F) weight shape."""
    if len(shape) < 2:
        raise ValueError(f"Received shape={tuple(shape)}: fans need at least 2 dimensions.")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _rng(rng):
    return rng if rng is not None else np.random.default_rng()


def kaiming_normal(shape, *, gain=math.sqrt(2.0), mode="fan_in", rng=None, dtype=np.float32):
    """N(0, gain^2 / fan): He et al. 2015, the default for ReLU networks (gain sqrt(2))."""
    std = gain / math.sqrt(_fan(shape, mode))
    return (_rng(rng).standard_normal(shape) * std).astype(dtype)


def kaiming_uniform(shape, *, gain=math.sqrt(2.0), mode="fan_in", rng=None, dtype=np.float32):
    """U(-b, b) with b = gain * sqrt(3 / fan): the same variance as :func:`kaiming_normal`."""
    bound = gain * math.sqrt(3.0 / _fan(shape, mode))
    return _rng(rng).uniform(-bound, bound, shape).astype(dtype)


def xavier_normal(shape, *, gain=1.0, rng=None, dtype=np.float32):
    """N(0, gain^2 * 2 / (fan_in + fan_out)): Glorot & Bengio 2010, for tanh/sigmoid networks."""
    fan_in, fan_out = fans(shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return (_rng(rng).standard_normal(shape) * std).astype(dtype)


def xavier_uniform(shape, *, gain=1.0, rng=None, dtype=np.float32):
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _rng(rng).uniform(-bound, bound, shape).astype(dtype)


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
    weight = rng.uniform(-bound, bound, weight_shape).astype(dtype)
    bias = None if bias_shape is None else rng.uniform(-bound, bound, bias_shape).astype(dtype)
    return weight, bias
