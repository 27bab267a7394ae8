"""Pooling layers: MaxPool1d/2d, AvgPool2d, LPPool2d, the global pools, and BlurPool2d (anti-aliased).

Pooling shrinks every depth slice of the volume independently (kernels in cnnkit.functional.pool): the
notes' W x H x D volume becomes W_out x H_out x D, with ``W_out = (W - F + 2P) / S + 1`` like a convolution.
The windowed layers store ``kernel_size``, ``stride``, ``dilation`` per axis, ``padding`` as
(before, after) pairs and ``fit``, which is what the analysis tools read.
"""

from __future__ import annotations

import math
import numbers

from cnnkit.errors import ShapeError
from cnnkit.functional import pool as P
from cnnkit.geometry import as_tuple, check_fit, conv_geometry, padding_pairs
from cnnkit.layers.base import Layer, Sequential
from cnnkit.layers.conv import positive_int


class _Pool(Layer):
    """A sliding window over (N, C, *S) that keeps the channel count."""

    ndim, layout = 2, "(N, C, H, W)"

    @property
    def batched_ndim(self):  # (N, C, *S); one example (C, *S) runs as a batch of one (see Layer)
        return self.ndim + 2
    takes_padding = True  # False: no padding argument (LPPool2d, Blur2d)

    def _set_window(self, kernel_size, stride=None, padding=0, dilation=1, fit="error"):
        owner, nd = type(self).__name__, self.ndim
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
        fit: "error" (default) raises when the windows do not tile the input, "crop" rounds down
            (PyTorch's default), "pad" rounds up (PyTorch's ``ceil_mode=True``).

    Raises:
        ValueError/TypeError for bad arguments; ShapeError for an input of the wrong rank or size.
        RuntimeError: backward before forward (in every layer here).

    >>> MaxPool2d(2).output_shape((1, 64, 224, 224)), MaxPool2d(3, 2, fit="pad").output_shape((1, 96, 54, 54))
    ((1, 64, 112, 112), (1, 96, 27, 27))
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, *, fit="error"):
        self._set_window(kernel_size, stride, padding, dilation, fit)

    def forward(self, x):
        self.check_input(x, self.ndim + 2, layout=self.layout)
        y, self._cache = P.max_poolnd(x, self.kernel_size, self.stride, self.padding, self.dilation, self.fit,
                                      name=repr(self))
        return y

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


class AvgPool2d(_Pool):
    """Mean over each F x F window of every depth slice, with stride S.

    Shape: (N, C, H, W) -> (N, C, H_out, W_out), ``W_out = (W - F + 2P) / S + 1``; the same for H.

    Args:
        kernel_size (F), stride (S)=None (= kernel_size), padding (P)=0 (at most kernel_size // 2).
        count_include_pad: True (PyTorch's default) divides by the window size including the zero padding;
            False only counts the input values under the window. The extra zeros of fit="pad" never count.
        fit: "error" | "crop" | "pad", as in MaxPool2d.

    Raises:
        ValueError/TypeError for bad arguments; ShapeError for an input of the wrong rank or size.

    >>> AvgPool2d(2).output_shape((1, 3, 8, 8))
    (1, 3, 4, 4)
    """

    def __init__(self, kernel_size, stride=None, padding=0, *, count_include_pad=True, fit="error"):
        self._set_window(kernel_size, stride, padding, 1, fit)
        if not isinstance(count_include_pad, bool):
            raise TypeError(f"AvgPool2d: Received count_include_pad={count_include_pad!r}; expected a bool.")
        self.count_include_pad = count_include_pad

    def forward(self, x):
        self.check_input(x, self.ndim + 2, layout=self.layout)
        y, self._cache = P.avg_poolnd(x, self.kernel_size, self.stride, self.padding, self.count_include_pad,
                                      self.fit, name=repr(self))
        return y

    def backward(self, dy):
        return P.avg_poolnd_backward(dy, self._pop_cache())


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

    def __init__(self, norm_type, kernel_size, stride=None, *, fit="error"):
        if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real):
            raise TypeError(f"LPPool2d: Received norm_type={norm_type!r}; expected a real number >= 1.")
        if not (math.isfinite(norm_type) and norm_type >= 1):
            hint = " For p = infinity use MaxPool2d." if norm_type == math.inf else ""
            raise ValueError(f"LPPool2d: Received norm_type={norm_type!r}; expected a finite number >= 1 "
                             f"(below 1 the window's 'norm' is not a norm and its gradient at 0 is "
                             f"infinite).{hint}")
        self.norm_type = float(norm_type)
        self._set_window(kernel_size, stride, 0, 1, fit)

    def forward(self, x):
        self.check_input(x, self.ndim + 2, layout=self.layout)
        y, self._cache = P.lp_poolnd(x, self.norm_type, self.kernel_size, self.stride, self.fit,
                                     name=repr(self))
        return y

    def backward(self, dy):
        return P.lp_poolnd_backward(dy, self._pop_cache())


class _GlobalPool(Layer):
    """One window as large as the input: (N, C, H, W) -> (N, C, 1, 1), whatever H and W are."""

    batched_ndim = 4  # one example (C, H, W) runs as a batch of one (see Layer)

    def output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ShapeError(f"{self!r}: expected a 4-D input (N, C, H, W), "
                             f"received shape {tuple(input_shape)}.")
        return (*input_shape[:2], 1, 1)

    def forward(self, x):
        self.check_input(x, 4, layout="(N, C, H, W)")
        y, self._cache = self._kernel(x)
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

    def __init__(self, channels, filter_size=3, stride=2, *, fit="error"):
        self.channels = positive_int(channels, "channels", "Blur2d")
        self.filter_size = positive_int(filter_size, "filter_size", "Blur2d")
        f = self.filter_size
        self._set_window(f, stride, (((f - 1) // 2, f // 2),) * self.ndim, 1, fit)
        self.filter = P.binomial_filter(f, self.ndim)  # not a Parameter: fixed, like a convolution's padding

    def output_shape(self, input_shape):
        self._check_shape(input_shape, self.channels)
        return super().output_shape(input_shape)

    def forward(self, x):
        self.check_input(x, self.ndim + 2, self.channels, self.layout)
        y, self._cache = P.blurnd(x, self.filter, self.stride, self.padding, self.fit, name=repr(self))
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
