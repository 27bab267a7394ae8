"""Layers with ONNX's exact semantics for operators cnnkit has no layer for yet (used by the importer).

Each is small and trainable like any layer (forward keeps what backward needs; backward adds into its
parameters' gradients). They are registered layer types, so an imported model saves, loads and
exports to ONNX again; ``to_torch`` does not know them.

- ``OnnxActivation``: Selu, Softplus, HardSigmoid (any alpha, beta), HardSwish, Clip, as one table of
  (f, f') pairs;
- ``OnnxPRelu``: a learned slope for negative inputs, broadcast as ONNX does (per channel: (C, 1, 1));
- ``OnnxLogSoftmax``: log of the softmax along one axis;
- ``OnnxInstanceNorm``: each (example, channel) map normalized over its positions, then scaled and shifted;
- ``OnnxResize``: nearest or (bi/tri)linear resampling of the spatial axes as a product of one
  interpolation matrix per axis, so backward is the transposed product.
"""

from __future__ import annotations

import math

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.layers.base import Layer, Parameter
from cnnkit.layers.merge import unbroadcast


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


# name -> (forward f(x, a, b), derivative f'(x, a, b)); a and b are the operator's two attributes
_ACTIVATIONS = {
    "Selu": (lambda x, a, g: g * np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))),
             lambda x, a, g: g * np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0)))),
    "Softplus": (lambda x, a, b: np.logaddexp(0, x), lambda x, a, b: _sigmoid(x)),
    "HardSigmoid": (lambda x, a, b: np.clip(a * x + b, 0, 1),
                    lambda x, a, b: np.where((a * x + b > 0) & (a * x + b < 1), a, 0.0)),
    "HardSwish": (lambda x, a, b: x * np.clip(x / 6 + 0.5, 0, 1),
                  lambda x, a, b: np.where(x < -3, 0.0, np.where(x > 3, 1.0, x / 3 + 0.5))),
    # torch.clamp's gradient: 1 on the closed interval [min, max]
    "Clip": (lambda x, lo, hi: np.clip(x, lo, hi), lambda x, lo, hi: ((x >= lo) & (x <= hi)).astype(x.dtype)),
}


class OnnxActivation(Layer):
    """An element-wise ONNX activation: ``op`` in Selu (alpha, gamma), Softplus, HardSigmoid (alpha, beta),
    HardSwish, Clip (min, max). Shape: unchanged.

    >>> OnnxActivation("HardSigmoid", 0.2, 0.5)(np.array([-5.0, 0.0, 1.0])).tolist()
    [0.0, 0.5, 0.7]
    """

    def __init__(self, op, alpha=0.0, beta=0.0):
        if op not in _ACTIVATIONS:
            raise ValueError(f"OnnxActivation: Received op={op!r}; expected one of {sorted(_ACTIVATIONS)}.")
        self.op, self.alpha, self.beta = op, float(alpha), float(beta)

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        self.check_input(x, np.ndim(x), layout="of any shape")
        self._cache = x
        return _ACTIVATIONS[self.op][0](x, self.alpha, self.beta).astype(x.dtype, copy=False)

    def backward(self, dy):
        x = self._pop_cache()
        return (dy * _ACTIVATIONS[self.op][1](x, self.alpha, self.beta)).astype(dy.dtype, copy=False)


