"""Activation layers: ReLU, ReLU6, LeakyReLU, ELU, Sigmoid, Tanh, Softmax, Identity.

Element-wise layers take an input of any shape (a volume (N, C, H, W) or scores (N, C)) and keep it:
in the notes' words, RELU "leaves the size of the volume unchanged". Kernels live in
``cnnkit.functional.activation``.
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
    """An activation applied to every element: one kernel pair, no parameters, shape unchanged."""

    algorithm = "auto"  # for activations with two kernels: "auto" (the fast one), "reference" or "fast"

    def _set_algorithm(self, algorithm):
        self.algorithm = check_algorithm(algorithm, ALGORITHMS, name=type(self).__name__)

    def _kernel(self, x):
        raise NotImplementedError

    def _kernel_backward(self, dy, cache):
        raise NotImplementedError

    def forward(self, x):
        check_float_array(self, x)
        y, self._cache = self._kernel(x)
        return y

    def backward(self, dy):
        return self._kernel_backward(dy, self._pop_cache())

    def output_shape(self, input_shape):
        return tuple(input_shape)


class ReLU(_Elementwise):
    """max(0, x), element-wise: the notes' default non-linearity.

    Shape: any (N, *) -> the same shape.

    Args:
        None.

    Raises:
        TypeError: x is not a floating-point NumPy array. RuntimeError: backward before forward.

    >>> ReLU().output_shape((2, 16, 8, 8))
    (2, 16, 8, 8)
    >>> ReLU()(np.array([[-1.0, 2.0]])).tolist()
    [[0.0, 2.0]]
    """

    def __init__(self, *, algorithm="auto"):
        self._set_algorithm(algorithm)

    def _kernel(self, x):
        return F.relu(x, algorithm=self.algorithm)

    def _kernel_backward(self, dy, cache):
        return F.relu_backward(dy, cache)


class ReLU6(_Elementwise):
    """min(max(0, x), 6), element-wise (MobileNet's bounded ReLU). Shape: unchanged.

    Args:
        None.

    Raises:
        TypeError: x is not a floating-point NumPy array. RuntimeError: backward before forward.

    >>> ReLU6()(np.array([-1.0, 3.0, 9.0])).tolist()
    [0.0, 3.0, 6.0]
    """

    def __init__(self, *, algorithm="auto"):
        self._set_algorithm(algorithm)

    def _kernel(self, x):
        return F.relu6(x, algorithm=self.algorithm)

    def _kernel_backward(self, dy, cache):
        return F.relu6_backward(dy, cache)


def finite_real(value, name: str, owner: str) -> float:
    """``value`` as a float; TypeError if it is not a real number, ValueError if it is inf or NaN."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: Received {name}={value!r}; expected a real number.")
    if not np.isfinite(value):
        raise ValueError(f"{owner}: Received {name}={value!r}; expected a finite number.")
    return float(value)


class LeakyReLU(_Elementwise):
    """x for x > 0, ``negative_slope * x`` otherwise, so that units never "die" (the notes' fix for ReLU).

    Shape: unchanged.

    Args:
        negative_slope: the slope for x < 0 (default 0.01).

    Raises:
        TypeError/ValueError: negative_slope is not a real / not a finite number.
        TypeError: x is not a floating-point NumPy array. RuntimeError: backward before forward.

    >>> LeakyReLU(0.1)(np.array([-2.0, 3.0])).tolist()
    [-0.2, 3.0]
    """

    def __init__(self, negative_slope=0.01, *, algorithm="auto"):
        self.negative_slope = finite_real(negative_slope, "negative_slope", "LeakyReLU")
        self._set_algorithm(algorithm)

    def _kernel(self, x):
        return F.leaky_relu(x, self.negative_slope, algorithm=self.algorithm)

    def _kernel_backward(self, dy, cache):
        return F.leaky_relu_backward(dy, cache)


