"""The layers the ONNX importer builds for activations, PRelu and Resize: cnnkit's public layers where
one computes the operator, else a small stand-in with ONNX's exact semantics.

The choice, made per node from its attributes (and, for Resize, the input's spatial size):

- ``activation``: Selu with its default alpha and gamma is :class:`~cnnkit.layers.SELU`, HardSigmoid with
  PyTorch's alpha = 1/6 and beta = 0.5 is :class:`~cnnkit.layers.Hardsigmoid`, a Clip is ReLU6, ReLU or
  :class:`~cnnkit.layers.Hardtanh`; other alphas, betas and one-sided bounds become ``OnnxActivation``
  (Keras' hard sigmoid, for one, has alpha = 0.2);
- ``prelu``: one slope, or one per channel of axis 1, is :class:`~cnnkit.layers.PReLU`; a slope per
  position (Keras' default) or per last axis becomes ``OnnxPRelu``;
- ``resize``: :class:`~cnnkit.layers.Upsample` when one of its modes samples exactly the positions and
  weights ONNX's coordinate rules give at this input size, else ``OnnxResize`` (ONNX's rules for any mode,
  as one interpolation matrix per axis).

The stand-ins are trainable like any layer (forward keeps what backward needs; backward adds into its
parameters' gradients) and are registered layer types, so an imported model saves, loads and exports to
ONNX again; ``to_torch`` knows them too.
"""

from __future__ import annotations

import math

import numpy as np

from cnnkit import layers as L
from cnnkit.errors import ShapeError
from cnnkit.layers.base import Layer, Parameter
from cnnkit.layers.merge import unbroadcast
from cnnkit.reference.upsample import sampling_plan

SELU_ALPHA, SELU_GAMMA = 1.6732632423543772, 1.0507009873554805  # ONNX's defaults: SELU's constants


# name -> (forward f(x, a, b), derivative f'(x, a, b)); a and b are the operator's two attributes
_ACTIVATIONS = {
    "Selu": (lambda x, a, g: g * np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))),
             lambda x, a, g: g * np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0)))),
    "HardSigmoid": (lambda x, a, b: np.clip(a * x + b, 0, 1),
                    lambda x, a, b: np.where((a * x + b > 0) & (a * x + b < 1), a, 0.0)),
    # torch.clamp's gradient: 1 on the closed interval [min, max]
    "Clip": (lambda x, lo, hi: np.clip(x, lo, hi), lambda x, lo, hi: ((x >= lo) & (x <= hi)).astype(x.dtype)),
}


def _same_float32(a, b):
    """ONNX stores attributes as float32: 1/6 arrives as 0.16666667."""
    return np.float32(a) == np.float32(b)


def activation(op, alpha=None, beta=None) -> Layer:
    """The layer of an ONNX Selu (alpha, gamma), HardSigmoid (alpha, beta) or Clip (min, max) node."""
    if op == "Selu":
        alpha, beta = (SELU_ALPHA if alpha is None else alpha), (SELU_GAMMA if beta is None else beta)
        if _same_float32(alpha, SELU_ALPHA) and _same_float32(beta, SELU_GAMMA):
            return L.SELU()
    elif op == "HardSigmoid":
        alpha, beta = (0.2 if alpha is None else alpha), (0.5 if beta is None else beta)
        if _same_float32(alpha, 1 / 6) and _same_float32(beta, 0.5):
            return L.Hardsigmoid()
    elif op == "Clip":
        low, high = float(alpha), float(beta)
        if (low, high) == (0.0, 6.0):
            return L.ReLU6()
        if (low, high) == (0.0, math.inf):
            return L.ReLU()
        if math.isfinite(low) and math.isfinite(high) and low <= high:
            return L.Hardtanh(low, high)
    return OnnxActivation(op, alpha, beta)


