"""Upsample (and PyTorch's fixed-mode UpsamplingNearest2d, UpsamplingBilinear2d): resample the spatial axes,
as the decoders of U-Net, FPN and segmentation networks do. Kernel: :func:`cnnkit.functional.interpolate`.
"""

from __future__ import annotations

import numbers
from fractions import Fraction

from cnnkit.errors import ShapeError
from cnnkit.functional.upsample import interpolate, interpolate_backward
from cnnkit.layers.activation import check_float_array
from cnnkit.layers.base import Layer
from cnnkit.reference.upsample import MODES, check_arguments, output_size, per_axis


class Upsample(Layer):
    """Resize (N, C, *S) to ``size``, or by ``scale_factor``, interpolating: ``torch.nn.Upsample``.

    Modes: "nearest" (PyTorch's default: output o reads input ``floor(o * n / m)``), "nearest-exact"
    (pixel centres), "linear" (1 spatial axis), "bilinear" (2), "trilinear" (3); for the linear modes
    ``align_corners=True`` maps the corner pixels' centres onto each other, False (default) the pixel
    areas. Backward scatters each output's gradient onto the inputs it read, with the same weights.

    Shape:
        (N, C, *S) -> (N, C, *S_out) with ``S_out = size``, or ``floor(S * scale_factor)`` per axis.

    Args:
        size: the output's spatial sizes (an int for every axis, or one per axis).
        scale_factor: a factor for every axis or one per axis (give size or scale_factor).
        mode: "nearest" (default), "nearest-exact", "linear", "bilinear" or "trilinear".
        align_corners: None (= False) or a bool, for the linear modes only.
        recompute_scale_factor: take the coordinates' scale from the sizes instead of the factor.

    Raises:
        ValueError/TypeError: an unknown mode, neither or both of size and scale_factor, non-positive
        values, align_corners with a nearest mode. ShapeError: an input whose rank the mode does not take,
        or an empty output. TypeError: x not a floating-point array.

    >>> Upsample(scale_factor=2).output_shape((1, 64, 28, 28))
    (1, 64, 56, 56)
    >>> Upsample(size=(5, 7), mode="bilinear", align_corners=True).output_shape((1, 3, 2, 2))
    (1, 3, 5, 7)
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        owner = type(self).__name__
        check_arguments(size, scale_factor, mode, align_corners, owner)
        for name, value, kind in (("size", size, numbers.Integral),
                                  ("scale_factor", scale_factor, numbers.Real)):
            if value is not None:  # types and signs here; their count against the input's axes later
                per_axis(value, len(value) if isinstance(value, tuple | list) else 1, name, kind, owner)
        self.size, self.scale_factor = size, scale_factor
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def _out(self, shape):
        shape = tuple(shape)
        if len(shape) - 2 not in MODES[self.mode]:
            axes = " or ".join(str(n + 2) for n in MODES[self.mode])
            raise ShapeError(f"{self!r}: mode={self.mode!r} takes a {axes}-D input (N, C, *S), received "
                             f"shape {shape}.")
        try:
            out = output_size(shape[2:], self.size, self.scale_factor, repr(self))
        except ValueError as e:
            raise ShapeError(str(e)) from None
        if min(out) < 1:
            raise ShapeError(f"{self!r}: the output of shape {(*shape[:2], *out)} would be empty for the "
                             f"input {shape}.")
        return out

    def output_shape(self, input_shape):
        return (*tuple(input_shape)[:2], *self._out(input_shape))

    def receptive_window(self, spatial):
        """For the analysis tools, per axis: each output reads 1 (nearest) or 2 (linear) inputs, and
        neighbouring outputs are n / m inputs apart."""
        out = self._out((1, 1, *spatial))
        taps = 1 if self.mode.startswith("nearest") else 2
        steps = tuple(Fraction(n, m) for n, m in zip(spatial, out, strict=True))
        return tuple(min(taps, n) for n in spatial), steps, (0,) * len(spatial)

    def forward(self, x):
        check_float_array(self, x)
        self.output_shape(x.shape)
        y, self._cache = interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                                     self.recompute_scale_factor)
        return y

    def backward(self, dy):
        return interpolate_backward(dy, self._pop_cache())


class _Upsampling2d(Upsample):
    """PyTorch's fixed-mode 2-D upsampling layers: (N, C, H, W) only."""

    def output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ShapeError(f"{self!r}: expected a 4-D input (N, C, H, W), received shape "
                             f"{tuple(input_shape)}.")
        return super().output_shape(input_shape)


class UpsamplingNearest2d(_Upsampling2d):
    """``Upsample(size, scale_factor, mode="nearest")`` of (N, C, H, W): ``torch.nn.UpsamplingNearest2d``.

    Shape: (N, C, H, W) -> (N, C, H_out, W_out).

    Args:
        size, scale_factor: as :class:`Upsample` (one of them).

    Raises:
        as :class:`Upsample`.

    >>> UpsamplingNearest2d(scale_factor=2).output_shape((1, 8, 5, 5))
    (1, 8, 10, 10)
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, "nearest")


class UpsamplingBilinear2d(_Upsampling2d):
    """``Upsample(size, scale_factor, mode="bilinear", align_corners=True)``:
    ``torch.nn.UpsamplingBilinear2d`` (whose corners, unlike Upsample's default, are aligned).

    Shape: (N, C, H, W) -> (N, C, H_out, W_out).

    Args:
        size, scale_factor: as :class:`Upsample` (one of them).

    Raises:
        as :class:`Upsample`.

    >>> UpsamplingBilinear2d(size=7).output_shape((1, 8, 5, 5))
    (1, 8, 7, 7)
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, "bilinear", True)