class ELU(_Elementwise):
    """x for x > 0, ``alpha * (exp(x) - 1)`` otherwise. Shape: unchanged.

    Args:
        alpha: the value the negative side saturates to is -alpha (default 1.0).

    Raises:
        TypeError/ValueError: alpha is not a real / not a finite number.
        TypeError: x is not a floating-point NumPy array. RuntimeError: backward before forward.

    >>> ELU().output_shape((4, 10))
    (4, 10)
    """

    def __init__(self, alpha=1.0, *, algorithm="auto"):
        self.alpha = finite_real(alpha, "alpha", "ELU")
        self._set_algorithm(algorithm)

    def _kernel(self, x):
        return F.elu(x, self.alpha, algorithm=self.algorithm)

    def _kernel_backward(self, dy, cache):
        return F.elu_backward(dy, cache)


class Sigmoid(_Elementwise):
    """1 / (1 + exp(-x)), element-wise and overflow-free. Shape: unchanged.

    Args:
        None.

    Raises:
        TypeError: x is not a floating-point NumPy array. RuntimeError: backward before forward.

    >>> Sigmoid()(np.array([0.0])).tolist()
    [0.5]
    """

    def __init__(self, *, algorithm="auto"):
        self._set_algorithm(algorithm)

    def _kernel(self, x):
        return F.sigmoid(x, algorithm=self.algorithm)

    def _kernel_backward(self, dy, cache):
        return F.sigmoid_backward(dy, cache)


class Tanh(_Elementwise):
    """tanh(x), element-wise (a zero-centred sigmoid, as the notes put it). Shape: unchanged.

    Args:
        None.

    Raises:
        TypeError: x is not a floating-point NumPy array. RuntimeError: backward before forward.

    >>> Tanh()(np.array([0.0])).tolist()
    [0.0]
    """

    def __init__(self, *, algorithm="auto"):
        self._set_algorithm(algorithm)

    def _kernel(self, x):
        return F.tanh(x, algorithm=self.algorithm)

    def _kernel_backward(self, dy, cache):
        return F.tanh_backward(dy, cache)


class Softmax(_Elementwise):
    """exp(x) / sum(exp(x)) along ``dim``: turns class scores into probabilities.

    Shape: unchanged; for (N, C) scores or (N, C, H, W) per-pixel scores the default ``dim=1`` normalises
    over the classes/channels.

    Args:
        dim: the axis to normalise over (default 1, negative values count from the end).

    Raises:
        TypeError: dim is not an int; x is not a floating-point NumPy array.
        ShapeError: the input has no axis ``dim``. RuntimeError: backward before forward.

    >>> Softmax()(np.zeros((1, 4))).tolist()
    [[0.25, 0.25, 0.25, 0.25]]
    """

    def __init__(self, dim=1, *, algorithm="auto"):
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"Softmax: Received dim={dim!r}; expected an int.")
        self.dim = int(dim)
        self._set_algorithm(algorithm)

    def _axis(self, shape):
        if not -len(shape) <= self.dim < len(shape):
            raise ShapeError(f"{self!r}: received shape {tuple(shape)} with {len(shape)} axes, which has no "
                             f"axis dim={self.dim}; use dim=-1 for the last axis.")
        return self.dim % len(shape)

    def _kernel(self, x):
        return F.softmax(x, self._axis(x.shape), algorithm=self.algorithm)

    def _kernel_backward(self, dy, cache):
        return F.softmax_backward(dy, cache)

    def output_shape(self, input_shape):
        self._axis(input_shape)
        return tuple(input_shape)


class Identity(_Elementwise):
    """y = x: a placeholder (e.g. a removed classifier head, or an explicit identity shortcut).

    Shape: any (N, *) -> the same shape (y is x itself, not a copy).

    Args:
        None.

    Raises:
        TypeError: x is not a floating-point NumPy array. RuntimeError: backward before forward.

    >>> Identity().output_shape((2, 3))
    (2, 3)
    """

    def _kernel(self, x):
        return x, True  # the cache only marks that forward ran, so backward keeps the contract

    def _kernel_backward(self, dy, cache):
        return dy
