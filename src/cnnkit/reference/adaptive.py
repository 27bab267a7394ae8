"""Adaptive pooling: pool any input to a requested output size (PyTorch's AdaptiveAvgPool / AdaptiveMaxPool).

Along an axis of n inputs pooled to m outputs, output i covers the inputs

    start = floor(i * n / m)        end = ceil((i + 1) * n / m)

so the windows are about n/m wide, neighbours share one position when m does not divide n, and an output
larger than the input repeats inputs (upsampling). When m divides n it is an ordinary pool with kernel and
stride n/m: torchvision's AlexNet and VGG end their features with one (6x6 and 7x7), which does nothing at
224 x 224 and lets the same classifier take any other size.

Average pooling over a box is separable: along each axis it is a matrix A (m, n) with 1 / (end - start) on
each window, so the forward applies A axis by axis and the backward applies A^T. Max pooling gathers every
window (padded to the widest with a repeat of its first input, which can never beat the original in a
first-max-wins argmax), takes the first max in row-major window order, as PyTorch does, and keeps the flat
index of the winner; backward adds dy at those indices.
"""

import math
import numbers

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.reference.unpool import gather, scatter_add


def adaptive_windows(n: int, m: int):
    """(start, end) arrays of the m windows over n inputs: PyTorch's rule, in exact integer arithmetic.

    >>> [tuple(map(int, w)) for w in zip(*adaptive_windows(5, 3))]
    [(0, 2), (1, 4), (3, 5)]
    """
    i = np.arange(m)
    return (i * n) // m, -((-(i + 1) * n) // m)


def adaptive_output_size(spatial, output_size, *, name="adaptive_pool"):
    """The output's spatial sizes: ``output_size`` per axis, with None keeping the input's size.

    Args:
        spatial: the input's spatial sizes. output_size: an int, or one int or None per axis.

    Raises:
        TypeError/ValueError: an entry that is not a positive int or None, or the wrong number of entries.
    """
    return tuple(n if m is None else m for n, m in zip(spatial, check_output_size(output_size, len(spatial),
                                                                                   name=name), strict=True))


def check_output_size(output_size, nd: int, *, name="adaptive_pool"):
    """``output_size`` as one int-or-None per axis (an int is repeated), validated.

    Raises:
        TypeError: an entry that is not an int or None. ValueError: an entry < 1, or not nd entries.
    """
    values = tuple(output_size) if isinstance(output_size, list | tuple) else (output_size,) * nd
    allowed = f"an int >= 1, None (keep the input's size) or a sequence of {nd} of those"
    if len(values) != nd:
        raise ValueError(f"{name}: Received output_size={output_size!r}; expected {allowed}.")
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name}: Received output_size={output_size!r}; expected {allowed}.")
        if v < 1:
            raise ValueError(f"{name}: Received output_size={output_size!r}; expected {allowed}.")
    return tuple(None if v is None else int(v) for v in values)


def _check_input(x, name):
    if x.ndim < 3:
        raise ShapeError(f"{name}: expected an input (N, C, *S) with 1 to 3 spatial axes, received shape "
                         f"{x.shape}.")
    if any(n < 1 for n in x.shape[2:]):
        raise ShapeError(f"{name}: every spatial axis needs at least one position, received shape {x.shape}.")


