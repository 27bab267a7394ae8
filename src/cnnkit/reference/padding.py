"""Padding the spatial axes with a constant, a mirror image, the edge value, or the other side (wrapping).

Every mode is one rule per axis: output position o of an axis padded by (before, after) reads the input
position ``i = o - before``, moved back inside [0, n) by the mode:

    constant    i outside [0, n): the value (zero for a convolution's usual padding)
    reflect     mirror around the edge sample, which is not repeated: ... 2 1 | 0 1 2 3 | 2 1 ...
    replicate   the edge sample repeated:                                ... 0 0 | 0 1 2 3 | 3 3 ...
    circular    the other side, as if the axis were a ring:              ... 2 3 | 0 1 2 3 | 0 1 ...
                (after a negative pad has cropped one side, the ring is what is left, as in PyTorch)

so the forward is one gather per axis (``np.take`` with those source indices) and the backward is its
adjoint: the interior is copied back and each padded position adds its gradient to the input it read.
A negative pad crops that side, as in PyTorch.

Pads are one (before, after) pair per spatial axis, first axis first (cnnkit's order); PyTorch's
``F.pad`` lists them last axis first, which :func:`torch_order` converts.
"""

import numbers

import numpy as np

from cnnkit.errors import ShapeError

MODES = ("constant", "reflect", "replicate", "circular")


def check_mode(mode, *, name="pad"):
    """Raise ValueError unless mode is one of :data:`MODES`; returns it."""
    if mode not in MODES:
        raise ValueError(f"{name}: Received mode={mode!r}; expected one of {', '.join(map(repr, MODES))}.")
    return mode


def torch_order(padding, nd: int, *, name="pad"):
    """PyTorch's flat padding (last axis first: left, right, top, bottom, front, back) or an int -> cnnkit's
    ((before, after) per axis, first axis first). Nested pairs are taken as cnnkit's order already.

    >>> torch_order((1, 2, 3, 4), 2), torch_order(1, 1), torch_order(((1, 2), (3, 4)), 2)
    (((3, 4), (1, 2)), ((1, 1),), ((1, 2), (3, 4)))

    Raises:
        TypeError: an entry that is not an int. ValueError: not an int, 2 * nd ints or nd pairs.
    """
    allowed = (f"an int, {2 * nd} ints in PyTorch's order (last axis first: left, right, top, ...) or {nd} "
               f"(before, after) pairs, first axis first")
    if isinstance(padding, list | tuple) and padding and all(isinstance(p, list | tuple) for p in padding):
        flat, nested = [v for p in padding for v in p], True
        if len(padding) != nd or any(len(p) != 2 for p in padding):
            raise ValueError(f"{name}: Received padding={padding!r}; expected {allowed}.")
    elif isinstance(padding, list | tuple):
        flat, nested = list(padding), False
        if len(flat) != 2 * nd:
            raise ValueError(f"{name}: Received padding={padding!r}; expected {allowed}.")
    else:
        flat, nested = [padding] * (2 * nd), True
    for v in flat:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name}: Received padding={padding!r}; expected {allowed}.")
    pairs = [(int(a), int(b)) for a, b in zip(flat[::2], flat[1::2], strict=True)]
    return tuple(pairs if nested else reversed(pairs))


def source_indices(n: int, before: int, after: int, mode: str):
    """The input position each output position reads, along one axis; -1 where a constant goes.

    >>> for mode in MODES:
    ...     print(mode, source_indices(4, 2, 2, mode).tolist())
    constant [-1, -1, 0, 1, 2, 3, -1, -1]
    reflect [2, 1, 0, 1, 2, 3, 2, 1]
    replicate [0, 0, 0, 1, 2, 3, 3, 3]
    circular [2, 3, 0, 1, 2, 3, 0, 1]
    """
    i = np.arange(-before, n + after)
    if mode == "constant":
        return np.where((i >= 0) & (i < n), i, -1)
    if mode == "reflect":
        i = np.abs(i)
        return np.where(i < n, i, 2 * (n - 1) - i)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    # circular: PyTorch wraps around what is left after cropping (a negative pad), the run [start, stop)
    start, stop = max(-before, 0), n - max(-after, 0)
    return start + (i - start) % (stop - start)