class OnnxPRelu(Layer):
    """``y = x if x > 0 else slope * x`` with a learned ``slope`` broadcast against x (ONNX's PRelu).

    Shape: unchanged; ``slope`` broadcasts against the input, e.g. (C, 1, 1) for one slope per channel.

    >>> OnnxPRelu((1,), value=[0.25])(np.array([-4.0, 2.0])).tolist()
    [-1.0, 2.0]
    """

    def __init__(self, slope_shape, *, value=None):
        self.slope_shape = tuple(int(n) for n in slope_shape)
        data = np.full(self.slope_shape, 0.25, np.float32) if value is None else np.array(value, np.float32)
        self.weight = Parameter(data.reshape(self.slope_shape))

    def config(self):
        return {"type": "OnnxPRelu", "slope_shape": list(self.slope_shape)}

    def output_shape(self, input_shape):
        try:
            return tuple(np.broadcast_shapes(tuple(input_shape), self.slope_shape))
        except ValueError:
            raise ShapeError(f"{self!r}: slope {self.slope_shape} does not broadcast against the input "
                             f"{tuple(input_shape)}.") from None

    def forward(self, x):
        self.check_input(x, np.ndim(x), layout="of any shape")
        self._cache = x
        return np.where(x > 0, x, self.weight.data * x).astype(x.dtype, copy=False)

    def backward(self, dy):
        x = self._pop_cache()
        negative = x <= 0
        self.weight.grad += unbroadcast(dy * x * negative, self.slope_shape)
        return np.where(negative, dy * self.weight.data, dy).astype(dy.dtype, copy=False)


class OnnxLogSoftmax(Layer):
    """``x - log(sum(exp(x)))`` along ``dim``. Backward: dx = dy - softmax(x) * sum(dy).

    >>> np.round(np.exp(OnnxLogSoftmax(1)(np.zeros((1, 4)))), 3).tolist()
    [[0.25, 0.25, 0.25, 0.25]]
    """

    def __init__(self, dim=1):
        self.dim = int(dim)

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        self.check_input(x, np.ndim(x), layout="of any shape")
        shifted = x - x.max(axis=self.dim, keepdims=True)
        y = shifted - np.log(np.exp(shifted).sum(axis=self.dim, keepdims=True))
        self._cache = y
        return y

    def backward(self, dy):
        y = self._pop_cache()
        return dy - np.exp(y) * dy.sum(axis=self.dim, keepdims=True)