class OnnxActivation(Layer):
    """An element-wise ONNX activation no public layer computes: ``op`` in Selu (alpha, gamma), HardSigmoid
    (alpha, beta), Clip (min, max), with any values. Shape: unchanged.

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


def prelu(slope, input_shape) -> Layer:
    """The layer of an ONNX PRelu whose ``slope`` broadcasts (from the right) against ``input_shape``."""
    slope = np.asarray(slope, np.float32)
    if slope.ndim == len(input_shape) and slope.shape[0] != 1:
        raise ValueError(f"PRelu: Received a slope of shape {slope.shape}, one per example of the batch "
                         f"(axis 0); cnnkit's layers treat every example of a batch alike.")
    shape = slope.shape
    while len(shape) >= len(input_shape) and shape and shape[0] == 1:  # ones over the batch axis
        shape = shape[1:]
    channels = input_shape[1] if len(input_shape) > 1 else None
    if slope.size == 1:
        layer = L.PReLU()
    elif shape == (channels, *(1,) * (len(input_shape) - 2)):  # (C, 1, ..., 1): one slope per channel
        layer = L.PReLU(channels)
    else:
        return OnnxPRelu(slope.shape, value=slope)
    layer.weight.data[...] = slope.reshape(-1)
    return layer


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

    def extra_repr(self):
        return f"slope_shape={self.slope_shape}"

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


TRANSFORMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
              "tf_half_pixel_for_nn")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _source_coordinates(out, n, scale, transform):
    """ONNX Resize's coordinate_transformation_mode: the input coordinate of each output position.

    ONNX's rules use the output length before flooring, ``n * scale`` (2.4 for a scale of 0.6 on 4
    inputs), where align_corners divides and where half_pixel_symmetric centres the output."""
    i = np.arange(out, dtype=np.float64)
    length = out if math.isclose(n * scale, out) else n * scale
    if transform == "half_pixel":
        return (i + 0.5) / scale - 0.5
    if transform == "half_pixel_symmetric":
        return n / 2 * (1 - out / length) + (i + 0.5) / scale - 0.5
    if transform == "pytorch_half_pixel":
        return (i + 0.5) / scale - 0.5 if length != 1 else np.zeros(out)
    if transform == "align_corners":
        return i * (n - 1) / (length - 1) if length != 1 else np.zeros(out)
    if transform == "asymmetric":
        return i / scale
    if transform == "tf_half_pixel_for_nn":
        return (i + 0.5) / scale
    raise ValueError(f"OnnxResize: Received coordinate_transformation_mode={transform!r}; expected one of "
                     f"{', '.join(TRANSFORMS)}.")


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
        for name, value, allowed in (("transform", transform, TRANSFORMS),
                                     ("nearest_mode", nearest_mode, NEAREST_MODES)):
            if value not in allowed:
                raise ValueError(f"OnnxResize: Received {name}={value!r}; expected one of "
                                 f"{', '.join(allowed)}.")
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


_LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}  # Upsample's linear mode for 1, 2, 3 spatial axes


def _matrix(taps, n):
    """The (out, n) interpolation matrix of one axis's (index, weight) taps (see sampling_plan)."""
    A = np.zeros((len(taps[0][0]), n))
    for index, weight in taps:
        np.add.at(A, (np.arange(len(index)), index), 1.0 if weight is None else weight)
    return A


def resize(spatial, scales=None, sizes=None, mode="nearest", transform="asymmetric", nearest_mode="floor"):
    """The layer of an ONNX Resize (or Upsample) of an input with spatial sizes ``spatial``.

    :class:`~cnnkit.layers.Upsample` (by ``scale_factor`` when the node gives scales, to ``size`` when it
    gives sizes) if one of its modes has, at this input size, the output size and the interpolation matrix
    of ONNX's rule: PyTorch's nearest is ONNX's asymmetric/floor, nearest-exact is half_pixel with
    round_prefer_ceil (and round_prefer_floor wherever no position falls half-way), linear with
    align_corners is align_corners, without it half_pixel. Else :class:`OnnxResize`, ONNX's rule exactly.
    """
    exact = OnnxResize(scales=scales, sizes=sizes, mode=mode, transform=transform, nearest_mode=nearest_mode)
    plan = exact._plan((1, 1, *spatial))
    wanted = [interpolation_matrix(o, n, s, mode, transform, nearest_mode) for o, n, s in plan]
    if mode == "nearest":
        candidates = [("nearest", None), ("nearest-exact", None)]
    elif len(spatial) in _LINEAR:
        candidates = [(_LINEAR[len(spatial)], False), (_LINEAR[len(spatial)], True)]
    else:
        candidates = []
    given = {"size": tuple(sizes)} if sizes is not None else {"scale_factor": tuple(scales)}
    for upsample_mode, align_corners in candidates:
        try:
            layer = L.Upsample(**given, mode=upsample_mode, align_corners=align_corners)
            taps = sampling_plan(tuple(spatial), layer.size, layer.scale_factor, upsample_mode, align_corners)
        except (ValueError, TypeError):  # a size or scale Upsample does not take (0, say)
            continue
        mats = [_matrix(t, n) for t, n in zip(taps, spatial, strict=True)]
        if all(A.shape == B.shape and np.allclose(A, B, rtol=0, atol=1e-6)
               for A, B in zip(mats, wanted, strict=True)):
            return layer
    return exact
