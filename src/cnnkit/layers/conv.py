"""Convolution layers: Conv1d, Conv2d, Conv3d, one N-d implementation (kernels in cnnkit.functional.conv)."""

from __future__ import annotations

import numbers

from cnnkit.errors import ShapeError
from cnnkit.fast.dispatch import check_algorithm, choose_algorithm
from cnnkit.functional.conv import ALGORITHMS, convnd, convnd_backward
from cnnkit.functional.padding import padnd, padnd_backward
from cnnkit.geometry import as_tuple, check_fit, conv_geometry, padding_pairs
from cnnkit.init import default_parameters
from cnnkit.layers.base import Layer, Parameter


def positive_int(value, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{owner}: Received {name}={value!r}; expected a positive int.")
    return int(value)


def channel_counts(owner: str, in_channels, out_channels, groups=1) -> tuple[int, int, int]:
    """Validated (in_channels, out_channels, groups) of a convolution: both counts divisible by groups."""
    counts = tuple(positive_int(v, n, owner) for v, n in
                   ((in_channels, "in_channels"), (out_channels, "out_channels"), (groups, "groups")))
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{owner}: Received groups={groups}; in_channels={in_channels} and "
                         f"out_channels={out_channels} must both be divisible by groups.")
    return counts


# padding_mode (PyTorch's names) -> the mode of cnnkit.functional.padding; "zeros" is the convolution's own
PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def describe(layer, always: tuple[str, ...], defaults: dict) -> str:
    """``"3->16, kernel_size=3, stride=2, padding=1"``: the arguments in ``always``, then those that differ
    from ``defaults``, as the user wrote them."""
    a = layer._init_args
    shown = [*always, *(k for k, default in defaults.items() if a[k] != default)]
    return f"{layer.in_channels}->{layer.out_channels}, " + ", ".join(f"{k}={a[k]!r}" for k in shown)


