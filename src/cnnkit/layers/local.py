"""LocallyConnected2d: a Conv2d without parameter sharing (kernels in cnnkit.functional.local)."""

from __future__ import annotations

import math

from cnnkit.errors import ShapeError
from cnnkit.functional.local import locally_connected, locally_connected_backward
from cnnkit.geometry import as_tuple, check_fit, conv_geometry, padding_pairs
from cnnkit.init import default_parameters
from cnnkit.layers.base import Layer, Parameter
from cnnkit.layers.conv import channel_counts, describe


class LocallyConnected2d(Layer):
    """Like Conv2d, but every output neuron has its own F x F x C filter and bias (no parameter sharing).

    The notes relax parameter sharing when the input has a centred structure (faces): features useful at
    the top of the image may differ from those at the bottom. The price is parameters: one filter per
    output position, so the layer needs the input's spatial size at construction. The AlexNet first layer
    without sharing would have 55*55*96 * (11*11*3) + 55*55*96 = 105,705,600 parameters instead of 34,944.

    Shape:
        (N, C, H, W) with (H, W) = input_size -> (N, K, H_out, W_out), ``W_out = (W - F + 2P) / S + 1``;
        the same for H. weight (K, H_out, W_out, C, F, F): ``weight[k, i, j]`` is the filter of output
        neuron (k, i, j); bias (K, H_out, W_out).

    Args:
        in_channels (C), out_channels (K), kernel_size (F), stride (S)=1, padding (P)=0 (ints, per-axis
        tuples, (before, after) pairs, or "valid"/"same" at stride 1), bias=True.
        input_size: (H, W) of the inputs this layer will see (keyword only, required).
        fit: "error" (default) | "crop" | "pad", as in Conv2d.
        rng: a ``numpy.random.Generator`` for the initial weights (Conv2d's default, U(+-1/sqrt(C*F*F))).

    Raises:
        ValueError/TypeError for bad arguments; ShapeError at construction when the windows do not fit
        ``input_size``, and in forward for an input of another rank, channel count or spatial size.

    >>> layer = LocallyConnected2d(3, 8, 3, stride=2, input_size=(9, 9))
    >>> layer.output_shape((4, 3, 9, 9)), layer.weight.shape, layer.bias.shape
    ((4, 8, 4, 4), (8, 4, 4, 3, 3, 3), (8, 4, 4))
    """

    layout = "(N, C, H, W)"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, *, input_size,
                 fit="error", rng=None):
        owner = type(self).__name__
        self.in_channels, self.out_channels, _ = channel_counts(owner, in_channels, out_channels)
        try:
            self.input_size = as_tuple(input_size, 2, "input_size")
            self.kernel_size = as_tuple(kernel_size, 2, "kernel_size")
            self.stride = as_tuple(stride, 2, "stride")
            self.dilation = (1, 1)
            if padding == "same" and self.stride != (1, 1):
                raise ValueError(f"padding='same' is only defined for stride=1, received stride={stride}.")
            self.padding = padding_pairs(padding, 2, self.kernel_size, self.dilation)
            self.fit = check_fit(fit)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{owner}: {e}") from None
        self.groups = 1
        out = self._geometry(self.input_size)
        # PyTorch's Conv2d default init, fan_in = C*F*F: ask for it as K*H_out*W_out stacked conv filters.
        neurons = out_channels * math.prod(out)
        w, b = default_parameters((neurons, in_channels, *self.kernel_size), (neurons,) if bias else None,
                                  rng)
        self.weight = Parameter(w.reshape(out_channels, *out, in_channels, *self.kernel_size))
        self.bias = Parameter(b.reshape(out_channels, *out)) if bias else None

    def _geometry(self, spatial):
        out, _ = conv_geometry(tuple(spatial), self.kernel_size, self.stride, self.padding, self.dilation,
                               self.fit, name=repr(self))
        return out

    def _check_shape(self, shape):
        if len(shape) != 4 or shape[1] != self.in_channels or tuple(shape[2:]) != self.input_size:
            raise ShapeError(f"{self!r}: expected input (N, C={self.in_channels}, H, W) with (H, W) = "
                             f"input_size {self.input_size}, received shape {tuple(shape)}; a locally "
                             f"connected layer has one filter per output position, so it only takes the "
                             f"input size it was built for.")

    def extra_repr(self):
        return describe(self, ("kernel_size", "stride", "padding", "input_size"),
                        {"bias": True, "fit": "error"})

    def output_shape(self, input_shape):
        self._check_shape(input_shape)
        return (input_shape[0], self.out_channels, *self._geometry(input_shape[2:]))

    def forward(self, x):
        self.check_input(x, 4, self.in_channels, self.layout)
        self._check_shape(x.shape)
        bias = None if self.bias is None else self.bias.data
        y, self._cache = locally_connected(x, self.weight.data, bias, self.stride, self.padding, self.fit,
                                           name=repr(self))
        return y

    def backward(self, dy):
        dx, dw, db = locally_connected_backward(dy, self._pop_cache())
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx
