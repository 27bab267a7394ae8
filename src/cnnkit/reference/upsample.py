"""Resampling the spatial axes: nearest-neighbour and (bi/tri)linear interpolation, PyTorch's
``F.interpolate`` rules exactly.

Interpolation is separable: along each spatial axis, output position o reads one input position
(nearest) or two neighbours with weights ``1 - t`` and ``t`` (linear); bilinear and trilinear are the
linear rule applied axis after axis. So each axis is a gather with weights, and its backward scatters
the gradient back with the same weights (a transposed interpolation matrix, never built).

Where output position o samples the input (n inputs, m outputs; ``scale = n / m``, or
``1 / scale_factor`` when a scale factor is given and not recomputed, as PyTorch does):

    nearest         floor(o * scale)                        (PyTorch's "nearest": legacy, shifts left)
    nearest-exact   floor((o + 0.5) * scale)                (pixel centres, like Pillow and OpenCV)
    linear, align_corners=False   (o + 0.5) * scale - 0.5, clamped at 0   (pixel centres)
    linear, align_corners=True    o * (n - 1) / (m - 1)     (the corner pixels' centres coincide)

and every index is clamped to n - 1. Output sizes: ``size``, or ``floor(n * scale_factor)``.
"""

import math
import numbers

import numpy as np

MODES = {"nearest": (1, 2, 3), "nearest-exact": (1, 2, 3), "linear": (1,), "bilinear": (2,),
         "trilinear": (3,)}  # mode -> the numbers of spatial axes it takes


def per_axis(value, nd, name, kind, owner):
    """``value`` (one for every axis, or nd of them) as nd positive values of ``kind`` (numbers.Integral
    or numbers.Real); TypeError/ValueError naming ``owner`` otherwise."""
    values = tuple(value) if isinstance(value, tuple | list) else (value,) * nd
    if len(values) != nd:
        raise ValueError(f"{owner}: Received {name}={value!r} for {nd} spatial axes; expected one value or "
                         f"{nd}.")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, kind):
            raise TypeError(f"{owner}: Received {name}={value!r}; expected positive "
                            f"{'ints' if kind is numbers.Integral else 'numbers'}.")
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{owner}: Received {name}={value!r}; expected positive finite values.")
    return values


def check_arguments(size, scale_factor, mode, align_corners, owner="interpolate"):
    """ValueError/TypeError naming ``owner`` for arguments :func:`interpolate` cannot take (those that do
    not depend on the input)."""
    if mode not in MODES:
        raise ValueError(f"{owner}: Received mode={mode!r}; expected one of {', '.join(map(repr, MODES))}.")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{owner}: Received size={size!r}, scale_factor={scale_factor!r}; give exactly one "
                         f"of them.")
    if align_corners is not None:
        if not isinstance(align_corners, bool):
            raise TypeError(f"{owner}: Received align_corners={align_corners!r}; expected True, False or "
                            f"None.")
        if mode.startswith("nearest"):
            raise ValueError(f"{owner}: Received align_corners={align_corners!r} with mode={mode!r}; "
                             f"align_corners applies to the linear modes only (leave it None).")


def output_size(spatial, size=None, scale_factor=None, owner="interpolate"):
    """The output's spatial sizes: ``size``, or ``floor(n * scale_factor)`` per axis (at least 1 is not
    enforced: PyTorch raises for an empty output, and so does :func:`interpolate`'s caller)."""
    nd = len(spatial)
    if size is not None:
        return per_axis(size, nd, "size", numbers.Integral, owner)
    factors = per_axis(scale_factor, nd, "scale_factor", numbers.Real, owner)
    return tuple(int(math.floor(n * float(s))) for n, s in zip(spatial, factors, strict=True))


