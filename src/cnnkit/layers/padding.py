"""Padding layers, PyTorch's set: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad and CircularPad in
1, 2 and 3 dimensions (kernel in cnnkit.functional.padding).

A convolution pads with zeros by itself; a padding layer is for the other modes (reflection avoids the
dark border that zeros draw around a generated image) and for padding that differs per side. ``padding`` is
PyTorch's: an int for every side, or 2 * nd ints *last axis first* (left, right, top, bottom, front, back);
(before, after) pairs first axis first are cnnkit's other spelling. A negative pad crops.

What every padding layer shares, so that each class below says only its mode:

- Shape: (N, C, W) -> (N, C, W + left + right) in 1-D; (N, C, H, W) -> (N, C, H + top + bottom,
  W + left + right) in 2-D; (N, C, D, H, W) -> (N, C, D + front + back, H + top + bottom, W + left + right)
  in 3-D; one example without the batch axis ((C, *S)) keeps none.
- Args: ``padding``, an int, 2 * nd ints or nd pairs as above (ConstantPad also takes ``value``).
- Raises: TypeError/ValueError for a padding that is none of those; ShapeError for an input of another
  rank, or pads the mode cannot take (or negative pads that leave no positions); RuntimeError for
  backward before forward.
"""

from __future__ import annotations

import numbers

from cnnkit.errors import ShapeError
from cnnkit.functional import padding as P
from cnnkit.layers.base import Layer

