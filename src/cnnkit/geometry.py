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
    values = tuple(value) if isinstance(value, Sequence) else (value,) * ndim
    if len(values) != ndim:
        raise ValueError(f"Received {name}={value!r}: expected an int or a sequence of {ndim} ints.")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
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


def window_geometry(n: int, kernel_size: int, stride: int = 1, padding=0, dilation: int = 1,
                    fit: str = "error", *, name: str = "window", axis: str = "W") -> tuple[int, int, int]:
    """Output size and the padding actually applied along one axis.

    Returns ``(n_out, pad_before, pad_after)``. With ``fit="pad"`` the far side gets the extra zeros that
    make the last window fit; with ``fit="crop"`` the padding is unchanged and the last input positions
    are simply never visited.

    Raises:
        ShapeError: the kernel is larger than the padded input, or (``fit="error"``) the windows do not
            tile the padded input exactly.
    """
    check_fit(fit)
    lo, hi = padding if isinstance(padding, tuple) else (padding, padding)
    span = n + lo + hi
    F = dilation * (kernel_size - 1) + 1  # the effective kernel size: a dilated kernel spans more input
    formula = f"{name}: ({axis} - F + 2P)/S + 1 = ({n} - {F} + {lo + hi})/{stride} + 1"
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
                     f"{_suggest(n, F, stride, lo + hi, axis)}")


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


def _suggest(n: int, F: int, stride: int, total_pad: int, axis: str) -> str:
    """A sentence with the nearest hyperparameters that do fit."""
    hints = []
    for extra in range(1, 2 * stride + 1):
        if (n + total_pad + extra - F) % stride == 0:
            if extra % 2 == 0:
                hints.append(f"padding={(total_pad + extra) // 2} (on {axis})")
            else:
                before, after = total_pad // 2, total_pad - total_pad // 2 + extra
                hints.append(f"padding=({before}, {after}) (before, after on {axis})")
            break
    strides = [s for s in range(1, stride) if (n + total_pad - F) % s == 0]
    if strides:
        hints.append(f"stride={strides[-1]}")
    hint = "use " + " or ".join(hints) + ", or " if hints else "use "
    return (f"{hint}fit='crop' to drop the last {_DROPPED.get(axis, 'position')}s like PyTorch, "
            f"or fit='pad' to zero-pad the rest (ceil mode).")


def conv_geometry(spatial, kernel_size, stride, padding, dilation, fit="error", *, name="conv"):
    """Output sizes and (before, after) padding per spatial axis, via the one output-size rule."""
    nd = len(spatial)
    pads = padding_pairs(padding, nd, kernel_size, dilation)
    geo = [window_geometry(n, k, s, p, d, fit, name=name, axis=a)
           for n, k, s, p, d, a in zip(spatial, kernel_size, stride, pads, dilation, axis_names(nd),
                                       strict=True)]
    return tuple(g[0] for g in geo), tuple((g[1], g[2]) for g in geo)


def pool_geometry(x_shape, kernel_size, stride=None, padding=0, dilation=1, fit="error", *, nd=None,
                  name="pool"):
    """Per-axis kernel_size, stride (None = kernel_size), dilation, output sizes and applied padding.

    Shape: x_shape (N, C, *S) -> out (*S_out), ``S_out = (S - F_eff + 2P) / stride + 1`` per axis with
    ``F_eff = dilation * (kernel_size - 1) + 1``, rounded as ``fit`` says.

    Args:
        x_shape: the input shape. kernel_size, stride=None, padding=0, dilation=1: ints or per-axis values
            (padding may be per-axis (before, after) pairs). fit="error" | "crop" | "pad".
        nd: the expected number of spatial axes (None: len(x_shape) - 2). name: prefix of error messages.

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
    out, pads = conv_geometry(x_shape[2:], kernel_size, stride, padding, dilation, fit, name=name)
    return dict(kernel_size=kernel_size, stride=stride, dilation=dilation, out=out, pads=pads)


def window_slices(offset, dilation, stride, out):
    """The input positions that kernel tap ``offset`` reads for every output position, as one index of
    strided slices: ``xp[window_slices(...)]`` is (N, C, *S_out) for a padded input xp (N, C, *S_padded)."""
    return _cached_window_slices(tuple(offset), tuple(dilation), tuple(stride), tuple(out))


@functools.lru_cache(maxsize=4096)  # small layers ask per tap and batch part: the Python time adds up
def _cached_window_slices(offset, dilation, stride, out):
    return (..., *(slice(o * d, o * d + s * (n - 1) + 1, s)
                   for o, d, s, n in zip(offset, dilation, stride, out, strict=True)))
