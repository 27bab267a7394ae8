"""Pooling layers: MaxPool1d/2d/3d, AvgPool1d/2d/3d, LPPool1d/2d/3d, the global pools, MaxUnpool1d/2d/3d
(the inverse of max pooling's selection) and BlurPool2d (anti-aliased).

Pooling shrinks every depth slice of the volume independently (kernels in cnnkit.functional.pool): the
notes' W x H x D volume becomes W_out x H_out x D, with ``W_out = (W - F + 2P) / S + 1`` like a convolution.
The windowed layers store ``kernel_size``, ``stride``, ``dilation`` per axis, ``padding`` as
(before, after) pairs and ``fit``, which is what the analysis tools read.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.fast.dispatch import ALGORITHMS, check_algorithm
from cnnkit.functional import pool as P
from cnnkit.functional import unpool as U
from cnnkit.geometry import as_tuple, check_fit, conv_geometry, padding_pairs
from cnnkit.layers.base import Layer, Sequential
from cnnkit.layers.conv import positive_int
from cnnkit.reference import pool as R


def _kernel_data(cache, reference_call):
    """The kernel's own cache (switches, divisors...) inside an op's cache; inside no_grad, where ops keep
    none, the textbook kernel's (``reference_call()``) for the one thing the layer needs from it."""
    data = getattr(cache, "data", cache)
    return reference_call()[1] if data is None else data


