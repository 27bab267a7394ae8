"""Normalization within each example: GroupNorm, InstanceNorm1d/2d/3d and LayerNorm (kernels in
:mod:`cnnkit.functional.example_norm`).

Unlike batch norm, these layers normalize every example with its own statistics, so they behave the same
for a batch of 1 and of 256, in training and evaluation (InstanceNorm with ``track_running_stats`` is the
exception PyTorch keeps: it evaluates with running averages, like batch norm).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.fast.dispatch import enable_grad
from cnnkit.functional.example_norm import (
    group_norm,
    group_norm_backward,
    instance_norm,
    instance_norm_backward,
    layer_norm,
    layer_norm_backward,
)
from cnnkit.layers.activation import check_float_array, finite_real
from cnnkit.layers.base import Layer, Parameter
from cnnkit.layers.conv import positive_int


def _positive_eps(owner, eps):
    eps = finite_real(eps, "eps", owner)
    if eps <= 0:
        raise ValueError(f"{owner}: Received eps={eps!r}; expected a small positive number such as 1e-5.")
    return eps


def _accumulate(layer, dweight, dbias):
    if layer.weight is not None:
        layer.weight.grad += dweight
    if layer.bias is not None:
        layer.bias.grad += dbias


class GroupNorm(Layer):
    """Normalize each example's channels in groups (Wu & He 2018), then scale and shift per channel.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, with one mean and (biased) variance per example
    and group of ``num_channels / num_groups`` channels, over those channels and all positions. One group
    is layer norm over (C, *S); ``num_groups = num_channels`` is instance norm. ``torch.nn.GroupNorm``.

    Shape: (N, C, *S) -> the same shape, C = num_channels.

    Args:
        num_groups: groups to split the channels into (divides num_channels). num_channels (C).
        eps: added to the variance (default 1e-5). affine: learn weight and bias, (C,) each (default True).

    Raises:
        ValueError/TypeError: non-positive counts, num_channels not divisible by num_groups, eps not a
        positive number. ShapeError: an input that is not (N, C, *). TypeError: x not a floating-point array.

    >>> GroupNorm(8, 64).output_shape((2, 64, 56, 56))
    (2, 64, 56, 56)
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True):
        self.num_groups = positive_int(num_groups, "num_groups", "GroupNorm")
        self.num_channels = positive_int(num_channels, "num_channels", "GroupNorm")
        if self.num_channels % self.num_groups:
            raise ValueError(f"GroupNorm: Received num_groups={num_groups!r}, num_channels={num_channels!r}; "
                             f"num_channels must be divisible by num_groups.")
        self.eps, self.affine = _positive_eps("GroupNorm", eps), bool(affine)
        self.weight = Parameter(np.ones(self.num_channels, np.float32)) if affine else None
        self.bias = Parameter(np.zeros(self.num_channels, np.float32)) if affine else None

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}" + ("" if self.affine else ", affine=False")

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) < 2 or shape[1] != self.num_channels:
            raise ShapeError(f"{self!r}: expected an input (N, {self.num_channels}, *S), received shape "
                             f"{shape}.")
        return shape

    def forward(self, x):
        check_float_array(self, x)
        self.output_shape(x.shape)
        weight = None if self.weight is None else self.weight.data
        bias = None if self.bias is None else self.bias.data
        y, self._cache = group_norm(x, self.num_groups, weight, bias, self.eps)
        return y

    def backward(self, dy):
        dx, dweight, dbias = group_norm_backward(dy, self._pop_cache())
        _accumulate(self, dweight, dbias)
        return dx


