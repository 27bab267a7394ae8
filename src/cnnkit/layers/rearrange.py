"""Layers that move values without computing: PixelShuffle and PixelUnshuffle (sub-pixel convolution),
ChannelShuffle (ShuffleNet) and Unflatten. Kernels in :mod:`cnnkit.functional.rearrange`."""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

from cnnkit.errors import ShapeError
from cnnkit.functional import rearrange as F
from cnnkit.layers.activation import check_float_array
from cnnkit.layers.base import Layer
from cnnkit.layers.conv import positive_int


class PixelShuffle(Layer):
    """Trade channels for resolution: blocks of r^2 channels become r x r pixel blocks (Shi et al. 2016's
    sub-pixel convolution, the upsampler of ESPCN and of super-resolution decoders).
    ``torch.nn.PixelShuffle``.

    Shape: (*, C r^2, H, W) -> (*, C, H r, W r), at least 3-D.

    Args:
        upscale_factor: r, a positive int.

    Raises:
        ValueError/TypeError: r not a positive int. ShapeError: fewer than 3 axes, or channels not divisible
        by r^2. TypeError: x not a floating-point array.

    >>> PixelShuffle(2).output_shape((1, 12, 8, 8))
    (1, 3, 16, 16)
    """

    def __init__(self, upscale_factor):
        self.upscale_factor = positive_int(upscale_factor, "upscale_factor", "PixelShuffle")

    def output_shape(self, input_shape):
        shape, r = tuple(input_shape), self.upscale_factor
        if len(shape) < 3 or shape[-3] % (r * r):
            raise ShapeError(f"{self!r}: expected an input (*, C * {r * r}, H, W) whose channels divide by "
                             f"upscale_factor^2 = {r * r}, received shape {shape}.")
        *lead, C, H, W = shape
        return (*lead, C // (r * r), H * r, W * r)

    def receptive_window(self, spatial):
        """Each output pixel is one input pixel; neighbours are 1/r input pixels apart."""
        return (1,) * len(spatial), (Fraction(1, self.upscale_factor),) * len(spatial), (0,) * len(spatial)

    def forward(self, x):
        check_float_array(self, x)
        self.output_shape(x.shape)
        y, self._cache = F.pixel_shuffle(x, self.upscale_factor)
        return y

    def backward(self, dy):
        return F.pixel_shuffle_backward(dy, self._pop_cache())


class PixelUnshuffle(Layer):
    """Trade resolution for channels: r x r pixel blocks become r^2 channels, the inverse of
    :class:`PixelShuffle`: ``torch.nn.PixelUnshuffle``.

    Shape: (*, C, H r, W r) -> (*, C r^2, H, W), at least 3-D.

    Args:
        downscale_factor: r, a positive int.

    Raises:
        ValueError/TypeError: r not a positive int. ShapeError: fewer than 3 axes, or H, W not divisible by
        r. TypeError: x not a floating-point array.

    >>> PixelUnshuffle(2).output_shape((1, 3, 16, 16))
    (1, 12, 8, 8)
    """

    def __init__(self, downscale_factor):
        self.downscale_factor = positive_int(downscale_factor, "downscale_factor", "PixelUnshuffle")

    def output_shape(self, input_shape):
        shape, r = tuple(input_shape), self.downscale_factor
        if len(shape) < 3 or shape[-2] % r or shape[-1] % r:
            raise ShapeError(f"{self!r}: expected an input (*, C, H, W) with H and W divisible by "
                             f"downscale_factor = {r}, received shape {shape}.")
        *lead, C, H, W = shape
        return (*lead, C * r * r, H // r, W // r)

    def receptive_window(self, spatial):
        """Each output pixel gathers an r x r block: a window of r at stride r."""
        r = self.downscale_factor
        return (r,) * len(spatial), (r,) * len(spatial), (0,) * len(spatial)

    def forward(self, x):
        check_float_array(self, x)
        self.output_shape(x.shape)
        y, self._cache = F.pixel_unshuffle(x, self.downscale_factor)
        return y

    def backward(self, dy):
        return F.pixel_unshuffle_backward(dy, self._pop_cache())


class ChannelShuffle(Layer):
    """Interleave the channels of ``groups`` groups, so that the next grouped convolution's groups each see
    every group before (ShuffleNet): ``torch.nn.ChannelShuffle``.

    Shape: (N, C, *S) -> the same shape, at least 3-D, C divisible by groups.

    Args:
        groups: a positive int.

    Raises:
        ValueError/TypeError: groups not a positive int. ShapeError: fewer than 3 axes, or C not divisible
        by groups. TypeError: x not a floating-point array.

    >>> import numpy as np
    >>> ChannelShuffle(2)(np.arange(4.0).reshape(1, 4, 1)).ravel().tolist()
    [0.0, 2.0, 1.0, 3.0]
    """

    def __init__(self, groups):
        self.groups = positive_int(groups, "groups", "ChannelShuffle")

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) < 3 or shape[1] % self.groups:
            raise ShapeError(f"{self!r}: expected an input (N, C, *S) with C divisible by groups = "
                             f"{self.groups}, received shape {shape}.")
        return shape

    def forward(self, x):
        check_float_array(self, x)
        self.output_shape(x.shape)
        y, self._cache = F.channel_shuffle(x, self.groups)
        return y

    def backward(self, dy):
        return F.channel_shuffle_backward(dy, self._pop_cache())


class Unflatten(Layer):
    """Split one axis into several, the inverse of :class:`Flatten`: ``torch.nn.Unflatten``.

    ``Unflatten(1, (C, H, W))`` turns the vectors (N, C*H*W) of a fully connected layer back into volumes,
    as a decoder or a generator does.

    Shape: (..., prod(unflattened_size), ...) -> (..., *unflattened_size, ...) at axis ``dim``.

    Args:
        dim: the axis to split (negative counts from the end). unflattened_size: positive ints, one of them
            may be -1 (inferred).

    Raises:
        TypeError/ValueError: dim not an int, sizes not positive ints (or more than one -1).
        ShapeError: no axis dim, or a size that does not split it. TypeError: x not a floating-point array.

    >>> Unflatten(1, (16, 5, 5)).output_shape((8, 400))
    (8, 16, 5, 5)
    """

    def __init__(self, dim, unflattened_size):
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"Unflatten: Received dim={dim!r}; expected an int.")
        if not isinstance(unflattened_size, tuple | list) or not unflattened_size:
            raise TypeError(f"Unflatten: Received unflattened_size={unflattened_size!r}; expected a "
                            f"non-empty tuple of ints.")
        sizes = tuple(-1 if s == -1 and not isinstance(s, bool) else
                      positive_int(s, "unflattened_size", "Unflatten") for s in unflattened_size)
        if sizes.count(-1) > 1:
            raise ValueError(f"Unflatten: Received unflattened_size={unflattened_size!r}; expected at most "
                             f"one -1 (the size to infer).")
        self.dim, self.unflattened_size = int(dim), sizes

    def output_shape(self, input_shape):
        shape, n = tuple(input_shape), len(input_shape)
        if not -n <= self.dim < n:
            raise ShapeError(f"{self!r}: received shape {shape} with {n} axes, which has no axis "
                             f"dim={self.dim}.")
        axis = self.dim % n
        known = math.prod(s for s in self.unflattened_size if s != -1)
        if (-1 in self.unflattened_size and shape[axis] % known) or \
                (-1 not in self.unflattened_size and shape[axis] != known):
            raise ShapeError(f"{self!r}: axis {self.dim} of the input {shape} has size {shape[axis]}, which "
                             f"{self.unflattened_size} does not split (product {known}).")
        sizes = tuple(shape[axis] // known if s == -1 else s for s in self.unflattened_size)
        return (*shape[:axis], *sizes, *shape[axis + 1:])

    def forward(self, x):
        check_float_array(self, x)
        self.output_shape(x.shape)
        y, self._cache = F.unflatten(x, self.dim, self.unflattened_size)
        return y

    def backward(self, dy):
        return F.unflatten_backward(dy, self._pop_cache())