def _taps(n, m, mode, align_corners, scale_factor, nd):
    """The (index, weight) pairs of one axis (of nd): n inputs, m outputs; one pair for nearest, two for
    linear."""
    o = np.arange(m)
    given = scale_factor is not None and scale_factor > 0
    if mode.startswith("nearest"):
        if mode == "nearest" and nd == 2 and m in (n, 2 * n):
            # PyTorch's 2-D kernel copies (m = n) or halves the index (m = 2n) whatever the scale factor;
            # its 1-D and 3-D kernels compute these like any other size.
            return [(o if m == n else o // 2, None)]
        # PyTorch computes these indices in float32: the same rounding gives the same neighbours
        scale = np.float32(1.0 / scale_factor) if given else np.float32(n) / np.float32(m)
        if mode == "nearest":
            source = np.floor(o.astype(np.float32) * scale)
        else:
            source = np.floor(((o + 0.5) * np.float64(scale)).astype(np.float32))
        return [(np.minimum(source.astype(np.int64), n - 1), None)]
    if align_corners:
        scale = (n - 1) / (m - 1) if m > 1 else 0.0
        source = o * scale
    else:
        scale = 1.0 / scale_factor if given else n / m
        source = np.maximum((o + 0.5) * scale - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), n - 1)
    t = np.clip(source - low, 0.0, 1.0)
    high = np.minimum(low + 1, n - 1)
    return [(low, 1.0 - t), (high, t)]


def sampling_plan(spatial, size=None, scale_factor=None, mode="nearest", align_corners=None,
                  recompute_scale_factor=None):
    """Per spatial axis, the (index, weight) pairs that :func:`interpolate` reads (weight None: 1): what
    output position o samples, for tools that rebuild the resampling elsewhere (ONNX export)."""
    out = output_size(spatial, size, scale_factor)
    factors = (None,) * len(spatial) if scale_factor is None or recompute_scale_factor else \
        per_axis(scale_factor, len(spatial), "scale_factor", numbers.Real, "interpolate")
    return [_taps(n, m, mode, bool(align_corners), s, len(spatial))
            for n, m, s in zip(spatial, out, factors, strict=True)]


def _gather(x, axis, taps):
    """y[..., o, ...] = sum over taps of weight[o] * x[..., index[o], ...] along ``axis``."""
    y = None
    shape = [1] * x.ndim
    shape[axis] = -1
    for index, weight in taps:
        part = np.take(x, index, axis=axis)
        if weight is not None:
            part = part * weight.astype(x.dtype).reshape(shape)
        y = part if y is None else y + part
    return y


def _scatter(dy, axis, n, taps):
    """The transpose of :func:`_gather`: each output's gradient goes back to the inputs it read."""
    moved = np.moveaxis(dy, axis, -1)
    dx = np.zeros((*moved.shape[:-1], n), dy.dtype)
    for index, weight in taps:
        np.add.at(dx, (..., index), moved if weight is None else moved * weight.astype(dy.dtype))
    return np.moveaxis(dx, -1, axis)


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None):
    """Resample the spatial axes of x to ``size`` (or by ``scale_factor``), torch.nn.functional.interpolate.

    Shape: x (N, C, *S) with 1, 2 or 3 spatial axes (linear: 1, bilinear: 2, trilinear: 3) -> (N, C,
    *S_out).

    Args:
        size: the output's spatial sizes (an int for all axes). scale_factor: multiplies each size
            (floored); the coordinates use 1 / scale_factor unless ``recompute_scale_factor``.
        mode: "nearest", "nearest-exact", "linear", "bilinear" or "trilinear".
        align_corners: for the linear modes, None (False) or True (see the module doc).

    Returns:
        ``(y, cache)``.

    Raises:
        ValueError/TypeError: bad arguments, a mode that does not fit the rank, or an empty output.

    >>> y, _ = interpolate(np.array([[[1.0, 2.0]]]), scale_factor=2, mode="linear")
    >>> y.tolist()
    [[[1.0, 1.25, 1.75, 2.0]]]
    """
    check_arguments(size, scale_factor, mode, align_corners)
    spatial = x.shape[2:]
    if x.ndim - 2 not in MODES[mode]:
        axes = " or ".join(map(str, MODES[mode]))
        raise ValueError(f"interpolate: mode={mode!r} takes an input (N, C, *S) with {axes} spatial axes; "
                         f"received shape {x.shape}.")
    out = output_size(spatial, size, scale_factor)
    if min(out, default=1) < 1:
        raise ValueError(f"interpolate: the output of shape {(*x.shape[:2], *out)} would be empty; use a "
                         f"larger size or scale_factor.")
    plan = sampling_plan(spatial, size, scale_factor, mode, align_corners, recompute_scale_factor)
    y = x
    for axis, taps in enumerate(plan, start=2):
        y = _gather(y, axis, taps)
    return y, (plan, spatial)


def interpolate_backward(dy, cache):
    """The gradient of :func:`interpolate`: the axes in reverse, each scattering its gradient back.

    Shape: dy (N, C, *S_out) -> dx (N, C, *S).
    """
    plan, spatial = cache
    dx = dy
    for axis in reversed(range(len(plan))):
        dx = _scatter(dx, axis + 2, spatial[axis], plan[axis])
    return dx