class _Pool(Layer):
    """A sliding window over (N, C, *S) that keeps the channel count."""

    ndim, layout = 2, "(N, C, H, W)"
    algorithm = "auto"  # the kernel: "auto" (the fast one), "reference" (the textbook's) or "fast"

    @property
    def batched_ndim(self):  # (N, C, *S); one example (C, *S) runs as a batch of one (see Layer)
        return self.ndim + 2
    takes_padding = True  # False: no padding argument (LPPool2d, Blur2d)

    def _set_window(self, kernel_size, stride=None, padding=0, dilation=1, fit="error", algorithm="auto"):
        owner, nd = type(self).__name__, self.ndim
        self.algorithm = check_algorithm(algorithm, ALGORITHMS, name=owner)
        try:
            self.kernel_size = as_tuple(kernel_size, nd, "kernel_size")
            self.stride = self.kernel_size if stride is None else as_tuple(stride, nd, "stride")
            self.dilation = as_tuple(dilation, nd, "dilation")
            self.padding = padding_pairs(padding, nd, self.kernel_size, self.dilation)
            self.fit = check_fit(fit)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{owner}: {e}") from None
        for k, (lo, hi) in zip(self.kernel_size, self.padding, strict=True):
            if max(lo, hi) > k // 2:
                raise ValueError(f"{owner}: Received padding={padding!r} with kernel_size={kernel_size!r}; "
                                 f"padding must be at most kernel_size // 2 = {k // 2} (PyTorch's rule), so "
                                 f"that every window covers some input.")

    @property
    def max_padding(self):
        """The most padding per side a ShapeError may advise: kernel_size // 2, or 0 without the argument."""
        return tuple(k // 2 for k in self.kernel_size) if self.takes_padding else 0

    def _check_shape(self, shape, channels=None):
        """The shape checks of ``forward`` (Layer.check_input), with the same messages, for output_shape."""
        if len(shape) != self.ndim + 2:
            raise ShapeError(f"{self!r}: expected a {self.ndim + 2}-D input {self.layout}, "
                             f"received shape {tuple(shape)}.")
        if channels is not None and shape[1] != channels:
            raise ShapeError(f"{self!r}: expected {channels} input channels, received shape {tuple(shape)} "
                             f"with {shape[1]}.")

    def output_shape(self, input_shape):
        self._check_shape(input_shape)
        N, C, *spatial = input_shape
        out, _ = conv_geometry(spatial, self.kernel_size, self.stride, self.padding, self.dilation, self.fit,
                               name=repr(self), max_padding=self.max_padding)
        return (N, C, *out)


class MaxPool2d(_Pool):
    """Max over each F x F window of every depth slice, with stride S.

    Shape:
        (N, C, H, W) -> (N, C, H_out, W_out), ``W_out = (W - F_eff + 2P) / S + 1`` with
        ``F_eff = dilation * (kernel_size - 1) + 1``; the same for H.

    Forward records the switches (the argmax of every window); backward routes each gradient to that one
    input only. Ties go to the first maximum in row-major order, as in PyTorch. Padding never wins.

    Args:
        kernel_size (F), stride (S)=None (= kernel_size), padding (P)=0 (at most kernel_size // 2),
        dilation=1: ints or per-axis tuples.
        return_indices: False (default). True makes forward return ``(y, indices)`` as PyTorch does: the
            flat position (``h * W + w``) of each window's max in its (H, W) plane, for MaxUnpool2d and the
            deconvnet; backward still takes dy only.
        fit: "error" (default) raises when the windows do not tile the input, "crop" rounds down
            (PyTorch's default), "pad" rounds up (PyTorch's ``ceil_mode=True``; a last window that only
            partly covers the input, even one wider than the whole padded input, pools what it covers).

    Raises:
        ValueError/TypeError for bad arguments; ShapeError for an input of the wrong rank or size.
        RuntimeError: backward before forward (in every layer here).

    >>> MaxPool2d(2).output_shape((1, 64, 224, 224)), MaxPool2d(3, 2, fit="pad").output_shape((1, 96, 54, 54))
    ((1, 64, 112, 112), (1, 96, 27, 27))
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, *, fit="error",
                 algorithm="auto"):
        self._set_window(kernel_size, stride, padding, dilation, fit, algorithm)
        if not isinstance(return_indices, bool):
            raise TypeError(f"{type(self).__name__}: Received return_indices={return_indices!r}; expected a "
                            f"bool.")
        self.return_indices = return_indices

    def forward(self, x):
        self.check_input(x, self.ndim + 2, layout=self.layout)
        y, cache = P.max_poolnd(x, self.kernel_size, self.stride, self.padding, self.dilation, self.fit,
                                name=repr(self), algorithm=self.algorithm)
        self._cache = cache
        if not self.return_indices:
            return y
        # The switches (which tap of each window won) as PyTorch's indices: flat positions in each plane.
        data = _kernel_data(cache, lambda: R.max_poolnd(x, self.kernel_size, self.stride, self.padding,
                                                        self.dilation, self.fit, name=repr(self)))
        return y, U.indices_from_switches(data["switches"], data["geometry"], x.shape[2:])

    def backward(self, dy):
        return P.max_poolnd_backward(dy, self._pop_cache())


class MaxPool1d(MaxPool2d):
    """Max over each window of F positions of a sequence, with stride S.

    Shape:
        (N, C, W) -> (N, C, W_out), ``W_out = (W - F_eff + 2P) / S + 1`` with
        ``F_eff = dilation * (kernel_size - 1) + 1``.

    Args:
        kernel_size (F), stride (S)=None (= kernel_size), padding (P)=0 (at most kernel_size // 2),
        dilation=1: ints or 1-tuples. fit="error" | "crop" | "pad", as in MaxPool2d.

    Raises:
        TypeError: a non-int kernel_size/stride/dilation/padding entry; x not a floating-point ndarray.
        ValueError: an entry < 1 (< 0 for padding), padding > kernel_size // 2, or an unknown fit.
        ShapeError: x not 3-D; F_eff > W + 2P; with fit="error", W_out not an integer.
        RuntimeError: backward before forward.

    >>> MaxPool1d(2).output_shape((8, 16, 100))
    (8, 16, 50)
    """

    ndim, layout = 1, "(N, C, W)"


class MaxPool3d(MaxPool2d):
    """Max over each F x F x F window of a volume (video, scans), with stride S.

    Shape:
        (N, C, D, H, W) -> (N, C, D_out, H_out, W_out), per axis ``(S - F_eff + 2P) / stride + 1`` with
        ``F_eff = dilation * (kernel_size - 1) + 1``.

    Args:
        kernel_size (F), stride (S)=None (= kernel_size), padding (P)=0 (at most kernel_size // 2),
        dilation=1: ints or 3-tuples. return_indices=False, fit="error" | "crop" | "pad": as in MaxPool2d
        (indices are flat positions in each (D, H, W) volume).

    Raises:
        ValueError/TypeError for bad arguments; ShapeError: x not 5-D (or 4-D, one example); the kernel
        larger than the padded input; with fit="error", an output size that is not an integer.
        RuntimeError: backward before forward.

    >>> MaxPool3d(2).output_shape((1, 4, 8, 8, 8))
    (1, 4, 4, 4, 4)
    >>> MaxPool3d((1, 2, 2), fit="crop").output_shape((1, 4, 3, 5, 5))
    (1, 4, 3, 2, 2)
    """

    ndim, layout = 3, "(N, C, D, H, W)"


class AvgPool2d(_Pool):
    """Mean over each F x F window of every depth slice, with stride S.

    Shape: (N, C, H, W) -> (N, C, H_out, W_out), ``W_out = (W - F + 2P) / S + 1``; the same for H.

    Args:
        kernel_size (F), stride (S)=None (= kernel_size), padding (P)=0 (at most kernel_size // 2).
        count_include_pad: True (PyTorch's default) divides by the window size including the zero padding;
            False only counts the input values under the window. The extra zeros of fit="pad" never count.
        divisor_override: None (default), or a positive int that divides every window's sum instead (a
            sum pool with divisor_override=1), as in PyTorch.
        fit: "error" | "crop" | "pad", as in MaxPool2d.

    Raises:
        ValueError/TypeError for bad arguments; ShapeError for an input of the wrong rank or size.

    >>> AvgPool2d(2).output_shape((1, 3, 8, 8))
    (1, 3, 4, 4)
    """

    def __init__(self, kernel_size, stride=None, padding=0, *, count_include_pad=True, divisor_override=None,
                 fit="error", algorithm="auto"):
        owner = type(self).__name__
        self._set_window(kernel_size, stride, padding, 1, fit, algorithm)
        if not isinstance(count_include_pad, bool):
            raise TypeError(f"{owner}: Received count_include_pad={count_include_pad!r}; expected a bool.")
        self.count_include_pad = count_include_pad
        if divisor_override is not None:
            divisor_override = positive_int(divisor_override, "divisor_override", owner)
        self.divisor_override = divisor_override

    def forward(self, x):
        self.check_input(x, self.ndim + 2, layout=self.layout)
        y, cache = P.avg_poolnd(x, self.kernel_size, self.stride, self.padding, self.count_include_pad,
                                self.fit, name=repr(self), algorithm=self.algorithm)
        rescale = None
        if self.divisor_override is not None:
            # the kernel divided each window's sum by its divisor; divide by the override instead
            data = _kernel_data(cache, lambda: R.avg_poolnd(x[:1, :1], self.kernel_size, self.stride,
                                                            self.padding, self.count_include_pad, self.fit))
            rescale = (data["divisor"] / self.divisor_override).astype(y.dtype, copy=False)
            y = y * rescale
        self._cache = (cache, rescale)
        return y

    def backward(self, dy):
        cache, rescale = self._pop_cache()
        return P.avg_poolnd_backward(dy if rescale is None else dy * rescale, cache)


class AvgPool1d(AvgPool2d):
    """Mean over each window of F positions of a sequence, with stride S.

    Shape: (N, C, W) -> (N, C, W_out), ``W_out = (W - F + 2P) / S + 1``.

    Args:
        kernel_size (F), stride (S)=None (= kernel_size), padding (P)=0 (at most kernel_size // 2),
        count_include_pad=True, divisor_override=None, fit="error": as in AvgPool2d.

    Raises:
        ValueError/TypeError for bad arguments; ShapeError: x not 3-D (or 2-D, one example), or a size that
        does not fit.

    >>> AvgPool1d(3, stride=2, padding=1).output_shape((1, 2, 9))
    (1, 2, 5)
    """

    ndim, layout = 1, "(N, C, W)"


class AvgPool3d(AvgPool2d):
    """Mean over each F x F x F window of a volume, with stride S.

    Shape: (N, C, D, H, W) -> (N, C, D_out, H_out, W_out), per axis ``(S - F + 2P) / stride + 1``.

    Args:
        kernel_size (F), stride (S)=None (= kernel_size), padding (P)=0 (at most kernel_size // 2),
        count_include_pad=True, divisor_override=None, fit="error": as in AvgPool2d.

    Raises:
        ValueError/TypeError for bad arguments; ShapeError: x not 5-D (or 4-D, one example), or a size that
        does not fit.

    >>> AvgPool3d(2).output_shape((1, 2, 4, 4, 6))
    (1, 2, 2, 2, 3)
    """

    ndim, layout = 3, "(N, C, D, H, W)"


class LPPool2d(_Pool):
    """Power-average pooling: the L_p norm ``(sum |x|^p)^(1/p)`` of each F x F window; p=2 is L2 pooling.

    p=1 sums absolute values; p -> infinity approaches max pooling (use MaxPool2d for that).

    Shape: (N, C, H, W) -> (N, C, H_out, W_out), ``W_out = (W - F) / S + 1`` (no padding); the same for H.

    Args:
        norm_type (p): a finite real number >= 1.
        kernel_size (F), stride (S)=None (= kernel_size).
        fit: "error" | "crop" | "pad", as in MaxPool2d; "pad" zero-pads, adding nothing to a norm.

    Raises:
        ValueError/TypeError for bad arguments; ShapeError for an input of the wrong rank or size.

    >>> LPPool2d(2, 3, stride=2, fit="crop").output_shape((1, 8, 10, 10))
    (1, 8, 4, 4)
    """

    takes_padding = False

    def __init__(self, norm_type, kernel_size, stride=None, *, fit="error", algorithm="auto"):
        if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real):
            raise TypeError(f"LPPool2d: Received norm_type={norm_type!r}; expected a real number >= 1.")
        if not (math.isfinite(norm_type) and norm_type >= 1):
            hint = " For p = infinity use MaxPool2d." if norm_type == math.inf else ""
            raise ValueError(f"LPPool2d: Received norm_type={norm_type!r}; expected a finite number >= 1 "
                             f"(below 1 the window's 'norm' is not a norm and its gradient at 0 is "
                             f"infinite).{hint}")
        self.norm_type = float(norm_type)
        self._set_window(kernel_size, stride, 0, 1, fit, algorithm)

    def forward(self, x):
        self.check_input(x, self.ndim + 2, layout=self.layout)
        y, self._cache = P.lp_poolnd(x, self.norm_type, self.kernel_size, self.stride, self.fit,
                                     name=repr(self), algorithm=self.algorithm)
        return y

    def backward(self, dy):
        return P.lp_poolnd_backward(dy, self._pop_cache())


class LPPool1d(LPPool2d):
    """Power-average pooling of a sequence: the L_p norm of each window of F positions.

    Shape: (N, C, W) -> (N, C, W_out), ``W_out = (W - F) / S + 1`` (no padding).

    Args:
        norm_type (p): a finite real number >= 1. kernel_size (F), stride (S)=None (= kernel_size).
        fit: "error" | "crop" | "pad", as in LPPool2d.

    Raises:
        ValueError/TypeError for bad arguments; ShapeError: x not 3-D (or 2-D), or a size that does not fit.

    >>> LPPool1d(2, 3, stride=2, fit="crop").output_shape((1, 4, 10))
    (1, 4, 4)
    """

    ndim, layout = 1, "(N, C, W)"


class LPPool3d(LPPool2d):
    """Power-average pooling of a volume: the L_p norm of each F x F x F window.

    Shape: (N, C, D, H, W) -> (N, C, D_out, H_out, W_out), per axis ``(S - F) / stride + 1``.

    Args:
        norm_type (p): a finite real number >= 1. kernel_size (F), stride (S)=None (= kernel_size).
        fit: "error" | "crop" | "pad", as in LPPool2d.

    Raises:
        ValueError/TypeError for bad arguments; ShapeError: x not 5-D (or 4-D), or a size that does not fit.

    >>> LPPool3d(1, 2).output_shape((1, 2, 4, 4, 4))
    (1, 2, 2, 2, 2)
    """

    ndim, layout = 3, "(N, C, D, H, W)"


class MaxUnpool2d(Layer):
    """The inverse of max pooling's selection: each value goes back where its window's max came from.

    ``forward(x, indices, output_size=None)`` takes the pooled values and the ``indices`` that
    ``MaxPool2d(..., return_indices=True)`` returned with them, and writes each value at its index in a
    volume of zeros: the "switches" with which Zeiler and Fergus's deconvnet maps a feature back towards the
    pixels. Backward returns the gradient of x (the indices have none).

    Shape:
        x, indices (N, C, H, W) -> (N, C, H_out, W_out) with ``H_out = (H - 1) * S - 2P + F`` (PyTorch's
        rule), or ``output_size`` (spatial sizes, or a whole shape) when the pool rounded: any size that a
        pool with these hyperparameters maps to H, within S of the rule's.

    Args:
        kernel_size (F), stride (S)=None (= kernel_size), padding (P)=0: the pool's, ints or per-axis tuples.

    Raises:
        ValueError/TypeError: a bad kernel_size, stride or padding.
        ShapeError: x not 4-D (or 3-D, one example); indices of another shape or outside the output; an
            output_size that this pool cannot have produced.
        RuntimeError: backward before forward.

    >>> pool, unpool = MaxPool2d(2, return_indices=True), MaxUnpool2d(2)
    >>> y, indices = pool(np.array([[[[1.0, 2], [4, 3]]]]))
    >>> unpool(y, indices).tolist()
    [[[[0.0, 0.0], [4.0, 0.0]]]]
    """

    ndim, layout = 2, "(N, C, H, W)"

    @property
    def batched_ndim(self):
        return self.ndim + 2

    def __init__(self, kernel_size, stride=None, padding=0):
        owner, nd = type(self).__name__, self.ndim
        try:
            self.kernel_size = as_tuple(kernel_size, nd, "kernel_size")
            self.stride = self.kernel_size if stride is None else as_tuple(stride, nd, "stride")
            self.padding = as_tuple(padding, nd, "padding", minimum=0)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{owner}: {e}") from None

    def __call__(self, x, indices, output_size=None):
        return self.forward(x, indices, output_size)

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != self.ndim + 2:
            raise ShapeError(f"{self!r}: expected a {self.ndim + 2}-D input {self.layout}, received shape "
                             f"{shape}.")
        return (*shape[:2], *U.unpool_output_size(shape[2:], self.kernel_size, self.stride, self.padding,
                                                  name=repr(self)))

    def forward(self, x, indices, output_size=None):
        self.check_input(x, self.ndim + 2, layout=self.layout)
        indices = np.asarray(indices)
        if indices.ndim == x.ndim - 1:  # one unbatched example: x got its batch axis, indices get theirs
            indices = indices[None]
        spatial = U.unpool_output_size(x.shape[2:], self.kernel_size, self.stride, self.padding, output_size,
                                       name=repr(self))
        y, self._cache = U.max_unpool(x, indices, spatial, name=repr(self))
        return y

    def backward(self, dy):
        return U.max_unpool_backward(dy, self._pop_cache())

    def receptive_window(self, spatial):
        """For the analysis tools: every output comes from one input, outputs 1/S input positions apart."""
        return (1,) * self.ndim, tuple(Fraction(1, s) for s in self.stride), (0,) * self.ndim


class MaxUnpool1d(MaxUnpool2d):
    """The inverse of MaxPool1d's selection: (N, C, W) values and indices -> (N, C, W_out), zeros elsewhere.

    Shape: ``W_out = (W - 1) * S - 2P + F`` or ``output_size``; see MaxUnpool2d.

    Args:
        kernel_size (F), stride (S)=None (= kernel_size), padding (P)=0: the pool's.

    Raises:
        As MaxUnpool2d, for 3-D (or 2-D) inputs.

    >>> MaxUnpool1d(2).output_shape((1, 3, 5))
    (1, 3, 10)
    """

    ndim, layout = 1, "(N, C, W)"


class MaxUnpool3d(MaxUnpool2d):
    """The inverse of MaxPool3d's selection: (N, C, D, H, W) values and indices -> the unpooled volume.

    Shape: per axis ``(S - 1) * stride - 2P + F`` or ``output_size``; see MaxUnpool2d.

    Args:
        kernel_size (F), stride (S)=None (= kernel_size), padding (P)=0: the pool's.

    Raises:
        As MaxUnpool2d, for 5-D (or 4-D) inputs.

    >>> MaxUnpool3d(2).output_shape((1, 1, 2, 3, 4))
    (1, 1, 4, 6, 8)
    """

    ndim, layout = 3, "(N, C, D, H, W)"


class _GlobalPool(Layer):
    """One window as large as the input: (N, C, H, W) -> (N, C, 1, 1), whatever H and W are."""

    batched_ndim = 4  # one example (C, H, W) runs as a batch of one (see Layer)
    algorithm = "auto"

    def __init__(self, *, algorithm="auto"):
        self.algorithm = check_algorithm(algorithm, ALGORITHMS, name=type(self).__name__)

    def output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ShapeError(f"{self!r}: expected a 4-D input (N, C, H, W), "
                             f"received shape {tuple(input_shape)}.")
        return (*input_shape[:2], 1, 1)

    def forward(self, x):
        self.check_input(x, 4, layout="(N, C, H, W)")
        y, self._cache = self._kernel(x, algorithm=self.algorithm)
        return y

    def backward(self, dy):
        return self._kernel_backward(dy, self._pop_cache())


class GlobalAvgPool2d(_GlobalPool):
    """Mean of each channel over all positions (the network-in-network / ResNet head).

    Shape: (N, C, H, W) -> (N, C, 1, 1), ``y[n, c] = sum_{h, w} x[n, c, h, w] / (H * W)``.
    PyTorch: ``AdaptiveAvgPool2d(1)``.

    Args:
        None: the window is the whole input.

    Raises:
        TypeError: x is not a floating-point NumPy array. ShapeError: x is not 4-D.
        RuntimeError: backward before forward.

    >>> GlobalAvgPool2d().output_shape((2, 512, 7, 7))
    (2, 512, 1, 1)
    """

    _kernel, _kernel_backward = staticmethod(P.global_avg_pool), staticmethod(P.global_avg_pool_backward)


class GlobalMaxPool2d(_GlobalPool):
    """Max of each channel over all positions; backward routes the gradient to the argmax.

    Shape: (N, C, H, W) -> (N, C, 1, 1), ``y[n, c] = max_{h, w} x[n, c, h, w]``; ties go to the first
    maximum in row-major order. PyTorch: ``AdaptiveMaxPool2d(1)``.

    Args:
        None: the window is the whole input.

    Raises:
        TypeError: x is not a floating-point NumPy array. ShapeError: x is not 4-D.
        RuntimeError: backward before forward.

    >>> GlobalMaxPool2d().output_shape((2, 512, 7, 7))
    (2, 512, 1, 1)
    """

    _kernel, _kernel_backward = staticmethod(P.global_max_pool), staticmethod(P.global_max_pool_backward)


class Blur2d(_Pool):
    """A fixed binomial low-pass filter applied to every channel (depthwise), then subsampled with stride S.

    The filter is the outer product of a row of Pascal's triangle ([1, 2, 1] / 4 for filter_size=3), not a
    parameter: it never trains. Zero padding of (filter_size - 1) // 2 before and filter_size // 2 after
    keeps ``W_out = (W - 1) / S + 1``.

    Shape: (N, C, H, W) -> (N, C, H_out, W_out), ``W_out = (W - F + 2P) / S + 1`` with F = filter_size
    and 2P = F - 1, i.e. ``W_out = (W - 1) / S + 1``; the same for H.

    Args:
        channels (C): the number of input channels (checked in forward).
        filter_size (F)=3, stride (S)=2; fit="error" | "crop" | "pad", as in MaxPool2d.

    Raises:
        ValueError: channels or filter_size is not a positive int; a stride entry < 1; an unknown fit.
        TypeError: a non-int stride entry; x not a floating-point ndarray.
        ShapeError: x not 4-D or without C channels; with fit="error", (W - 1) / S not an integer
            (e.g. an even W at S=2).
        RuntimeError: backward before forward.

    >>> Blur2d(16).output_shape((1, 16, 31, 31))
    (1, 16, 16, 16)
    """

    takes_padding = False  # the filter size sets the padding

    def __init__(self, channels, filter_size=3, stride=2, *, fit="error", algorithm="auto"):
        self.channels = positive_int(channels, "channels", "Blur2d")
        self.filter_size = positive_int(filter_size, "filter_size", "Blur2d")
        f = self.filter_size
        self._set_window(f, stride, (((f - 1) // 2, f // 2),) * self.ndim, 1, fit, algorithm)
        self.filter = P.binomial_filter(f, self.ndim)  # not a Parameter: fixed, like a convolution's padding

    def output_shape(self, input_shape):
        self._check_shape(input_shape, self.channels)
        return super().output_shape(input_shape)

    def forward(self, x):
        self.check_input(x, self.ndim + 2, self.channels, self.layout)
        y, self._cache = P.blurnd(x, self.filter, self.stride, self.padding, self.fit, name=repr(self),
                                  algorithm=self.algorithm)
        return y

    def backward(self, dy):
        return P.blurnd_backward(dy, self._pop_cache())


class BlurPool2d(Sequential):
    """Anti-aliased downsampling (Zhang 2019, "Making convolutional networks shift-invariant again").

    The notes observe that max pooling with a stride breaks translation invariance: a one-pixel shift of
    the input can change the output a lot. BlurPool evaluates the max densely (stride 1) and only then
    downsamples, through a low-pass binomial blur with the stride, so that the subsampling does not alias.

    It is a Sequential of two windowed children, ``pool`` (MaxPool2d(kernel_size, stride=1)) and ``blur``
    (Blur2d(channels, filter_size, stride)), so analysis sees both windows.

    Shape: (N, C, H, W) -> (N, C, H_out, W_out), ``W_out = (W - kernel_size) / stride + 1`` (as a
    MaxPool2d(kernel_size, stride) would give).

    Args:
        channels (C), kernel_size=2 (of the max), filter_size=3 (of the blur), stride=2.
        fit="error" | "crop" | "pad", applied to the strided blur.

    Raises:
        ValueError/TypeError: bad arguments, as in MaxPool2d (kernel_size) and Blur2d (the rest).
        ShapeError: x not 4-D or without C channels; kernel_size > H or W; with fit="error",
            (W - kernel_size) / stride not an integer.
        RuntimeError: backward before forward.

    >>> BlurPool2d(64).output_shape((1, 64, 32, 32))
    (1, 64, 16, 16)
    """

    def __init__(self, channels, kernel_size=2, filter_size=3, stride=2, *, fit="error"):
        super().__init__(pool=MaxPool2d(kernel_size, stride=1),
                         blur=Blur2d(channels, filter_size, stride, fit=fit))
        self.channels, self.filter_size = self["blur"].channels, self["blur"].filter_size

    def config(self):
        return Layer.config(self)

    @classmethod
    def _from_config(cls, config):
        config = {k: v for k, v in config.items() if k != "name"}  # a Sequential parent adds the child's name
        return cls(**config)
