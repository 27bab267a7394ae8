"""Merge and tensor nodes for a :class:`~cnnkit.layers.graph.Graph`: the joins that chains cannot express.

A *merge* takes a list of arrays (``forward([a, b])``) and its backward returns one gradient per input:
``Add`` and ``Multiply`` (NumPy broadcasting, so a squeeze-and-excitation gate (N, C, 1, 1) scales a
volume (N, C, H, W)), ``Subtract``, ``Divide``, ``MatMul`` and ``Concatenate``; ``Constant`` is a merge
of no inputs that outputs a stored array. ``Split`` and ``Slice`` take one array; ``Split`` returns
several (a Graph names them ``"node:0"``, ``"node:1"``). ``Reshape`` and ``Permute`` reorder the numbers
of one example (ShuffleNet's channel shuffle is a Reshape, a Permute and a Reshape).

Broadcasting's backward is a sum: an input that was repeated along an axis receives the sum of the
gradients of its copies (:func:`unbroadcast`).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.layers.base import Layer, Parameter


def unbroadcast(dy: np.ndarray, shape) -> np.ndarray:
    """Sum ``dy`` over the axes that broadcasting added or stretched, so it takes ``shape`` again."""
    shape = tuple(shape)
    if dy.shape == shape:
        return dy
    extra = dy.ndim - len(shape)
    if extra:
        dy = dy.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and dy.shape[i] != 1)
    return dy.sum(axis=stretched, keepdims=True) if stretched else dy


def _int(value, name, owner):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: Received {name}={value!r}; expected an int.")
    return int(value)


def _axis(dim, ndim, layer, shape):
    if not -ndim <= dim < ndim:
        raise ShapeError(f"{layer!r}: received shape {tuple(shape)} with {ndim} axes, which has no "
                         f"axis dim={dim}.")
    return dim % ndim


class Merge(Layer):
    """A node of several inputs: ``forward(list of arrays)``, ``backward(dy)`` -> list of gradients.

    ``takes_list`` tells a Graph to pass the list itself; ``arity`` is the number of inputs it needs
    (None: two or more).
    """

    takes_list = True
    arity: int | None = 2

    def _check_inputs(self, xs, shapes=False):
        count = len(xs)
        wanted = self.arity
        if (wanted is None and count < 1) or (wanted is not None and count != wanted):
            expected = "at least one input" if wanted is None else f"{wanted} input(s)"
            raise ShapeError(f"{self!r}: expected {expected}, received {count}.")
        if shapes:
            return
        for x in xs:
            self.check_input(x, np.ndim(x), layout="of any shape")

    def _broadcast(self, shapes):
        try:
            return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))
        except ValueError:
            raise ShapeError(f"{self!r}: input shapes {[tuple(s) for s in shapes]} do not broadcast "
                             f"(each axis must be equal or 1).") from None

    def output_shape(self, input_shapes):
        self._check_inputs(input_shapes, shapes=True)
        return self._broadcast(input_shapes)


class Add(Merge):
    """The element-wise sum of its inputs (two or more), with broadcasting: a residual join.

    Shape: [(N, *S), (N, *S), ...] -> (N, *S); shapes broadcast as in NumPy.

    Raises:
        ShapeError: shapes that do not broadcast. RuntimeError: backward before forward.

    >>> Add().output_shape([(2, 8, 4, 4), (2, 8, 4, 4)])
    (2, 8, 4, 4)
    >>> Add()([np.ones((1, 2)), np.full((1, 1), 2.0)]).tolist()
    [[3.0, 3.0]]
    """

    arity = None

    def forward(self, xs):
        self._check_inputs(xs)
        shape = self._broadcast([x.shape for x in xs])
        y = np.add(xs[0], xs[1]) if len(xs) > 1 else np.array(xs[0])
        for x in xs[2:]:
            y += x
        self._cache = [x.shape for x in xs]
        return y.reshape(shape) if y.shape != shape else y

    def backward(self, dy):
        return [unbroadcast(dy, s) for s in self._pop_cache()]


class Multiply(Merge):
    """a * b element-wise with broadcasting: a gate, e.g. squeeze-and-excitation's channel weights.

    Shape: [(N, C, H, W), (N, C, 1, 1)] -> (N, C, H, W); shapes broadcast as in NumPy.
    Backward: da = dy * b, db = dy * a, each summed over the axes it was broadcast along.

    Raises:
        ShapeError: not two inputs, or shapes that do not broadcast. RuntimeError: backward before forward.

    >>> Multiply().output_shape([(2, 8, 4, 4), (2, 8, 1, 1)])
    (2, 8, 4, 4)
    """

    def forward(self, xs):
        self._check_inputs(xs)
        self._broadcast([x.shape for x in xs])
        a, b = xs
        self._cache = (a, b)
        return a * b

    def backward(self, dy):
        a, b = self._pop_cache()
        return [unbroadcast(dy * b, a.shape), unbroadcast(dy * a, b.shape)]


class Subtract(Merge):
    """a - b element-wise with broadcasting (e.g. subtracting a mean image).

    Shape: two broadcastable shapes -> their broadcast shape.

    >>> Subtract()([np.ones((1, 2)), np.ones((1, 1))]).tolist()
    [[0.0, 0.0]]
    """

    def forward(self, xs):
        self._check_inputs(xs)
        self._broadcast([x.shape for x in xs])
        self._cache = (xs[0].shape, xs[1].shape)
        return xs[0] - xs[1]

    def backward(self, dy):
        a, b = self._pop_cache()
        return [unbroadcast(dy, a), -unbroadcast(dy, b)]


class Divide(Merge):
    """a / b element-wise with broadcasting (e.g. dividing by a standard deviation).

    Backward: da = dy / b, db = -dy * a / b^2 = -dy * y / b.

    >>> Divide()([np.ones((1, 2)), np.full((1, 1), 4.0)]).tolist()
    [[0.25, 0.25]]
    """

    def forward(self, xs):
        self._check_inputs(xs)
        self._broadcast([x.shape for x in xs])
        a, b = xs
        y = a / b
        self._cache = (a.shape, b, y)
        return y

    def backward(self, dy):
        a_shape, b, y = self._pop_cache()
        da = dy / b
        return [unbroadcast(da, a_shape), unbroadcast(-da * y, b.shape)]


class MatMul(Merge):
    """a @ b as ``np.matmul`` (batched over leading axes, which broadcast).

    Shape: (..., n, k) @ (..., k, m) -> (..., n, m). Backward: da = dy @ b^T, db = a^T @ dy.

    >>> MatMul().output_shape([(2, 3, 4), (4, 5)])
    (2, 3, 5)
    """

    def output_shape(self, input_shapes):
        self._check_inputs(input_shapes, shapes=True)
        a, b = (tuple(s) for s in input_shapes)
        if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
            raise ShapeError(f"{self!r}: cannot multiply shapes {a} @ {b}; expected (..., n, k) @ "
                             f"(..., k, m) with at least 2 axes each.")
        return (*self._broadcast([a[:-2], b[:-2]]), a[-2], b[-1])

    def forward(self, xs):
        self._check_inputs(xs)
        self.output_shape([x.shape for x in xs])
        a, b = xs
        self._cache = (a, b)
        return np.matmul(a, b)

    def backward(self, dy):
        a, b = self._pop_cache()
        da = np.matmul(dy, np.swapaxes(b, -1, -2))
        db = np.matmul(np.swapaxes(a, -1, -2), dy)
        return [unbroadcast(da, a.shape), unbroadcast(db, b.shape)]


class Concatenate(Merge):
    """Join the inputs along ``dim`` (channels by default): DenseNet's growing feature map, U-Net's skips.

    Shape: [(N, C_1, H, W), (N, C_2, H, W), ...] -> (N, C_1 + C_2 + ..., H, W); every other axis must agree.

    Args:
        dim: the axis to join along (default 1; negative counts from the end).

    Raises:
        TypeError: dim not an int. ShapeError: inputs that differ beyond ``dim``.

    >>> Concatenate().output_shape([(2, 8, 4, 4), (2, 16, 4, 4)])
    (2, 24, 4, 4)
    """

    arity = None

    def __init__(self, dim=1):
        self.dim = _int(dim, "dim", "Concatenate")

    def output_shape(self, input_shapes):
        self._check_inputs(input_shapes, shapes=True)
        shapes = [tuple(s) for s in input_shapes]
        ndim = len(shapes[0])
        axis = _axis(self.dim, ndim, self, shapes[0])
        rest = [s[:axis] + s[axis + 1:] for s in shapes]
        if any(len(s) != ndim for s in shapes) or any(r != rest[0] for r in rest):
            raise ShapeError(f"{self!r}: input shapes {shapes} differ beyond axis {axis}.")
        return (*shapes[0][:axis], sum(s[axis] for s in shapes), *shapes[0][axis + 1:])

    def forward(self, xs):
        self._check_inputs(xs)
        self.output_shape([x.shape for x in xs])
        axis = self.dim % xs[0].ndim
        self._cache = (axis, [x.shape[axis] for x in xs])
        return np.concatenate(xs, axis=axis)

    def backward(self, dy):
        axis, sizes = self._pop_cache()
        return np.split(dy, np.cumsum(sizes)[:-1], axis=axis)


class Constant(Merge):
    """A stored array as a node of no inputs: a bias, a scale, a mean image used by Add/Multiply/...

    The values live in the state dict under ``value`` (a buffer, or a trainable Parameter with
    ``trainable=True``), not in the config, like every layer's weights.

    Shape: [] -> ``shape``.

    Args:
        shape: the array's shape (it broadcasts against the batch; include the batch axis as 1 if needed).
        trainable: keep the values in a Parameter that optimizers update (default: a fixed buffer).
        value: initial values (default zeros), cast to float32 unless ``dtype`` says otherwise.
        dtype: "float32" (default) or "float64".

    >>> Constant((1, 3), value=[[1.0, 2.0, 3.0]])([]).tolist()
    [[1.0, 2.0, 3.0]]
    """

    arity = 0

    def __init__(self, shape, *, trainable=False, value=None, dtype="float32"):
        if not isinstance(shape, tuple | list) or not all(isinstance(n, numbers.Integral) and n >= 0
                                                           for n in shape):
            raise TypeError(f"Constant: Received shape={shape!r}; expected a tuple of ints >= 0.")
        self.shape = tuple(int(n) for n in shape)
        data = np.zeros(self.shape, dtype=np.dtype(dtype)) if value is None else \
            np.array(value, dtype=np.dtype(dtype))
        if data.shape != self.shape:
            raise ShapeError(f"Constant: value has shape {data.shape}, expected {self.shape}.")
        self.trainable = bool(trainable)
        if self.trainable:
            self.value = Parameter(data)
        else:
            self.buffer_names = ("value",)
            self.value = data

    def config(self):
        return {"type": "Constant", "shape": list(self.shape), "trainable": self.trainable,
                "dtype": str(self._array().dtype)}

    def extra_repr(self):
        return f"shape={self.shape}" + (", trainable=True" if self.trainable else "")

    def _array(self):
        return self.value.data if self.trainable else self.value

    def output_shape(self, input_shapes=()):
        self._check_inputs(input_shapes, shapes=True)
        return self.shape

    def forward(self, xs=()):
        self._check_inputs(xs)
        self._cache = True
        return self._array()

    def backward(self, dy):
        self._pop_cache()
        if self.trainable:
            self.value.grad += unbroadcast(dy, self.shape)
        return []


class Split(Layer):
    """Cut one input into consecutive parts along ``dim``: several outputs (``"node:0"``, ``"node:1"``...).

    Shape: (N, C, H, W) -> [(N, s_1, H, W), (N, s_2, H, W), ...] for sizes s_i summing to C (dim=1).
    Backward joins the parts' gradients (zeros for a part nobody used).

    Args:
        sizes: the size of each part along ``dim``.
        dim: the axis to cut (default 1).

    Raises:
        TypeError/ValueError: bad sizes or dim. ShapeError: sizes that do not add up to the axis.

    >>> Split([2, 6]).output_shape((1, 8, 4, 4))
    [(1, 2, 4, 4), (1, 6, 4, 4)]
    """

    def __init__(self, sizes, dim=1):
        if not isinstance(sizes, tuple | list) or not sizes:
            raise TypeError(f"Split: Received sizes={sizes!r}; expected a non-empty list of ints.")
        self.sizes = tuple(_int(s, "sizes", "Split") for s in sizes)
        if any(s < 0 for s in self.sizes):
            raise ValueError(f"Split: Received sizes={sizes!r}; every size must be >= 0.")
        self.dim = _int(dim, "dim", "Split")
        self.num_outputs = len(self.sizes)

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        axis = _axis(self.dim, len(shape), self, shape)
        if sum(self.sizes) != shape[axis]:
            raise ShapeError(f"{self!r}: the sizes add up to {sum(self.sizes)} but axis {axis} of shape "
                             f"{shape} has {shape[axis]}.")
        return [(*shape[:axis], s, *shape[axis + 1:]) for s in self.sizes]

    def forward(self, x):
        self.check_input(x, x.ndim if isinstance(x, np.ndarray) else 0, layout="of any shape")
        self.output_shape(x.shape)
        axis = self.dim % x.ndim
        self._cache = (axis, x.shape, x.dtype)
        return tuple(np.split(x, np.cumsum(self.sizes)[:-1], axis=axis))

    def backward(self, dys):
        axis, shape, dtype = self._pop_cache()
        parts = [np.zeros((*shape[:axis], s, *shape[axis + 1:]), dtype) if d is None else d
                 for d, s in zip(dys, self.sizes, strict=True)]
        return np.concatenate(parts, axis=axis)


class Slice(Layer):
    """``x[..., start:stop:step, ...]`` along one axis ``dim`` (Python's slice rules, negative ends count
    from the end).

    Shape: (N, C, H, W) -> (N, len(range(C)[start:stop:step]), H, W) for dim=1.

    >>> Slice(2, None, dim=1).output_shape((1, 8, 4, 4))
    (1, 6, 4, 4)
    """

    def __init__(self, start=None, stop=None, step=1, dim=1):
        for name, value in (("start", start), ("stop", stop)):
            if value is not None:
                _int(value, name, "Slice")
        if _int(step, "step", "Slice") == 0:
            raise ValueError("Slice: Received step=0; the step must not be zero.")
        self.start, self.stop, self.step = start, stop, int(step)
        self.dim = _int(dim, "dim", "Slice")

    def _index(self, shape):
        axis = _axis(self.dim, len(shape), self, shape)
        return axis, (slice(None),) * axis + (slice(self.start, self.stop, self.step),)

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        axis, _ = self._index(shape)
        n = len(range(shape[axis])[self.start:self.stop:self.step])
        return (*shape[:axis], n, *shape[axis + 1:])

    def forward(self, x):
        self.check_input(x, x.ndim if isinstance(x, np.ndarray) else 0, layout="of any shape")
        _, index = self._index(x.shape)
        self._cache = (index, x.shape, x.dtype)
        return x[index]

    def backward(self, dy):
        index, shape, dtype = self._pop_cache()
        dx = np.zeros(shape, dtype=np.result_type(dtype, dy.dtype))
        dx[index] = dy
        return dx


class Reshape(Layer):
    """Give each example a new shape: (N, *S) -> (N, *shape), with the same numbers in the same order.

    One entry may be -1 (inferred). The batch axis is never touched, as Keras' Reshape.

    Shape: (N, *S) -> (N, *shape), prod(shape) == prod(S).

    Raises:
        TypeError: shape not a sequence of ints. ShapeError: an input whose size does not fit.

    >>> Reshape((2, 4, 3, 3)).output_shape((5, 8, 3, 3))
    (5, 2, 4, 3, 3)
    """

    def __init__(self, shape):
        if not isinstance(shape, tuple | list):
            raise TypeError(f"Reshape: Received shape={shape!r}; expected a tuple of ints (one may be -1).")
        self.shape = tuple(_int(n, "shape", "Reshape") for n in shape)
        if sum(n == -1 for n in self.shape) > 1 or any(n < -1 for n in self.shape):
            raise ValueError(f"Reshape: Received shape={shape!r}; entries must be >= 0 and at most one -1.")

    def output_shape(self, input_shape):
        N, *rest = tuple(input_shape)
        size, known = math.prod(rest), math.prod(n for n in self.shape if n != -1)
        target = list(self.shape)
        if -1 in target:
            if known == 0 or size % known:
                raise ShapeError(f"{self!r}: cannot reshape {tuple(rest)} ({size} numbers per example).")
            target[target.index(-1)] = size // known
        elif known != size:
            raise ShapeError(f"{self!r}: cannot reshape {tuple(rest)} ({size} numbers per example) into "
                             f"{self.shape} ({known}).")
        return (N, *target)

    def forward(self, x):
        self.check_input(x, x.ndim if isinstance(x, np.ndarray) else 0, layout="of any shape")
        self._cache = x.shape
        return x.reshape(self.output_shape(x.shape))

    def backward(self, dy):
        return dy.reshape(self._pop_cache())


class Permute(Layer):
    """Reorder the axes: ``x.transpose(dims)`` (the batch axis included, as torch's ``permute``).

    Shape: (d_0, d_1, ...) -> (d_dims[0], d_dims[1], ...). Backward applies the inverse permutation.

    >>> Permute((0, 2, 1, 3, 4)).output_shape((1, 3, 4, 5, 5))
    (1, 4, 3, 5, 5)
    """

    def __init__(self, dims):
        if not isinstance(dims, tuple | list) or sorted(_int(d, "dims", "Permute") for d in dims) != \
                list(range(len(dims))):
            raise ValueError(f"Permute: Received dims={dims!r}; expected a permutation of 0..n-1.")
        self.dims = tuple(int(d) for d in dims)

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != len(self.dims):
            raise ShapeError(f"{self!r}: expected a {len(self.dims)}-D input, received shape {shape}.")
        return tuple(shape[d] for d in self.dims)

    def forward(self, x):
        self.check_input(x, len(self.dims), layout=f"with {len(self.dims)} axes")
        self._cache = True
        return x.transpose(self.dims)

    def backward(self, dy):
        self._pop_cache()
        return dy.transpose(np.argsort(self.dims))
