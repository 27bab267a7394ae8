"""Receptive fields: how many input pixels one unit of each layer sees, and how far apart its units are.

For a window of (effective) size F, stride S and leading padding P applied to a volume whose units see
``r`` input pixels, are ``j`` input pixels apart and whose first unit is centred on input coordinate
``c`` (0 is the centre of the first pixel), one step of the recurrence gives

    r_out = r + (F - 1) * j        j_out = j * S        c_out = c + ((F - 1) / 2 - P) * j

so L stacked 3x3 stride-1 convolutions see 1 + 2L pixels and L 3x3 stride-2 ones 2^(L+1) - 1.
Layers without a spatial window (activations, batch norm) leave the field unchanged; flattening before
a fully-connected layer makes every unit see the whole input; Residual and Concat take the largest field
over their paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from cnnkit.analysis.arithmetic import is_transposed, kind, window_hyperparameters


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


def receptive_field(model, input_shape) -> dict[str, Field]:
    """Receptive field (size, jump, start per spatial axis) of every layer, by dotted name.

    Args:
        model: a layer or container.
        input_shape: the shape of one example, without the batch axis, e.g. ``(3, 224, 224)``.

    Returns:
        ``{name: Field}`` in forward order, starting with ``""`` for the input itself.

    >>> from cnnkit.layers import Conv2d, Sequential
    >>> net = Sequential(*[Conv2d(1, 1, 3, padding=1) for _ in range(3)])
    >>> receptive_field(net, (1, 32, 32))["2"]
    Field(size=(7, 7), jump=(1, 1), start=(0, 0))
    """
    from cnnkit.analysis.trace import trace

    steps = trace(model, input_shape)
    return {step.name: step.field.public() for step in steps}