def check_pads(spatial, pads, mode, *, name="pad"):
    """Raise a ShapeError for pads the mode cannot make from an input of size ``spatial`` (PyTorch's rules).

    reflect: each pad < n (the mirror does not repeat the edge, so it has n - 1 samples to show);
    circular: each pad <= n (it wraps around at most once); replicate and reflect need n >= 1; every mode
    needs an output of at least one position (constant: zero is allowed, as in PyTorch).
    """
    for axis, (n, (lo, hi)) in enumerate(zip(spatial, pads, strict=True)):
        where = f"spatial axis {axis} (size {n})"
        out = n + lo + hi
        if out < (0 if mode == "constant" else 1):
            raise ShapeError(f"{name}: padding ({lo}, {hi}) on {where} would leave {out} positions; "
                             f"crop less.")
        if mode == "reflect" and max(lo, hi) >= n:
            raise ShapeError(f"{name}: reflect padding ({lo}, {hi}) on {where} must be smaller than the size "
                             f"({n}): a mirror without the edge sample has {n - 1} samples to show.")
        if mode == "circular" and max(lo, hi) > n:
            raise ShapeError(f"{name}: circular padding ({lo}, {hi}) on {where} must be at most the size "
                             f"({n}): it wraps around once.")
        if mode in ("reflect", "replicate") and n < 1:
            raise ShapeError(f"{name}: {mode} padding needs a non-empty input on {where}.")


def padnd(x, pads, mode="constant", value=0.0, *, name="pad"):
    """Pad (or, with negative pads, crop) the spatial axes of x by the rule of ``mode``.

    Shape: x (N, C, *S), pads one (before, after) pair per spatial axis -> y (N, C, *(S + before + after)).

    Args:
        x: (N, C, *S) array. pads: ((before, after), ...) first axis first; negative crops.
        mode: "constant" (default), "reflect", "replicate" or "circular". value: the constant (mode
            "constant" only).

    Returns:
        ``(y, cache)``: y has x's dtype; the cache holds the source indices of every axis.

    Raises:
        ValueError: an unknown mode. ShapeError: pads the mode cannot make (see :func:`check_pads`), or
            not one pair per spatial axis.

    >>> y, _ = padnd(np.arange(3.0)[None, None], ((2, 1),), "reflect")
    >>> y[0, 0].tolist()
    [2.0, 1.0, 0.0, 1.0, 2.0, 1.0]
    """
    check_mode(mode, name=name)
    spatial = x.shape[2:]
    if len(pads) != len(spatial):
        raise ShapeError(f"{name}: {len(pads)} (before, after) pairs for an input with {len(spatial)} "
                         f"spatial axes (shape {x.shape}).")
    check_pads(spatial, pads, mode, name=name)
    sources = [source_indices(n, lo, hi, mode) for n, (lo, hi) in zip(spatial, pads, strict=True)]
    if mode == "constant":  # the constant everywhere, then the (cropped) input where it goes
        y = np.full((*x.shape[:2], *(len(src) for src in sources)), value, x.dtype)
        inner, outer = _interior(spatial, pads)
        y[outer] = x[inner]
    else:
        y = x
        for axis, src in enumerate(sources, start=2):
            y = np.take(y, src, axis=axis)
    return y, dict(sources=sources, spatial=spatial, pads=tuple(pads), mode=mode)


def _interior(spatial, pads):
    """(input slices, output slices) of the part of the input that a constant pad keeps (crops cut it)."""
    inner = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for n, (lo, hi) in zip(spatial, pads, strict=True))
    outer = tuple(slice(max(lo, 0), max(lo, 0) + max(s.stop - s.start, 0)) for s, (lo, _) in
                  zip(inner, pads, strict=True))
    return (..., *inner), (..., *outer)


def padnd_backward(dy, cache):
    """The gradient of :func:`padnd`: each input gets the gradient of every output that read it.

    Shape: dy (N, C, *S_padded) -> dx (N, C, *S), dy's dtype. Positions filled with the constant pass
    nothing back.
    """
    if cache["mode"] == "constant":  # only the positions that hold the input pass a gradient back
        inner, outer = _interior(cache["spatial"], cache["pads"])
        dx = np.zeros((*dy.shape[:2], *cache["spatial"]), dy.dtype)
        dx[inner] = dy[outer]
        return dx
    dx = dy
    for axis in reversed(range(len(cache["sources"]))):
        before = cache["pads"][axis][0]
        dx = _take_adjoint(dx, cache["sources"][axis], cache["spatial"][axis], before, axis + 2)
    return dx


def _take_adjoint(dy, src, n, before, axis):
    """dx with ``dx[..., i, ...] = sum of dy[..., o, ...] over the o with src[o] == i`` along ``axis``."""
    moved = np.moveaxis(dy, axis, -1)
    dx = np.zeros((*moved.shape[:-1], n), dy.dtype)
    # The interior, where o reads o - before, is one run: a copy. Only the (few) padded positions loop.
    first, last = max(before, 0), min(before + n, len(src))
    if first < last:
        dx[..., first - before:last - before] = moved[..., first:last]
    for o in np.flatnonzero(src >= 0):
        if not first <= o < last:
            dx[..., src[o]] += moved[..., o]
    return np.ascontiguousarray(np.moveaxis(dx, -1, axis))
