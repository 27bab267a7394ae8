"""Activation layers: ReLU, ReLU6, LeakyReLU, ELU, Sigmoid, Tanh, Softmax, Identity.

Element-wise layers take an input of any shape (a volume (N, C, H, W) or scores (N, C)) and keep it:
in the notes' words, RELU "leaves the size of the volume unchanged". Kernels live in
``cnnkit.functional.activation``. Every activation here and in :mod:`.activation_more` raises TypeError
for an x that is not a floating-point NumPy array and RuntimeError for a backward before its forward.
"""

from __future__ import annotations

import numbers

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.fast.dispatch import ALGORITHMS, check_algorithm
from cnnkit.functional import activation as F
from cnnkit.layers.base import Layer


def check_float_array(layer: Layer, x):
    """TypeError unless x is a floating-point NumPy array (any rank): the check element-wise layers need."""
    layer.check_input(x, np.ndim(x), layout="of any shape")


class _Elementwise(Layer):
    """An activation applied to every element: one kernel pair, no parameters, shape unchanged.

    A subclass names its pair of :mod:`cnnkit.functional` kernels, ``kernels = (F.elu, F.elu_backward)``,
    and the attributes the forward kernel takes after x, ``arguments = ("alpha",)``.
    """

    kernels: tuple = ()  # (forward(x, *arguments) -> (y, cache), backward(dy, cache) -> dx)
    arguments: tuple[str, ...] = ()

    def _arguments(self, x):
        return tuple(getattr(self, name) for name in self.arguments)

    def _options(self):
        return {}

    def _kernel(self, x):
        return self.kernels[0](x, *self._arguments(x), **self._options())

    def _kernel_backward(self, dy, cache):
        return self.kernels[1](dy, cache)

    def forward(self, x):
        check_float_array(self, x)
        y, self._cache = self._kernel(x)
        return y

    def backward(self, dy):
        return self._kernel_backward(dy, self._pop_cache())

    def output_shape(self, input_shape):
        return tuple(input_shape)


class _Dispatched(_Elementwise):
    """An activation with a reference and a fast kernel: ``algorithm`` "auto" (the fast one), "reference"
    or "fast", a keyword-only argument kept by ``config()``."""

    algorithm = "auto"

    def __init__(self, *, algorithm="auto"):
        self._set_algorithm(algorithm)

    def _set_algorithm(self, algorithm):
        self.algorithm = check_algorithm(algorithm, ALGORITHMS, name=type(self).__name__)

    def _options(self):
        return {"algorithm": self.algorithm}


class _AlongDim(_Elementwise):
    """Softmax and LogSoftmax: normalise along the axis ``dim`` (negative values count from the end)."""

    def _set_dim(self, dim):
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"{type(self).__name__}: Received dim={dim!r}; expected an int.")
        self.dim = int(dim)

    def _axis(self, shape):
        if not -len(shape) <= self.dim < len(shape):
            raise ShapeError(f"{self!r}: received shape {tuple(shape)} with {len(shape)} axes, which has no "
                             f"axis dim={self.dim}; use dim=-1 for the last axis.")
        return self.dim % len(shape)

    def _arguments(self, x):
        return (self._axis(x.shape),)

    def output_shape(self, input_shape):
        self._axis(input_shape)
        return tuple(input_shape)


class ReLU(_Dispatched):
    """max(0, x), element-wise: the notes' default non-linearity.

    Shape: any (N, *) -> the same shape.

    Args:
        algorithm: "auto" (default: the fast kernel), "reference" or "fast"; keyword only.

    Raises:
        ValueError: another algorithm. TypeError: x is not a floating-point NumPy array.
        RuntimeError: backward before forward.

    >>> ReLU().output_shape((2, 16, 8, 8))
    (2, 16, 8, 8)
    >>> ReLU()(np.array([[-1.0, 2.0]])).tolist()
    [[0.0, 2.0]]
    """

    kernels = (F.relu, F.relu_backward)
    adds_into_relu = True  # under no_grad, Residual computes relu(y + s) in one pass (F.add)