def averaging_matrix(n: int, m: int, dtype=np.float64):
    """A (m, n): row i averages the inputs of window i (``1 / (end - start)`` on them, 0 elsewhere)."""
    start, end = adaptive_windows(n, m)
    columns = np.arange(n)
    inside = (columns >= start[:, None]) & (columns < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def _along(x, axis, matrix):
    """Apply ``matrix`` (m, n) to axis ``axis`` of x (size n there -> size m)."""
    return np.moveaxis(np.moveaxis(x, axis, -1) @ matrix.T, -1, axis)


def adaptive_avg_pool(x, output_size, *, name="adaptive_avg_pool"):
    """Mean over each adaptive window (see the module docstring).

    Shape: x (N, C, *S) -> y (N, C, *S_out), ``S_out = output_size`` (None keeps S on that axis).

    Args:
        x: (N, C, *S) floating-point array. output_size: an int, or one int or None per spatial axis.

    Returns:
        ``(y, cache)``: y has x's dtype; the cache holds the averaging matrix of every axis.

    Raises:
        ShapeError: x has no spatial axis or an empty one. TypeError/ValueError: a bad output_size.

    >>> y, _ = adaptive_avg_pool(np.arange(5.0)[None, None], 3)
    >>> y[0, 0].tolist()
    [0.5, 2.0, 3.5]
    """
    _check_input(x, name)
    out = adaptive_output_size(x.shape[2:], output_size, name=name)
    matrices = [averaging_matrix(n, m, x.dtype) for n, m in zip(x.shape[2:], out, strict=True)]
    y = x
    for axis, matrix in enumerate(matrices):
        y = _along(y, 2 + axis, matrix)
    return np.ascontiguousarray(y), dict(matrices=matrices)


def adaptive_avg_pool_backward(dy, cache):
    """The gradient of :func:`adaptive_avg_pool`: A^T along every axis. dy (N, C, *S_out) -> dx (N, C, *S)."""
    dx = dy
    for axis, matrix in enumerate(cache["matrices"]):
        dx = _along(dx, 2 + axis, matrix.T.astype(dy.dtype, copy=False))
    return np.ascontiguousarray(dx)


def window_indices(spatial, out):
    """Flat input positions of every adaptive window, (*S_out, T) with T the widest window's size.

    Windows narrower than T repeat their first position along that axis: a repeat comes after the original
    in row-major window order, so a first-max argmax never picks it.
    """
    per_axis = []
    for n, m in zip(spatial, out, strict=True):
        start, end = adaptive_windows(n, m)
        width = int((end - start).max())
        taps = start[:, None] + np.arange(width)
        per_axis.append(np.where(taps < end[:, None], taps, start[:, None]))  # (m, width)
    nd = len(per_axis)
    flat = np.zeros((), np.int64)
    for k, (n, taps) in enumerate(zip(spatial, per_axis, strict=True)):
        shape = [1] * (2 * nd)
        shape[k], shape[nd + k] = taps.shape
        flat = flat * n + taps.reshape(shape)  # axes: (*S_out, *widths)
    return flat.reshape(*out, -1)


def adaptive_max_pool(x, output_size, *, name="adaptive_max_pool"):
    """Max over each adaptive window; ties go to the first max in row-major window order (as PyTorch).

    Shape: x (N, C, *S) -> y (N, C, *S_out), ``S_out = output_size`` (None keeps S on that axis).

    Args:
        x: (N, C, *S) floating-point array. output_size: an int, or one int or None per spatial axis.

    Returns:
        ``(y, cache)``: the cache holds ``indices`` (N, C, *S_out), the flat position of each window's max
        inside its (N, C) plane (PyTorch's ``return_indices``), and the input's spatial size.

    Raises:
        ShapeError: x has no spatial axis or an empty one. TypeError/ValueError: a bad output_size.

    >>> y, cache = adaptive_max_pool(np.array([[[3.0, 1.0, 4.0, 1.0, 5.0]]]), 2)
    >>> y.tolist(), cache["indices"].tolist()
    ([[[4.0, 5.0]]], [[[2, 4]]])
    """
    _check_input(x, name)
    spatial = x.shape[2:]
    out = adaptive_output_size(spatial, output_size, name=name)
    taps = window_indices(spatial, out)  # (*S_out, T)
    N, C = x.shape[:2]
    windows = x.reshape(N, C, -1)[:, :, taps]  # (N, C, *S_out, T)
    winner = windows.argmax(axis=-1)
    indices = taps.reshape(-1, taps.shape[-1])[np.arange(math.prod(out)), winner.reshape(N, C, -1)]
    indices = indices.reshape(N, C, *out)
    return gather(x, indices), dict(indices=indices, spatial=spatial)


def adaptive_max_pool_backward(dy, cache):
    """The gradient of :func:`adaptive_max_pool`: dy goes to each window's max, summed where windows share
    it. dy (N, C, *S_out) -> dx (N, C, *S)."""
    return scatter_add(dy, cache["indices"], cache["spatial"])