LAYOUTS = {1: "(N, C, W)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


class _Pad(Layer):
    """Pad the spatial axes of (N, C, *S) by ``padding`` with the rule of ``mode``."""

    ndim, mode = 2, "constant"

    def __init__(self, padding):
        self.padding = P.torch_order(padding, self.ndim, name=type(self).__name__)  # (before, after) per axis
        self.value = 0.0

    @property
    def batched_ndim(self):
        return self.ndim + 2

    @property
    def layout(self):
        return LAYOUTS[self.ndim]

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != self.ndim + 2:
            raise ShapeError(f"{self!r}: expected a {self.ndim + 2}-D input {self.layout}, received shape "
                             f"{shape}.")
        P.check_pads(shape[2:], self.padding, self.mode, name=repr(self))
        return (*shape[:2], *(n + lo + hi for n, (lo, hi) in zip(shape[2:], self.padding, strict=True)))

    def forward(self, x):
        self.check_input(x, self.ndim + 2, layout=self.layout)
        y, self._cache = P.padnd(x, self.padding, self.mode, self.value, name=repr(self))
        return y

    def backward(self, dy):
        return P.padnd_backward(dy, self._pop_cache())

    def receptive_window(self, spatial):
        """For the analysis tools: a 1-wide window at stride 1 after ``before`` padded positions per axis."""
        return (1,) * self.ndim, (1,) * self.ndim, tuple(lo for lo, _ in self.padding)


class ZeroPad2d(_Pad):
    """Pad the borders of every (H, W) plane with zeros (a negative pad crops).

    Shape:
        (N, C, H, W) -> (N, C, H + top + bottom, W + left + right); an unbatched (C, H, W) input keeps no
        batch axis.

    Args:
        padding: an int for all four sides, (left, right, top, bottom) as in PyTorch, or
            ((top, bottom), (left, right)) pairs.

    Raises:
        TypeError/ValueError: a padding that is not an int, 4 ints or 2 pairs of ints.
        ShapeError: an input that is not 4-D (or 3-D), or negative pads that leave no positions.
        RuntimeError: backward before forward.

    >>> ZeroPad2d((1, 2, 0, 3)).output_shape((1, 3, 4, 4))
    (1, 3, 7, 7)
    """


class ZeroPad1d(ZeroPad2d):
    """Pad both ends of every sequence with zeros. Shape, Args, Raises: as every padding layer (see the
    module), with one spatial axis: padding an int or (left, right).

    >>> ZeroPad1d((2, 1)).output_shape((1, 3, 5))
    (1, 3, 8)
    """

    ndim = 1


class ZeroPad3d(ZeroPad2d):
    """Pad the borders of every (D, H, W) volume with zeros. Shape, Args, Raises: as every padding layer (see
    the module), with three spatial axes.

    >>> ZeroPad3d(1).output_shape((1, 2, 3, 4, 5))
    (1, 2, 5, 6, 7)
    """

    ndim = 3


class ConstantPad2d(_Pad):
    """Pad the borders of every (H, W) plane with a constant ``value``.

    Shape: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right).

    Args:
        padding: an int, (left, right, top, bottom) as in PyTorch, or ((top, bottom), (left, right)).
        value: the constant (a real number).

    Raises:
        TypeError: a value that is not a real number; and as every padding layer (see the module).

    >>> ConstantPad2d(2, 3.5).output_shape((1, 1, 2, 2))
    (1, 1, 6, 6)
    """

    def __init__(self, padding, value):
        super().__init__(padding)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{type(self).__name__}: Received value={value!r}; expected a real number.")
        self.value = float(value)


class ConstantPad1d(ConstantPad2d):
    """Pad both ends of every sequence with a constant: :class:`ConstantPad2d` with one spatial axis,
    padding an int or (left, right).

    >>> ConstantPad1d((0, 2), -1.0).output_shape((4, 2, 3))
    (4, 2, 5)
    """

    ndim = 1


class ConstantPad3d(ConstantPad2d):
    """Pad every (D, H, W) volume with a constant: :class:`ConstantPad2d` with three spatial axes.

    >>> ConstantPad3d((1, 1, 0, 0, 2, 0), 0.5).output_shape((1, 1, 2, 2, 2))
    (1, 1, 4, 2, 4)
    """

    ndim = 3


class ReflectionPad2d(_Pad):
    """Pad every (H, W) plane with its mirror image, the edge not repeated: ``2 1 | 0 1 2 3 | 2 1``.

    Shape: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right); every pad must be smaller than its
    side (the mirror has H - 1 rows to show).

    Args:
        padding: an int, (left, right, top, bottom) as in PyTorch, or ((top, bottom), (left, right)).

    Raises:
        ShapeError: a pad not smaller than its side; and as every padding layer (see the module).

    >>> ReflectionPad2d(1).output_shape((1, 3, 8, 8))
    (1, 3, 10, 10)
    """

    mode = "reflect"


class ReflectionPad1d(ReflectionPad2d):
    """Pad every sequence with its mirror image, pads < W: :class:`ReflectionPad2d` with one spatial axis.

    >>> ReflectionPad1d((3, 1)).output_shape((1, 1, 4))
    (1, 1, 8)
    """

    ndim = 1


class ReflectionPad3d(ReflectionPad2d):
    """Pad every (D, H, W) volume with its mirror image, each pad smaller than its side:
    :class:`ReflectionPad2d` with three spatial axes.

    >>> ReflectionPad3d(1).output_shape((1, 1, 2, 3, 4))
    (1, 1, 4, 5, 6)
    """

    ndim = 3


class ReplicationPad2d(_Pad):
    """Pad every (H, W) plane by repeating its edge values: ``0 0 | 0 1 2 3 | 3 3``.

    Shape: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right).

    Args:
        padding: an int, (left, right, top, bottom) as in PyTorch, or ((top, bottom), (left, right)).

    Raises:
        as every padding layer (see the module).

    >>> ReplicationPad2d((2, 2, 1, 1)).output_shape((1, 3, 4, 4))
    (1, 3, 6, 8)
    """

    mode = "replicate"


class ReplicationPad1d(ReplicationPad2d):
    """Pad every sequence by repeating its end values: :class:`ReplicationPad2d` with one spatial axis.

    >>> ReplicationPad1d(4).output_shape((2, 1, 3))
    (2, 1, 11)
    """

    ndim = 1


class ReplicationPad3d(ReplicationPad2d):
    """Pad every (D, H, W) volume by repeating its border values: :class:`ReplicationPad2d` with three
    spatial axes.

    >>> ReplicationPad3d((1, 0, 0, 1, 2, 2)).output_shape((1, 1, 2, 2, 2))
    (1, 1, 6, 3, 3)
    """

    ndim = 3


class CircularPad2d(_Pad):
    """Pad every (H, W) plane with the opposite side, as if it were a torus: ``2 3 | 0 1 2 3 | 0 1``.

    Shape: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right); every pad at most its side.

    Args:
        padding: an int, (left, right, top, bottom) as in PyTorch, or ((top, bottom), (left, right)).

    Raises:
        ShapeError: a pad larger than its side; and as every padding layer (see the module).

    >>> CircularPad2d(1).output_shape((1, 3, 4, 4))
    (1, 3, 6, 6)
    """

    mode = "circular"


class CircularPad1d(CircularPad2d):
    """Pad every sequence with its other end (periodic), pads <= W: :class:`CircularPad2d` with one spatial
    axis.

    >>> CircularPad1d((1, 2)).output_shape((1, 1, 4))
    (1, 1, 7)
    """

    ndim = 1


class CircularPad3d(CircularPad2d):
    """Pad every (D, H, W) volume periodically along each axis, each pad at most its side:
    :class:`CircularPad2d` with three spatial axes.

    >>> CircularPad3d(1).output_shape((1, 1, 2, 2, 2))
    (1, 1, 4, 4, 4)
    """

    ndim = 3