class ReLU6(_Dispatched):
    """min(max(0, x), 6), element-wise (MobileNet's bounded ReLU). Shape: unchanged.

    Args and Raises: as :class:`ReLU`.

    >>> ReLU6()(np.array([-1.0, 3.0, 9.0])).tolist()
    [0.0, 3.0, 6.0]
    """

    kernels = (F.relu6, F.relu6_backward)


def finite_real(value, name: str, owner: str) -> float:
    """``value`` as a float; TypeError if it is not a real number, ValueError if it is inf or NaN."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: Received {name}={value!r}; expected a real number.")
    if not np.isfinite(value):
        raise ValueError(f"{owner}: Received {name}={value!r}; expected a finite number.")
    return float(value)


class LeakyReLU(_Dispatched):
    """x for x > 0, ``negative_slope * x`` otherwise, so that units never "die" (the notes' fix for ReLU).

    Shape: unchanged.

    Args:
        negative_slope: the slope for x < 0 (default 0.01). algorithm: as :class:`ReLU`.

    Raises:
        TypeError/ValueError: negative_slope is not a real / not a finite number; and as :class:`ReLU`.

    >>> LeakyReLU(0.1)(np.array([-2.0, 3.0])).tolist()
    [-0.2, 3.0]
    """

    kernels, arguments = (F.leaky_relu, F.leaky_relu_backward), ("negative_slope",)

    def __init__(self, negative_slope=0.01, *, algorithm="auto"):
        self.negative_slope = finite_real(negative_slope, "negative_slope", "LeakyReLU")
        self._set_algorithm(algorithm)


class ELU(_Dispatched):
    """x for x > 0, ``alpha * (exp(x) - 1)`` otherwise. Shape: unchanged.

    Args:
        alpha: the value the negative side saturates to is -alpha (default 1.0). algorithm: as :class:`ReLU`.

    Raises:
        TypeError/ValueError: alpha is not a real / not a finite number; and as :class:`ReLU`.

    >>> ELU().output_shape((4, 10))
    (4, 10)
    """

    kernels, arguments = (F.elu, F.elu_backward), ("alpha",)

    def __init__(self, alpha=1.0, *, algorithm="auto"):
        self.alpha = finite_real(alpha, "alpha", "ELU")
        self._set_algorithm(algorithm)


class Sigmoid(_Dispatched):
    """1 / (1 + exp(-x)), element-wise and overflow-free. Shape: unchanged.

    Args and Raises: as :class:`ReLU`.

    >>> Sigmoid()(np.array([0.0])).tolist()
    [0.5]
    """

    kernels = (F.sigmoid, F.sigmoid_backward)


class Tanh(_Dispatched):
    """tanh(x), element-wise (a zero-centred sigmoid, as the notes put it). Shape: unchanged.

    Args and Raises: as :class:`ReLU`.

    >>> Tanh()(np.array([0.0])).tolist()
    [0.0]
    """

    kernels = (F.tanh, F.tanh_backward)


class Softmax(_AlongDim, _Dispatched):
    """exp(x) / sum(exp(x)) along ``dim``: turns class scores into probabilities.

    Shape: unchanged; for (N, C) scores or (N, C, H, W) per-pixel scores the default ``dim=1`` normalises
    over the classes/channels.

    Args:
        dim: the axis to normalise over (default 1, negative values count from the end).
        algorithm: as :class:`ReLU`.

    Raises:
        TypeError: dim is not an int. ShapeError: the input has no axis ``dim``. As :class:`ReLU`.

    >>> Softmax()(np.zeros((1, 4))).tolist()
    [[0.25, 0.25, 0.25, 0.25]]
    """

    kernels = (F.softmax, F.softmax_backward)

    def __init__(self, dim=1, *, algorithm="auto"):
        self._set_dim(dim)
        self._set_algorithm(algorithm)


def _identity(x):
    return x, True  # the cache only marks that forward ran, so backward keeps the contract


def _identity_backward(dy, cache):
    return dy


class Identity(_Elementwise):
    """y = x: a placeholder (e.g. a removed classifier head, or an explicit identity shortcut).

    Shape: any (N, *) -> the same shape (y is x itself, not a copy).

    Args: none. Raises: TypeError for a non-float x, RuntimeError for backward before forward.

    >>> Identity().output_shape((2, 3))
    (2, 3)
    """

    kernels = (_identity, _identity_backward)
