"""Linear (fully connected), Flatten and Dropout layers; kernels in ``cnnkit.functional.linear``."""

from __future__ import annotations

import numbers

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.functional.linear import (
    dropout,
    dropout_backward,
    flatten,
    flatten_backward,
    linear,
    linear_backward,
)
from cnnkit.init import default_parameters
from cnnkit.layers.activation import check_float_array
from cnnkit.layers.base import Layer, Parameter
from cnnkit.layers.conv import positive_int


class Linear(Layer):
    """Fully connected layer: every output neuron sees every input, ``y = x W^T + b``.

    In the notes' terms a fully connected layer on a W x H x D volume is a convolution whose filter covers
    the whole volume; here the volume is flattened first (``Flatten()``), as in PyTorch.

    Shape:
        (N, in_features) -> (N, out_features); more leading axes (N, *, in_features) are kept as they are.

    Args:
        in_features, out_features: sizes of the input and output vectors.
        bias: add a learned bias (default True).
        rng: a ``numpy.random.Generator`` for PyTorch's default init U(-1/sqrt(in), 1/sqrt(in)).

    Raises:
        ValueError for non-positive sizes; ShapeError when the input's last axis is not in_features.

    >>> Linear(4096, 1000).output_shape((8, 4096))
    (8, 1000)
    """

    batched_ndim = 2  # one vector (in_features,) gives (out_features,), as in PyTorch (see Layer)

    def __init__(self, in_features, out_features, bias=True, *, rng=None):
        self.in_features = positive_int(in_features, "in_features", "Linear")
        self.out_features = positive_int(out_features, "out_features", "Linear")
        w, b = default_parameters((out_features, in_features), (out_features,) if bias else None, rng)
        self.weight = Parameter(w)
        self.bias = Parameter(b) if bias else None

    def extra_repr(self):
        return f"{self.in_features}->{self.out_features}" + ("" if self.bias is not None else ", bias=False")

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) < 2 or shape[-1] != self.in_features:
            hint = " Put a Flatten() before it." if len(shape) > 2 else ""
            raise ShapeError(f"{self!r}: expected input (N, {self.in_features}), received shape {shape}."
                             + hint)
        return (*shape[:-1], self.out_features)

    def forward(self, x):
        check_float_array(self, x)
        self.output_shape(x.shape)
        y, self._cache = linear(x, self.weight.data, None if self.bias is None else self.bias.data)
        return y

    def backward(self, dy):
        dx, dw, db = linear_backward(dy, self._pop_cache())
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx


class Flatten(Layer):
    """Merge axes ``start_dim..end_dim`` into one: the volume (N, C, H, W) becomes a vector (N, C*H*W).

    Shape: (N, C, H, W) -> (N, C*H*W) with the defaults; the order is C-major like PyTorch's, so weights of
    a following Linear transfer one to one. Backward reshapes the gradient back.

    Args:
        start_dim: first axis to merge (default 1, after the batch). end_dim: last axis (default -1).

    Raises:
        TypeError for non-int axes; ShapeError when the input has no such axes (or start_dim > end_dim).

    >>> Flatten().output_shape((2, 256, 6, 6))
    (2, 9216)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"Flatten: Received {name}={value!r}; expected an int.")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def output_shape(self, input_shape):
        shape, n = tuple(input_shape), len(input_shape)
        if not (-n <= self.start_dim < n and -n <= self.end_dim < n) or self.start_dim % n > self.end_dim % n:
            raise ShapeError(f"{self!r}: cannot merge axes {self.start_dim}..{self.end_dim} of an input with "
                             f"shape {shape}; expected start_dim <= end_dim within its {n} axes.")
        start, end = self.start_dim % n, self.end_dim % n
        merged = int(np.prod(shape[start:end + 1], dtype=np.int64))
        return (*shape[:start], merged, *shape[end + 1:])

    def forward(self, x):
        check_float_array(self, x)
        self.output_shape(x.shape)
        y, self._cache = flatten(x, self.start_dim, self.end_dim)
        return y

    def backward(self, dy):
        return flatten_backward(dy, self._pop_cache())


class Dropout(Layer):
    """Inverted dropout: in training, zero each activation with probability p and scale the rest by 1/(1-p).

    In eval mode (``layer.eval()``) it is the identity, because the scaling already kept the expected value
    of every activation unchanged. The mask drawn in forward is kept for backward.

    Shape: any shape, unchanged.

    Args:
        p: probability of dropping an element, in [0, 1] (default 0.5).
        rng: a ``numpy.random.Generator`` for the masks (a fresh unseeded one if None).

    Raises:
        TypeError/ValueError: p is not a number in [0, 1].

    >>> layer = Dropout(0.5, rng=np.random.default_rng(0))
    >>> sorted(set(layer(np.ones((1, 100), np.float32)).ravel().tolist()))
    [0.0, 2.0]
    >>> layer.eval()(np.ones((1, 3), np.float32)).tolist()
    [[1.0, 1.0, 1.0]]
    """

    mixes_examples = True  # masks drawn per batch: a batch in slices would not draw the masks it draws whole

    def __init__(self, p=0.5, *, rng=None):
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"Dropout: Received p={p!r}; expected a probability (a number in [0, 1]).")
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: Received p={p!r}; the drop probability must be in [0, 1].")
        self.p = float(p)
        self.rng = rng if rng is not None else np.random.default_rng()

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        check_float_array(self, x)
        y, mask = dropout(x, self.p, rng=self.rng, training=self.training)
        self._cache = (mask,)  # a tuple: the cache must not be None even when nothing was dropped
        return y

    def backward(self, dy):
        (mask,) = self._pop_cache()
        return dropout_backward(dy, mask)
