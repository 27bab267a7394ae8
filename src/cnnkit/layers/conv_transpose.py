"""ConvTranspose1d/2d/3d: a convolution's backward pass used as a layer, for learnable upsampling."""

from __future__ import annotations

from cnnkit.errors import ShapeError
from cnnkit.functional.conv_transpose import conv_transposend, conv_transposend_backward
from cnnkit.geometry import as_tuple, padding_pairs, transpose_geometry
from cnnkit.init import default_parameters
from cnnkit.layers.base import Layer, Parameter
from cnnkit.layers.conv import channel_counts, describe


class ConvTranspose2d(Layer):
    """2-D transposed convolution ("deconvolution"): each input pixel paints a weighted F x F patch.

    It is the backward of a Conv2d with the same hyperparameters turned into a forward: where the
    convolution gathers a window into one output, this scatters one input over a window. With stride S it
    upsamples by S (an FCN/U-Net decoder, a GAN generator).

    Shape:
        (N, C_in, H, W) -> (N, C_out, H_out, W_out) with
        ``W_out = (W - 1) * S - 2P + dilation * (F - 1) + output_padding + 1``; the same for H.
        ``padding`` crops the output, ``output_padding`` adds to its far end (it picks among the S input
        sizes a strided Conv2d maps to the same size).

    Args:
        in_channels (C_in), out_channels (C_out), kernel_size (F): ints or per-axis tuples.
        stride (S)=1, padding (P)=0 (ints, per-axis ints, or (before, after) pairs), output_padding=0
        (smaller than the stride or the dilation), groups=1, bias=True, dilation=1.
        rng: a ``numpy.random.Generator`` for the initial weights (PyTorch's default init).

    The weight is (C_in, C_out/groups, F, F) like PyTorch's, the bias (C_out,).

    Raises:
        ValueError/TypeError for bad hyperparameters; ShapeError for an input of the wrong rank or channel
        count, or so small that the output would be empty.

    >>> ConvTranspose2d(16, 8, 4, stride=2, padding=1).output_shape((1, 16, 14, 14))
    (1, 8, 28, 28)
    """

    transposed = True  # analysis: the window scatters instead of gathering
    ndim, layout = 2, "(N, C, H, W)"

    @property
    def batched_ndim(self):  # (N, C, *S); one example (C, *S) runs as a batch of one (see Layer)
        return self.ndim + 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, *, rng=None):
        owner = type(self).__name__
        self.in_channels, self.out_channels, self.groups = channel_counts(owner, in_channels, out_channels,
                                                                          groups)
        if isinstance(padding, str):
            raise ValueError(f"{owner}: Received padding={padding!r}; a transposed convolution takes an int, "
                             f"per-axis ints or (before, after) pairs (its padding crops the output).")
        nd = self.ndim
        try:
            self.kernel_size = as_tuple(kernel_size, nd, "kernel_size")
            self.stride = as_tuple(stride, nd, "stride")
            self.dilation = as_tuple(dilation, nd, "dilation")
            self.padding = padding_pairs(padding, nd)
            self.output_padding = as_tuple(output_padding, nd, "output_padding", minimum=0)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{owner}: {e}") from None
        for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True):
            if op >= s and op >= d:
                raise ValueError(f"{owner}: Received output_padding={output_padding!r}; it must be smaller "
                                 f"than either the stride ({stride!r}) or the dilation ({dilation!r}), as in "
                                 f"PyTorch.")
        # PyTorch's default: U(-1/sqrt(fan_in), +) with fan_in = C_out/groups * F * F, from weight.shape[1:].
        w, b = default_parameters((in_channels, out_channels // groups, *self.kernel_size),
                                  (out_channels,) if bias else None, rng)
        self.weight = Parameter(w)
        self.bias = Parameter(b) if bias else None

    def extra_repr(self):
        return describe(self, ("kernel_size", "stride"),
                        {"padding": 0, "output_padding": 0, "groups": 1, "bias": True, "dilation": 1})

    def output_shape(self, input_shape):
        if len(input_shape) != self.ndim + 2 or input_shape[1] != self.in_channels:
            raise ShapeError(f"{self!r}: expected input {self.layout} with C={self.in_channels}, "
                             f"received shape {tuple(input_shape)}.")
        out = transpose_geometry(input_shape[2:], self.kernel_size, self.stride, self.padding, self.dilation,
                                 self.output_padding, name=repr(self))
        return (input_shape[0], self.out_channels, *out)

    def forward(self, x):
        self.check_input(x, self.ndim + 2, self.in_channels, self.layout)
        bias = None if self.bias is None else self.bias.data
        y, self._cache = conv_transposend(x, self.weight.data, bias, self.stride, self.padding,
                                          self.output_padding, self.groups, self.dilation, name=repr(self))
        return y

    def backward(self, dy):
        dx, dw, db = conv_transposend_backward(dy, self._pop_cache())
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx


class ConvTranspose1d(ConvTranspose2d):
    """1-D transposed convolution: each input position paints a weighted window of F outputs.

    Shape: (N, C_in, W) -> (N, C_out, W_out), ``W_out = (W - 1) * S - 2P + dilation * (F - 1) +
    output_padding + 1``.

    Args:
        in_channels, out_channels, kernel_size (F), stride (S)=1, padding (P)=0, output_padding=0, groups=1,
        bias=True, dilation=1, rng: as ConvTranspose2d (ints or 1-tuples). The weight is
        (C_in, C_out/groups, F).

    Raises:
        As ConvTranspose2d, for 3-D (or 2-D, one example) inputs.

    >>> ConvTranspose1d(8, 4, 4, stride=2, padding=1).output_shape((1, 8, 10))
    (1, 4, 20)
    """

    ndim, layout = 1, "(N, C, W)"


class ConvTranspose3d(ConvTranspose2d):
    """3-D transposed convolution: each input voxel paints a weighted F x F x F block (volumetric decoders).

    Shape: (N, C_in, D, H, W) -> (N, C_out, D_out, H_out, W_out), per axis
    ``(S - 1) * stride - 2P + dilation * (F - 1) + output_padding + 1``.

    Args:
        in_channels, out_channels, kernel_size (F), stride (S)=1, padding (P)=0, output_padding=0, groups=1,
        bias=True, dilation=1, rng: as ConvTranspose2d (ints or 3-tuples). The weight is
        (C_in, C_out/groups, F, F, F).

    Raises:
        As ConvTranspose2d, for 5-D (or 4-D, one example) inputs.

    >>> ConvTranspose3d(4, 2, 2, stride=2).output_shape((1, 4, 3, 4, 5))
    (1, 2, 6, 8, 10)
    """

    ndim, layout = 3, "(N, C, D, H, W)"