class OnnxInstanceNorm(Layer):
    """Each (example, channel) map normalized over its positions, then ``weight * x_hat + bias``.

    Shape: (N, C, *S) -> the same; weight and bias (C,).

    >>> OnnxInstanceNorm(2).output_shape((1, 2, 5, 5))
    (1, 2, 5, 5)
    """

    def __init__(self, num_features, eps=1e-5):
        self.num_features, self.eps = int(num_features), float(eps)
        self.weight = Parameter(np.ones(self.num_features, np.float32))
        self.bias = Parameter(np.zeros(self.num_features, np.float32))

    def output_shape(self, input_shape):
        if len(input_shape) < 3 or input_shape[1] != self.num_features:
            raise ShapeError(f"{self!r}: expected (N, {self.num_features}, *S), received "
                             f"{tuple(input_shape)}.")
        return tuple(input_shape)

    def forward(self, x):
        self.check_input(x, max(np.ndim(x), 3), self.num_features, "(N, C, *S)")
        axes = tuple(range(2, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        inv_std = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + x.dtype.type(self.eps))
        x_hat = (x - mean) * inv_std
        shape = (1, -1) + (1,) * len(axes)
        self._cache = (x_hat, inv_std, shape)
        return self.weight.data.reshape(shape) * x_hat + self.bias.data.reshape(shape)

    def backward(self, dy):
        x_hat, inv_std, shape = self._pop_cache()
        axes = tuple(range(2, dy.ndim))
        self.weight.grad += (dy * x_hat).sum(axis=(0, *axes))
        self.bias.grad += dy.sum(axis=(0, *axes))
        d_hat = dy * self.weight.data.reshape(shape)
        return inv_std * (d_hat - d_hat.mean(axis=axes, keepdims=True)
                          - x_hat * (d_hat * x_hat).mean(axis=axes, keepdims=True))


def _source_coordinates(out, n, scale, transform):
    """ONNX Resize's coordinate_transformation_mode: the input coordinate of each output position."""
    i = np.arange(out, dtype=np.float64)
    if transform == "half_pixel":
        return (i + 0.5) / scale - 0.5
    if transform == "pytorch_half_pixel":
        return (i + 0.5) / scale - 0.5 if out > 1 else np.zeros(out)
    if transform == "align_corners":
        return i * (n - 1) / (out - 1) if out > 1 else np.zeros(out)
    if transform == "asymmetric":
        return i / scale
    if transform == "tf_half_pixel_for_nn":
        return (i + 0.5) / scale
    raise ValueError(f"OnnxResize: unknown coordinate_transformation_mode {transform!r}.")


def _nearest(coordinate, rule):
    if rule == "floor":
        return np.floor(coordinate)
    if rule == "ceil":
        return np.ceil(coordinate)
    if rule == "round_prefer_ceil":
        return np.floor(coordinate + 0.5)
    return np.ceil(coordinate - 0.5)  # round_prefer_floor: halves go down


def interpolation_matrix(out, n, scale, mode, transform, nearest_mode):
    """(out, n): row o holds the weights with which output o mixes the n inputs along one axis."""
    x = _source_coordinates(out, n, scale, transform)
    A = np.zeros((out, n))
    rows = np.arange(out)
    if mode == "nearest":
        A[rows, np.clip(_nearest(x, nearest_mode), 0, n - 1).astype(np.int64)] = 1.0
        return A
    x = np.clip(x, 0, n - 1)
    lo = np.floor(x).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = x - lo
    np.add.at(A, (rows, lo), 1 - w)
    np.add.at(A, (rows, hi), w)
    return A


class OnnxResize(Layer):
    """Resample the spatial axes: ``mode`` "nearest" or "linear" with ONNX Resize's coordinate rules.

    Output sizes are ``floor(n * scale)`` per spatial axis (``scales``), or fixed ``sizes``. Each axis is
    one matrix product with an (out, n) interpolation matrix, so backward multiplies by its transpose.

    Shape: (N, C, *S) -> (N, C, *S_out).

    >>> OnnxResize(scales=(2.0, 2.0)).output_shape((1, 3, 4, 5))
    (1, 3, 8, 10)
    """

    def __init__(self, scales=None, sizes=None, mode="nearest", transform="asymmetric", nearest_mode="floor"):
        if (scales is None) == (sizes is None):
            raise ValueError("OnnxResize: give exactly one of scales and sizes.")
        if mode not in ("nearest", "linear"):
            raise ValueError(f"OnnxResize: Received mode={mode!r}; expected 'nearest' or 'linear'.")
        self.scales = None if scales is None else tuple(float(s) for s in scales)
        self.sizes = None if sizes is None else tuple(int(s) for s in sizes)
        self.mode, self.transform, self.nearest_mode = mode, transform, nearest_mode

    def _plan(self, shape):
        spatial = tuple(shape[2:])
        count = len(self.scales if self.scales is not None else self.sizes)
        if len(spatial) != count:
            raise ShapeError(f"{self!r}: expected {count} spatial axes, received shape {tuple(shape)}.")
        if self.scales is not None:
            return [(math.floor(n * s), n, s) for n, s in zip(spatial, self.scales, strict=True)]
        return [(o, n, o / n) for o, n in zip(self.sizes, spatial, strict=True)]

    def output_shape(self, input_shape):
        return (*tuple(input_shape)[:2], *(o for o, _, _ in self._plan(input_shape)))

    def forward(self, x):
        self.check_input(x, len(self.scales or self.sizes) + 2, layout="(N, C, *S)")
        mats = [interpolation_matrix(o, n, s, self.mode, self.transform, self.nearest_mode).astype(x.dtype)
                for o, n, s in self._plan(x.shape)]
        y = x
        for axis, A in enumerate(mats, start=2):
            y = np.moveaxis(np.tensordot(A, y, axes=([1], [axis])), 0, axis)
        self._cache = mats
        return np.ascontiguousarray(y)

    def backward(self, dy):
        mats = self._pop_cache()
        dx = dy
        for axis, A in enumerate(mats, start=2):
            dx = np.moveaxis(np.tensordot(A.T, dx, axes=([1], [axis])), 0, axis)
        return np.ascontiguousarray(dx)