class _ConvNd(Layer):
    ndim = 2
    layout = "(N, C, H, W)"

    @property
    def batched_ndim(self):  # (N, C, *S); one example (C, *S) runs as a batch of one (see Layer)
        return self.ndim + 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", *, fit="error", algorithm="auto", rng=None):
        owner = type(self).__name__
        check_algorithm(algorithm, ALGORITHMS, name=owner)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{owner}: Received padding_mode={padding_mode!r}; expected one of "
                             f"{', '.join(map(repr, PADDING_MODES))}.")
        self.padding_mode = padding_mode
        self.algorithm = algorithm
        self.in_channels, self.out_channels, self.groups = channel_counts(owner, in_channels, out_channels,
                                                                          groups)
        nd = self.ndim
        self.kernel_size = as_tuple(kernel_size, nd, "kernel_size")
        self.stride = as_tuple(stride, nd, "stride")
        self.dilation = as_tuple(dilation, nd, "dilation")
        if padding == "same" and any(s != 1 for s in self.stride):
            raise ValueError(f"{owner}: padding='same' is only defined for stride=1, "
                             f"received stride={stride}.")
        self.padding = padding_pairs(padding, nd, self.kernel_size, self.dilation)
        self.fit = check_fit(fit)
        # a forced kernel that cannot compute this layer is refused here, not in the first forward
        choose_algorithm((out_channels, in_channels // self.groups, *self.kernel_size), self.stride,
                         self.dilation, self.groups, algorithm, name=owner)
        w, b = default_parameters((out_channels, in_channels // groups, *self.kernel_size),
                                  (out_channels,) if bias else None, rng)
        self.weight = Parameter(w)
        self.bias = Parameter(b) if bias else None

    def extra_repr(self):
        return describe(self, ("kernel_size", "stride", "padding"),
                        {"dilation": 1, "groups": 1, "bias": True, "padding_mode": "zeros", "fit": "error",
                         "algorithm": "auto"})

    def output_shape(self, input_shape):
        self._check_shape(input_shape)  # before unpacking: a 1-axis shape gets a ShapeError, not Python's
        N, C, *spatial = input_shape
        out, _ = conv_geometry(spatial, self.kernel_size, self.stride, self.padding, self.dilation, self.fit,
                               name=repr(self))
        return (N, self.out_channels, *out)

    def _check_shape(self, shape):
        if len(shape) != self.ndim + 2 or shape[1] != self.in_channels:
            raise ShapeError(f"{self!r}: expected input {self.layout} with C={self.in_channels}, "
                             f"received shape {tuple(shape)}.")

    def forward(self, x):
        self.check_input(x, self.ndim + 2, self.in_channels, self.layout)
        bias = None if self.bias is None else self.bias.data
        padding, padded = self.padding, None
        if self.padding_mode != "zeros":
            # Pad with the mode first (the same padding, so the same sizes), then convolve without padding.
            self.output_shape(x.shape)  # the output-size error, if any, in terms of the user's padding
            x, padded = padnd(x, self.padding, PADDING_MODES[self.padding_mode], name=repr(self))
            padding = 0
        y, cache = convnd(x, self.weight.data, bias, self.stride, padding, self.dilation, self.groups,
                          self.fit, name=repr(self), algorithm=self.algorithm)
        self._cache = (cache, padded)
        return y

    def backward(self, dy):
        cache, padded = self._pop_cache()
        dx, dw, db = convnd_backward(dy, cache)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx if padded is None else padnd_backward(dx, padded)  # each padded copy adds to its source

    def backward_params(self, dy):
        """As backward, but without dx (the first layer of a network): col2im is skipped."""
        cache, _ = self._pop_cache()
        _, dw, db = convnd_backward(dy, cache, input_grad=False)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, W): the notes' 1-D filters, sequences, signals.

    Shape: (N, C, W) -> (N, K, W_out), ``W_out = (W - F_eff + 2P) / S + 1``, ``F_eff = dilation*(F-1)+1``.
    """

    ndim, layout = 1, "(N, C, W)"


class Conv2d(_ConvNd):
    """2-D convolution: K filters of size F x F x C slide over the input volume with stride S.

    Shape:
        (N, C, H, W) -> (N, K, H_out, W_out) with ``W_out = (W - F + 2P) / S + 1`` (F is the effective size
        ``dilation * (kernel_size - 1) + 1``), and the same for H. In the notes' words the input volume of
        one image is W x H x D with depth D = C; here it is ``x[n]`` with shape (C, H, W).

    Args:
        in_channels (C), out_channels (K), kernel_size (F): ints or per-axis tuples.
        stride (S)=1, padding (P)=0 (an int, per-axis ints, (before, after) pairs, "same" or "valid"),
        dilation=1, groups=1 (``groups=in_channels`` is a depthwise convolution), bias=True.
        padding_mode: what the padding holds, as in PyTorch: "zeros" (default), "reflect" (the mirror image,
            edge not repeated), "replicate" (the edge value) or "circular" (the other side); the extra
            far-side positions of fit="pad" are zeros whatever the mode.
        fit: "error" (default) raises when the windows do not tile the input, "crop" rounds down like
            PyTorch, "pad" rounds up by zero-padding the far side.
        algorithm: the kernel: "auto" (default, chosen per shape by cnnkit.fast.dispatch), "reference"
            (the textbook kernel), "im2col", "winograd", "winograd2" or "depthwise"; a kernel that cannot
            compute this layer raises ValueError here.
        rng: a ``numpy.random.Generator`` for the initial weights (PyTorch's default init).

    Raises:
        ValueError/TypeError for bad hyperparameters; ShapeError for an input that does not fit.

    >>> Conv2d(3, 96, kernel_size=11, stride=4).output_shape((1, 3, 227, 227))
    (1, 96, 55, 55)
    """

    ndim, layout = 2, "(N, C, H, W)"


class Conv3d(_ConvNd):
    """3-D convolution over (N, C, D, H, W), e.g. video or volumetric scans. Shape as Conv2d, per axis."""

    ndim, layout = 3, "(N, C, D, H, W)"
