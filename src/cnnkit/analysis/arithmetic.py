"""Per-layer ConvNet arithmetic: parameters with and without sharing, multiply-adds, stored activations,
receptive fields.

The notes' formulas, written once and read by :func:`cnnkit.analysis.summary`:

- parameters of a convolution with parameter sharing: ``K * (F*F*C/groups + 1)`` (the +1 is the bias);
- without sharing (every output neuron has its own weights, a ``LocallyConnected2d``):
  ``H_out * W_out * K * (F*F*C + 1)``;
- multiply-adds (MACs) of a convolution: ``F*F*C/groups`` for each of the ``K * H_out * W_out`` outputs,
  the notes' ``F^2 * K * L * H * W`` with L = C/groups input channels; of a fully-connected layer
  ``in_features * out_features``. Biases, pooling, normalization and activations are not counted, the
  convention of torchvision's GFLOPS column and of fvcore. FLOPs = 2 * MACs;
- the receptive field: for a window of (effective) size F, stride S and leading padding P applied to a
  volume whose units see ``r`` input pixels, are ``j`` input pixels apart and whose first unit is centred
  on input coordinate ``c`` (0 is the centre of the first pixel), one step of the recurrence gives

      r_out = r + (F - 1) * j        j_out = j * S        c_out = c + ((F - 1) / 2 - P) * j

  so L stacked 3x3 stride-1 convolutions see 1 + 2L pixels and L 3x3 stride-2 ones 2^(L+1) - 1.

Every function takes the shapes that ``Layer.output_shape`` uses (batch axis included), so the numbers
scale with the batch. :func:`cnnkit.analysis.trace.trace` applies :func:`field_step` layer by layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

# Layers whose output the memory rule does not count: they work in place (activations, dropout) or
# return a view of their input (flatten, identity), so no new volume is stored.
IN_PLACE = frozenset({"ReLU", "ReLU6", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Softmax", "Identity",
                      "Dropout", "Flatten"})
# A Graph's joins count as the containers they stand for: Residual's sum is done in place (torchvision's
# ``out += identity``) and Concat's branches can write into one buffer; a split, a slice, a reshape and a
# permutation are views; a Constant is stored with the parameters.
IN_PLACE |= {"Add", "Concatenate", "Constant", "Split", "Slice", "Reshape", "Permute"}
IN_PLACE |= {"PReLU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Softplus", "Softsign", "Hardtanh",
             "Hardsigmoid", "Hardswish", "LogSoftmax", "Unflatten"}


def kind(layer) -> str:
    """The layer's class name, which is how the arithmetic recognises layers without importing them."""
    return type(layer).__name__


def is_transposed(layer) -> bool:
    return kind(layer).startswith("ConvTranspose")


def is_convolution(layer) -> bool:
    """A layer that slides shared filters: Conv1d/2d/3d (and ConvTranspose, which scatters instead)."""
    return hasattr(layer, "kernel_size") and getattr(layer, "weight", None) is not None and \
        hasattr(layer, "in_channels")


def _per_axis(value, nd):
    return tuple(value) if isinstance(value, tuple | list) else (value,) * nd


def window_hyperparameters(layer, nd: int):
    """(kernel_size, stride, dilation, padding pairs) per axis of a windowed layer, or None.

    Reads the attributes every windowed layer stores (``kernel_size``, ``stride``, ``dilation``,
    ``padding`` as (before, after) pairs); a missing stride means stride = kernel_size, as in pooling.
    """
    if not hasattr(layer, "kernel_size"):
        return None
    kernel = _per_axis(layer.kernel_size, nd)
    stride = _per_axis(getattr(layer, "stride", None) or kernel, nd)
    dilation = _per_axis(getattr(layer, "dilation", 1), nd)
    padding = tuple(tuple(p) if isinstance(p, tuple | list) else (p, p)
                    for p in _per_axis(getattr(layer, "padding", 0), nd))
    return kernel, stride, dilation, padding


def parameter_counts(layer) -> tuple[int, int]:
    """(all, trainable) parameter elements of a layer and its children, each Parameter counted once."""
    unique = {id(p): p for p in layer.parameters()}.values()
    return sum(p.size for p in unique), sum(p.size for p in unique if p.trainable)


