"""The output-size rule of a convolution or pooling window, in one place.

Every layer that slides a window (convolution, pooling, transposed convolution) asks this module for its
output size, so the formula, its error messages and the ``fit`` policies are written once:

    W_out = (W - F + 2P) / S + 1,    with the effective kernel size F = dilation * (kernel_size - 1) + 1

When the division is not exact the notes say the hyperparameters "do not fit", and a library may
    - raise (``fit="error"``, the default): a :class:`~cnnkit.ShapeError` that shows the numbers and a fix;
    - crop (``fit="crop"``): round down and ignore the last rows/columns, which is what PyTorch does;
    - pad (``fit="pad"``): round up and zero-pad the far side, which is PyTorch's ``ceil_mode=True``.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Sequence
from typing import NamedTuple

from cnnkit.errors import ShapeError

FITS = ("error", "pad", "crop")

# Letters of the spatial axes, as the notes write them: a 2-D volume is H x W, a 3-D one D x H x W.
_AXES = {1: ("W",), 2: ("H", "W"), 3: ("D", "H", "W")}
_DROPPED = {"W": "column", "H": "row", "D": "slice"}


def axis_names(ndim: int) -> tuple[str, ...]:
    """Letters of the spatial axes for a 1-, 2- or 3-D window: ('W',), ('H', 'W'), ('D', 'H', 'W')."""
    return _AXES.get(ndim, tuple(f"S{i}" for i in range(ndim)))


def check_fit(fit: str) -> str:
    if fit not in FITS:
        raise ValueError(f"Invalid fit {fit!r}, should be one of {', '.join(map(repr, FITS))}.")
    return fit


def as_tuple(value, ndim: int, name: str, *, minimum: int = 1) -> tuple[int, ...]:
    """``3`` -> ``(3, 3)``; checks that every entry is an int >= minimum. Raises ValueError/TypeError."""
    # the builtin types first in each isinstance: an abstract class's check costs 5-10x more (every layer
    # call normalises its geometry)
    values = tuple(value) if isinstance(value, (tuple, list, Sequence)) else (value,) * ndim
    if len(values) != ndim:
        raise ValueError(f"Received {name}={value!r}: expected an int or a sequence of {ndim} ints.")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, numbers.Integral)):
            raise TypeError(f"Received {name}={value!r}: expected an int or a sequence of {ndim} ints.")
        if int(v) < minimum:
            raise ValueError(f"Received {name}={value!r}: every entry must be >= {minimum}.")
    return tuple(int(v) for v in values)


def padding_pairs(padding, ndim: int, kernel_size=None, dilation=None) -> tuple[tuple[int, int], ...]:
    """Normalise ``padding`` to one ``(before, after)`` pair per spatial axis.

    Accepts an int, one int per axis, one pair per axis, ``"valid"`` (no padding) or ``"same"`` (output as
    large as the input at stride 1; an odd total puts the extra zero after, as PyTorch does).
    """
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * ndim
        if padding == "same":
            total = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
            return tuple((t // 2, t - t // 2) for t in total)
        raise ValueError(f"Invalid padding string {padding!r}, should be one of 'valid', 'same' or an int.")
    if isinstance(padding, Sequence) and any(isinstance(p, Sequence) for p in padding):
        if len(padding) != ndim or not all(isinstance(p, Sequence) and len(p) == 2 for p in padding):
            raise ValueError(f"Received padding={padding!r}: expected {ndim} (before, after) pairs.")
        flat = as_tuple([v for p in padding for v in p], 2 * ndim, "padding", minimum=0)
        return tuple(zip(flat[::2], flat[1::2]))
    return tuple((p, p) for p in as_tuple(padding, ndim, "padding", minimum=0))


class Window(NamedTuple):
    """A whole window's hyperparameters, one entry per spatial axis, for advice that fixes every axis.

    ``padding`` holds (before, after) pairs. ``max_padding`` is the most padding per side the layer
    accepts, an int or one per axis: None for convolutions, kernel_size // 2 for pooling (PyTorch's rule),
    0 for layers without a padding argument (LPPool2d, Blur2d); advice beyond it is not offered.
    """

    spatial: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    max_padding: int | tuple[int, ...] | None = None


def _per_axis(value, nd):
    return tuple(value) if isinstance(value, Sequence) else (value,) * nd


def window_geometry(n: int, kernel_size: int, stride: int = 1, padding=0, dilation: int = 1,
                    fit: str = "error", *, name: str = "window", axis: str = "W",
                    layer: Window | None = None) -> tuple[int, int, int]:
    """Output size and the padding actually applied along one axis.

    Returns ``(n_out, pad_before, pad_after)``. With ``fit="pad"`` the far side gets the extra zeros that
    make the last window fit (even when the kernel is wider than the padded input by less than a stride:
    one partial window, as PyTorch's ceil mode); with ``fit="crop"`` the padding is unchanged and the last
    input positions are simply never visited. ``layer``, the :class:`Window` this axis belongs to, makes the
    error's advice an argument for the whole layer (``padding=((0, 1), (0, 1))``) instead of one for this
    axis alone.

    Raises:
        ShapeError: the kernel is larger than the padded input, or (``fit="error"``) the windows do not
            tile the padded input exactly.
    """
    check_fit(fit)
    lo, hi = padding if isinstance(padding, tuple) else (padding, padding)
    span = n + lo + hi
    F = dilation * (kernel_size - 1) + 1  # the effective kernel size: a dilated kernel spans more input
    formula = f"{name}: ({axis} - F + 2P)/S + 1 = ({n} - {F} + {lo + hi})/{stride} + 1"
    if F > span and fit == "pad" and F - span < stride:
        # PyTorch's ceil mode keeps one partial window when the kernel overhangs the padded input by less
        # than a stride: it starts at the first position and pools what it covers.
        return 1, lo, F - n - lo
    if F > span:
        raise ShapeError(f"{formula} < 1: the kernel (F={F}) is larger than the padded input "
                         f"({axis} + 2P = {span}); use a smaller kernel or more padding.")
    steps, rest = divmod(span - F, stride)
    if rest == 0 or fit == "crop":
        return steps + 1, lo, hi
    if fit == "pad":
        out = steps + 2
        # PyTorch's ceil mode: the last window must start inside the input or the leading padding.
        if (out - 1) * stride >= n + lo:
            return out - 1, lo, hi
        return out, lo, (out - 1) * stride + F - n - lo
    raise ShapeError(f"{formula} = {(span - F) / stride + 1:g} is not an integer; "
                     f"{_suggest(n, F, stride, lo + hi, axis, layer)}")


def output_size(n: int, kernel_size: int, stride: int = 1, padding=0, dilation: int = 1,
                fit: str = "error", *, name: str = "output_size", axis: str = "W") -> int:
    """The notes' formula ``(W - F + 2P)/S + 1`` with F = dilation*(kernel_size-1)+1.

    Args:
        n: input size along the axis (W).
        kernel_size, stride, padding, dilation: the window's hyperparameters along that axis; ``padding``
            may be a ``(before, after)`` pair.
        fit: what to do when the windows do not tile the input: "error" (default), "crop" or "pad".

    Raises:
        ShapeError: as :func:`window_geometry`.

    >>> output_size(5, 3, stride=1, padding=1), output_size(5, 3, stride=2, padding=1)
    (5, 3)
    >>> output_size(227, 11, stride=4)
    55
    >>> output_size(10, 3, stride=2, fit="crop"), output_size(10, 3, stride=2, fit="pad")
    (4, 5)
    """
    return window_geometry(n, kernel_size, stride, padding, dilation, fit, name=name, axis=axis)[0]


def _suggest(n: int, F: int, stride: int, total_pad: int, axis: str, layer: Window | None = None) -> str:
    """A sentence with the nearest hyperparameters that do fit, each written as the argument that works.

    Without ``layer`` the advice is for this one axis (``output_size(..., padding=(0, 1))``). With it, the
    advice is the layer's full argument with every axis fixed at once: an int or one int per axis when each
    axis is padded evenly, else one (before, after) pair per axis, since ``padding=(0, 1)`` means H=0, W=1.
    """
    if layer is None:
        pads = ((total_pad // 2, total_pad - total_pad // 2),)
        spatial, effective, strides, axes = (n,), (F,), (stride,), (axis,)
    else:
        spatial, strides, pads = layer.spatial, layer.stride, layer.padding
        effective = [d * (k - 1) + 1 for k, d in zip(layer.kernel_size, layer.dilation, strict=True)]
        axes = axis_names(len(spatial))
    rows = list(zip(axes, spatial, effective, strides, pads, strict=True))
    new_pads, untiled = [], []
    for a, size, f, s, (lo, hi) in rows:
        extra = -(size + lo + hi - f) % s  # the fewest zeros after which the last window ends on the edge
        total = lo + hi + extra
        new_pads.append((lo, hi) if extra == 0 else (total // 2, total - total // 2))
        untiled += [a] if extra else []
    if layer is None:
        (before, after), = new_pads
        hints = [f"padding={before} (on {axis})" if before == after
                 else f"padding=({before}, {after}) (before, after on {axis})"]
    elif layer.max_padding is not None and any(
            max(pair) > limit for pair, limit in zip(new_pads, _per_axis(layer.max_padding, len(new_pads)))):
        hints = []
    elif all(lo == hi for lo, hi in new_pads):
        evens = tuple(lo for lo, _ in new_pads)
        hints = [f"padding={evens[0]}" if len(set(evens)) == 1 else f"padding={evens}"]
    else:
        hints = [f"padding={tuple(new_pads)} (one (before, after) pair per axis)"]
    # One smaller stride for every axis at once, as the layer's `stride=` argument would set it.
    fits = [c for c in range(1, max(strides))
            if all(size + lo + hi >= f and (size + lo + hi - f) % c == 0 for _, size, f, _, (lo, hi) in rows)]
    hints += [f"stride={fits[-1]}"] if fits else []
    dropped = " and ".join(_DROPPED.get(a, "position") + "s" for a in untiled or [axis])
    first = f"{' or '.join(hints)}, or " if hints else ""
    return (f"use {first}fit='crop' to drop the last {dropped} like PyTorch, "
            f"or fit='pad' to zero-pad the rest (ceil mode).")


def conv_geometry(spatial, kernel_size, stride, padding, dilation, fit="error", *, name="conv",
                  max_padding=None):
    """Output sizes and (before, after) padding per spatial axis, via the one output-size rule.

    ``max_padding``: as :class:`Window`, the most padding per side the error's advice may offer.
    """
    nd = len(spatial)
    pads = padding_pairs(padding, nd, kernel_size, dilation)
    layer = Window(tuple(spatial), tuple(kernel_size), tuple(stride), pads, tuple(dilation), max_padding)
    geo = [window_geometry(n, k, s, p, d, fit, name=name, axis=a, layer=layer)
           for n, k, s, p, d, a in zip(spatial, kernel_size, stride, pads, dilation, axis_names(nd),
                                       strict=True)]
    return tuple(g[0] for g in geo), tuple((g[1], g[2]) for g in geo)


def conv_setup(x_shape, weight_shape, stride, padding, dilation, groups, fit="error", *, name="conv"):
    """A convolution's checked geometry: ``(stride, dilation, out, pads)``, one entry per spatial axis.

    Shape: x (N, C, *S), weight (K, C/groups, *F) -> out (*S_out) by the output-size rule.

    Raises:
        ShapeError: the channels do not match the weight and groups, or the windows do not fit.
        ValueError/TypeError: a bad stride, dilation, padding or fit.
    """
    nd = len(x_shape) - 2
    C, (K, Cg, *F) = x_shape[1], weight_shape
    if C != Cg * groups or K % groups:
        raise ShapeError(f"{name}: input has {C} channels and the weight {tuple(weight_shape)}; with "
                         f"groups={groups} the weight must be (K, C/groups={C // groups}, ...) "
                         f"and K divisible by groups.")
    stride, dilation = as_tuple(stride, nd, "stride"), as_tuple(dilation, nd, "dilation")
    out, pads = conv_geometry(x_shape[2:], F, stride, padding, dilation, fit, name=name)
    return stride, dilation, out, pads


def pool_geometry(x_shape, kernel_size, stride=None, padding=0, dilation=1, fit="error", *, nd=None,
                  name="pool", max_padding=None):
    """Per-axis kernel_size, stride (None = kernel_size), dilation, output sizes and applied padding.

    Shape: x_shape (N, C, *S) -> out (*S_out), ``S_out = (S - F_eff + 2P) / stride + 1`` per axis with
    ``F_eff = dilation * (kernel_size - 1) + 1``, rounded as ``fit`` says.

    Args:
        x_shape: the input shape. kernel_size, stride=None, padding=0, dilation=1: ints or per-axis values
            (padding may be per-axis (before, after) pairs). fit="error" | "crop" | "pad".
        nd: the expected number of spatial axes (None: len(x_shape) - 2). name: prefix of error messages.
        max_padding: as :class:`Window`, the most padding per side the error's advice may offer.

    Returns:
        dict(kernel_size, stride, dilation, out, pads): per-axis tuples; ``pads`` holds the (before, after)
        padding actually applied (fit="pad" adds to the after side).

    Raises:
        ValueError/TypeError: a bad kernel_size, stride, dilation, padding or fit (as Layer arguments).
        ShapeError: x is not (nd + 2)-D; F_eff > S + 2P on some axis; with fit="error", S_out is not an
            integer.
    """
    if nd is not None and len(x_shape) != nd + 2:
        raise ShapeError(f"{name}: expected a {nd + 2}-D input (N, C, {nd} spatial axes), "
                         f"received shape {tuple(x_shape)}.")
    nd = len(x_shape) - 2
    kernel_size = as_tuple(kernel_size, nd, "kernel_size")
    stride = kernel_size if stride is None else as_tuple(stride, nd, "stride")
    dilation = as_tuple(dilation, nd, "dilation")
    out, pads = conv_geometry(x_shape[2:], kernel_size, stride, padding, dilation, fit, name=name,
                              max_padding=max_padding)
    return dict(kernel_size=kernel_size, stride=stride, dilation=dilation, out=out, pads=pads)


def window_slices(offset, dilation, stride, out):
    """The input positions that kernel tap ``offset`` reads for every output position, as one index of
    strided slices: ``xp[window_slices(...)]`` is (N, C, *S_out) for a padded input xp (N, C, *S_padded)."""
    return _cached_window_slices(tuple(offset), tuple(dilation), tuple(stride), tuple(out))


@functools.lru_cache(maxsize=4096)  # small layers ask per tap and batch part: the Python time adds up
def _cached_window_slices(offset, dilation, stride, out):
    return (..., *(slice(o * d, o * d + s * (n - 1) + 1, s)
                   for o, d, s, n in zip(offset, dilation, stride, out, strict=True)))


def transpose_geometry(spatial, kernel_size, stride, padding, dilation, output_padding, *,
                       name="conv_transpose"):
    """Output sizes of a transposed convolution, per axis: the convolution rule solved for the input.

    Shape: ``S_out = (S - 1) * stride - P_before - P_after + dilation * (F - 1) + output_padding + 1``;
    ``padding`` holds one (before, after) pair per axis.

    Raises:
        ShapeError: an output size would be < 1 (too much padding for this input).
    """
    out = []
    for n, k, s, (lo, hi), d, op, axis in zip(spatial, kernel_size, stride, padding, dilation, output_padding,
                                               axis_names(len(spatial)), strict=True):
        F = d * (k - 1) + 1
        m = (n - 1) * s - lo - hi + F + op
        if m < 1:
            raise ShapeError(f"{name}: {axis}_out = ({axis} - 1)*S - 2P + F + output_padding = "
                             f"({n} - 1)*{s} - {lo + hi} + {F} + {op} = {m} < 1; use less padding "
                             f"(padding crops the output of a transposed convolution).")
        out.append(m)
    return tuple(out)