class _InstanceNorm(Layer):
    """InstanceNorm1d/2d/3d: the shared constructor, modes and running statistics."""

    spatial: int = 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False):
        owner = type(self).__name__
        self.num_features = positive_int(num_features, "num_features", owner)
        self.eps = _positive_eps(owner, eps)
        if momentum is not None:
            momentum = finite_real(momentum, "momentum", owner)
            if not 0 <= momentum <= 1:
                raise ValueError(f"{owner}: Received momentum={momentum!r}; expected a number in [0, 1] "
                                 f"(or None).")
        self.momentum, self.affine = momentum, bool(affine)
        self.track_running_stats = bool(track_running_stats)
        # The running averages are statistics of whole batches: cut into slices, the layer would average
        # only the first slice's. The output itself never mixes examples.
        self.mixes_examples = self.track_running_stats
        C = self.num_features
        self.weight = Parameter(np.ones(C, np.float32)) if affine else None
        self.bias = Parameter(np.zeros(C, np.float32)) if affine else None
        if self.track_running_stats:
            self.buffer_names = ("running_mean", "running_var", "num_batches_tracked")
            self.running_mean = np.zeros(C, np.float32)
            self.running_var = np.ones(C, np.float32)
            self.num_batches_tracked = np.array(0, dtype=np.int64)
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def extra_repr(self):
        text = f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
        if self.affine:
            text += ", affine=True"
        if self.track_running_stats:
            text += ", track_running_stats=True"
        return text

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != self.spatial + 2 or shape[1] != self.num_features:
            axes = ("L", "H, W", "D, H, W")[self.spatial - 1]
            raise ShapeError(f"{self!r}: expected a {self.spatial + 2}-D input (N, {self.num_features}, "
                             f"{axes}) (or one example without N), received shape {shape}.")
        return shape

    def forward(self, x):
        check_float_array(self, x)
        self.output_shape(x.shape)
        use_input = self.training or not self.track_running_stats
        positions = math.prod(x.shape[2:])
        if use_input and positions < 2:
            raise ShapeError(f"{self!r}: expected more than 1 position per channel to take its statistics, "
                             f"received shape {x.shape}.")
        weight = None if self.weight is None else self.weight.data
        bias = None if self.bias is None else self.bias.data
        if use_input:
            with enable_grad():  # the instance statistics come in the cache (kept by no layer under no_grad)
                y, cache = instance_norm(x, weight, bias, eps=self.eps)
        else:
            y, cache = instance_norm(x, weight, bias, self.running_mean, self.running_var, self.eps)
        if self.training and self.track_running_stats:
            self._update_running_stats(cache["mean"], cache["var"], positions)
        self._cache = cache
        return y

    def _update_running_stats(self, mean, var, n):
        """PyTorch's rule: the batch's mean of the instance means and of the unbiased instance variances
        enter ``running = (1 - momentum) * running + momentum * statistic``. As in PyTorch (whose
        InstanceNorm hands ``momentum or 0`` to its kernel) momentum=None leaves the averages as they are,
        and num_batches_tracked is kept in the state dict but never counted."""
        factor = 0.0 if self.momentum is None else self.momentum
        self.running_mean *= 1 - factor
        self.running_mean += factor * mean.mean(axis=0)
        self.running_var *= 1 - factor
        self.running_var += factor * (var * (n / (n - 1))).mean(axis=0)

    def backward(self, dy):
        dx, dweight, dbias = instance_norm_backward(dy, self._pop_cache())
        _accumulate(self, dweight, dbias)
        return dx


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization of sequences: each channel of each example over its own positions.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the (biased) mean and variance of every
    (example, channel) pair (Ulyanov et al. 2016). With ``track_running_stats`` the layer also keeps
    running averages, as batch norm does, and evaluates with them. Exactly ``torch.nn.InstanceNorm1d``;
    note its defaults: no affine parameters, no running statistics.

    Shape: (N, C, L) -> (N, C, L); one example (C, L) as well.

    Args:
        num_features (C); eps=1e-5 (> 0); momentum=0.1 (in [0, 1]; None keeps the running averages
        fixed, as PyTorch's InstanceNorm does); affine=False (learn weight and bias, (C,) each);
        track_running_stats=False (keep running averages and use them in eval mode).

    Raises:
        ValueError/TypeError for bad arguments. ShapeError: a wrong rank or channel count, or a single
        position per channel where the input's statistics are used. RuntimeError: backward before forward.

    >>> InstanceNorm1d(3).output_shape((2, 3, 10))
    (2, 3, 10)
    """

    spatial, batched_ndim = 1, 3


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization of images: each channel of each example over its H x W positions (style
    transfer, GANs); the arguments, modes and errors of :class:`InstanceNorm1d`. ``torch.nn.InstanceNorm2d``.

    Shape: (N, C, H, W) -> (N, C, H, W); one example (C, H, W) as well.

    Args:
        num_features (C); eps=1e-5; momentum=0.1; affine=False; track_running_stats=False.

    Raises:
        as :class:`InstanceNorm1d`.

    >>> InstanceNorm2d(3).output_shape((2, 3, 8, 8))
    (2, 3, 8, 8)
    """

    spatial, batched_ndim = 2, 4


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization of volumes: each channel of each example over its D x H x W positions; the
    arguments, modes and errors of :class:`InstanceNorm1d`. ``torch.nn.InstanceNorm3d``.

    Shape: (N, C, D, H, W) -> the same shape; one example (C, D, H, W) as well.

    Args:
        num_features (C); eps=1e-5; momentum=0.1; affine=False; track_running_stats=False.

    Raises:
        as :class:`InstanceNorm1d`.

    >>> InstanceNorm3d(3).output_shape((2, 3, 4, 8, 8))
    (2, 3, 4, 8, 8)
    """

    spatial, batched_ndim = 3, 5


class LayerNorm(Layer):
    """Normalize each example over its trailing axes, then scale and shift each element (Ba et al. 2016).

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with one mean and (biased) variance per example
    over the last ``len(normalized_shape)`` axes, and weight, bias of ``normalized_shape``. For images,
    ``LayerNorm((C, H, W))`` normalizes each whole example (GroupNorm(1, C) but with per-element
    parameters); ConvNeXt normalizes channels-last (N, H, W, C) with ``LayerNorm(C)``. ``torch.nn.LayerNorm``.

    Shape: (*, *normalized_shape) -> the same shape.

    Args:
        normalized_shape: an int or a tuple of ints, the trailing axes. eps=1e-5 (> 0).
        elementwise_affine: learn weight (and bias) of normalized_shape (default True).
        bias: learn the bias too, with elementwise_affine (default True).

    Raises:
        ValueError/TypeError: sizes that are not positive ints, eps not a positive number.
        ShapeError: an input whose trailing axes are not normalized_shape. TypeError: x not a float array.

    >>> LayerNorm(768).output_shape((2, 196, 768))
    (2, 196, 768)
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else normalized_shape
        if not isinstance(shape, tuple | list) or not shape:
            raise TypeError(f"LayerNorm: Received normalized_shape={normalized_shape!r}; expected an int or "
                            f"a non-empty tuple of ints (the trailing axes).")
        self.normalized_shape = tuple(positive_int(n, "normalized_shape", "LayerNorm") for n in shape)
        self.eps = _positive_eps("LayerNorm", eps)
        self.elementwise_affine = bool(elementwise_affine)
        affine = self.elementwise_affine
        self.weight = Parameter(np.ones(self.normalized_shape, np.float32)) if affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, np.float32)) if affine and bias else None

    def extra_repr(self):
        text = f"{self.normalized_shape}, eps={self.eps}"
        if not self.elementwise_affine:
            text += ", elementwise_affine=False"
        elif self.bias is None:
            text += ", bias=False"
        return text

    def output_shape(self, input_shape):
        shape, k = tuple(input_shape), len(self.normalized_shape)
        if len(shape) < k or shape[len(shape) - k:] != self.normalized_shape:
            raise ShapeError(f"{self!r}: expected an input whose last {k} axes are {self.normalized_shape}, "
                             f"received shape {shape}.")
        return shape

    def forward(self, x):
        check_float_array(self, x)
        self.output_shape(x.shape)
        weight = None if self.weight is None else self.weight.data
        bias = None if self.bias is None else self.bias.data
        y, self._cache = layer_norm(x, self.normalized_shape, weight, bias, self.eps)
        return y

    def backward(self, dy):
        dx, dweight, dbias = layer_norm_backward(dy, self._pop_cache())
        _accumulate(self, dweight, dbias)
        return dx