def macs(layer, input_shape, output_shape) -> int:
    """Multiply-adds of one forward pass of ``layer`` (0 for layers without weights).

    >>> from cnnkit.layers import Conv2d
    >>> conv = Conv2d(3, 96, 11, stride=4)
    >>> macs(conv, (1, 3, 227, 227), conv.output_shape((1, 3, 227, 227)))  # 55*55*96 outputs, 11*11*3 each
    105415200
    """
    if kind(layer) == "Linear":
        return math.prod(output_shape) * layer.in_features
    if kind(layer) == "LocallyConnected2d":
        return math.prod(output_shape) * layer.in_channels * math.prod(layer.kernel_size)
    if kind(layer) == "MatMul":  # (..., n, k) @ (..., k, m): k for each output
        return math.prod(output_shape) * input_shape[0][-1]
    if is_transposed(layer):
        # Each input value is scattered through K/groups filters of F*F taps.
        return math.prod(input_shape) * (layer.out_channels // layer.groups) * math.prod(layer.kernel_size)
    if is_convolution(layer):
        return math.prod(output_shape) * (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
    return 0


def params_without_sharing(layer, input_shape, output_shape) -> int:
    """Parameters the layer would need if every output neuron had its own weights (and bias).

    This is the notes' count for a convolution without parameter sharing, which is what a
    ``LocallyConnected2d`` has. Layers that do not share (Linear, LocallyConnected2d) and layers without
    weights return their own parameter count.

    >>> from cnnkit.layers import Conv2d
    >>> conv = Conv2d(3, 96, 11, stride=4)
    >>> params_without_sharing(conv, (1, 3, 227, 227), (1, 96, 55, 55))  # 290,400 neurons * (363 + 1)
    105705600
    """
    if is_convolution(layer) and not is_transposed(layer) and kind(layer) != "LocallyConnected2d":
        per_neuron = (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
        per_neuron += 1 if getattr(layer, "bias", None) is not None else 0
        return math.prod(output_shape[1:]) * per_neuron
    return parameter_counts(layer)[0]


def stored_activations(layer, output_shape) -> int:
    """Elements of the new volume that ``layer`` adds to memory, per batch (0 for in-place layers)."""
    return 0 if kind(layer) in IN_PLACE else math.prod(output_shape)


def _number(value):
    """Fractions (from transposed convolutions) print as ints when they are whole."""
    return int(value) if Fraction(value).denominator == 1 else float(value)


@dataclass(frozen=True)
class Field:
    """The receptive field of one layer's units, one entry per spatial axis (H, W for images).

    Attributes:
        size: input pixels one unit sees (the notes' receptive field).
        jump: input pixels between neighbouring units (the effective stride).
        start: input coordinate of the centre of the first unit's field (0 = centre of the first pixel;
            negative when padding makes it hang over the edge).
    """

    size: tuple
    jump: tuple
    start: tuple

    @classmethod
    def of_input(cls, spatial_ndim: int) -> Field:
        return cls((1,) * spatial_ndim, (1,) * spatial_ndim, (0,) * spatial_ndim)

    def step(self, kernel, stride, pad_before) -> Field:
        """The field after a window of effective size ``kernel``, ``stride`` and ``pad_before`` per axis."""
        return Field(tuple(r + (f - 1) * j for r, f, j in zip(self.size, kernel, self.jump, strict=True)),
                     tuple(j * s for j, s in zip(self.jump, stride, strict=True)),
                     tuple(c + (Fraction(f - 1, 2) - p) * j
                           for c, f, p, j in zip(self.start, kernel, pad_before, self.jump, strict=True)))

    def merge(self, other: Field) -> Field:
        """Branches joined by Residual or Concat: the larger field (per axis) wins."""
        return Field(*(tuple(max(a, b) for a, b in zip(x, y, strict=True)) for x, y in
                       ((self.size, other.size), (self.jump, other.jump))),
                     tuple(min(a, b) for a, b in zip(self.start, other.start, strict=True)))

    def public(self) -> Field:
        return Field(*(tuple(_number(v) for v in values) for values in (self.size, self.jump, self.start)))


def _window(layer, spatial):
    """(effective kernel, stride, leading padding) per axis, or None for layers without a spatial window."""
    name = kind(layer)
    if hasattr(layer, "receptive_window"):  # a window that depends on the input (adaptive pools, padding)
        return layer.receptive_window(tuple(spatial))
    if name.startswith("Global"):
        return tuple(spatial), tuple(spatial), (0,) * len(spatial)
    if name == "Flatten" and spatial:
        # A fully-connected layer after this sees every position: one window as large as the input.
        return tuple(spatial), tuple(spatial), (0,) * len(spatial)
    hyper = window_hyperparameters(layer, len(spatial))
    if hyper is None:
        return None
    kernel, stride, dilation, padding = hyper
    before = tuple(lo for lo, _ in padding)
    effective = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    return effective, stride, before


def field_step(layer, field: Field, input_shape, output_shape) -> Field:
    """The receptive field after ``layer`` (a leaf), given the field of its input."""
    window = _window(layer, tuple(input_shape[2:]))
    if window is None:
        return field
    kernel, stride, before = window
    if is_transposed(layer):
        return _transposed_step(layer, field, stride, before)
    return field.step(kernel, stride, before)


def _transposed_step(layer, field, stride, before):
    """A transposed convolution scatters each input unit over F outputs, S apart.

    Output o gathers the input units i with ``i*S + k*dilation - P = o`` for some tap k, so units are
    ``j/S`` input pixels apart and the taps that meet at one output span ``(k_max - k_min)*dilation/S``
    input units (the widest over the S alignments); their centre sits ``((F - 1)/2 - P)/S`` units from o.
    """
    dilation = window_hyperparameters(layer, len(stride))[2]
    size, jump, start = [], [], []
    for r, j, c, K, S, d, P in zip(field.size, field.jump, field.start, layer.kernel_size, stride, dilation,
                                   before, strict=True):
        spans = []
        for phase in range(S):
            taps = [k for k in range(K) if (k * d - phase) % S == 0]
            if taps:
                spans.append((taps[-1] - taps[0]) * d // S)
        size.append(r + max(spans) * j)
        jump.append(Fraction(j) / S)
        start.append(c + (P - Fraction(d * (K - 1), 2)) / S * j)
    return Field(tuple(size), tuple(jump), tuple(start))
