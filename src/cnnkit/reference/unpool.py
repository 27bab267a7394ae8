"""Max unpooling and the flat indices it reads: put each pooled value back where its max came from.

Max pooling keeps, per window, the *switch* (ConvNetJS's word): which input won. PyTorch hands the switches
out as ``indices``, the flat position of the winner inside its own (N, C) plane, ``h * W + w`` in 2-D;
max unpooling writes every value at its index in a plane of zeros, which is how the deconvnet
visualization of Zeiler & Fergus maps a feature back towards the pixels.

    max_unpool:            y[n, c].flat[indices[n, c, j]] = x[n, c, j]        (zero elsewhere)
    max_unpool_backward:   dx[n, c, j] = dy[n, c].flat[indices[n, c, j]]      (a gather: the adjoint)

``scatter_add`` is the other direction's building block: the gradient of a max routes dy to the winner
and sums where windows share one (adaptive max pooling's windows may overlap).
"""

import math

import numpy as np

from cnnkit.errors import ShapeError


def _plane_offsets(indices, plane):
    """Flat positions in an (N*C*plane) array: indices (N, C, *S_out) inside each plane -> global."""
    N, C = indices.shape[:2]
    base = np.arange(N * C, dtype=np.int64).reshape(N, C, *(1,) * (indices.ndim - 2)) * plane
    return base + indices


def scatter_add(values, indices, spatial):
    """Sum ``values`` into zero planes at their flat ``indices``: the gradient of a gather.

    Shape: values (N, C, *S_out), indices (N, C, *S_out) (ints in [0, prod(spatial))) -> (N, C, *spatial),
    values' dtype. Indices that repeat get the sum of their values.
    """
    N, C = values.shape[:2]
    plane = math.prod(spatial)
    # bincount adds repeated positions (in float64, then cast back), which fancy assignment would not.
    offsets = _plane_offsets(indices, plane).ravel()
    total = np.bincount(offsets, weights=values.ravel(), minlength=N * C * plane)
    return total.astype(values.dtype, copy=False).reshape(N, C, *spatial)


def gather(x, indices):
    """``x[n, c].flat[indices[n, c, j]]`` for every output position j.

    Shape: x (N, C, *S), indices (N, C, *S_out) -> (N, C, *S_out).
    """
    N, C = x.shape[:2]
    flat = x.reshape(N, C, -1)
    return np.take_along_axis(flat, indices.reshape(N, C, -1), axis=2).reshape(indices.shape)


def unpool_output_size(spatial, kernel_size, stride, padding, output_size=None, *, name="max_unpool"):
    """The size max unpooling returns, per spatial axis: PyTorch's ``(S - 1) * stride - 2P + F`` unless
    ``output_size`` names one of the sizes a max pool maps to ``spatial`` (within ``stride`` of it).

    Args:
        spatial: the pooled input's spatial sizes. kernel_size, stride, padding: per-axis ints (the pool's).
        output_size: None, or the wanted sizes (per spatial axis; a full (N, C, *S) shape also works).

    Raises:
        ShapeError: an output_size that is not within [default - stride, default + stride) on some axis, or
            an axis with no positions.
    """
    default = tuple((n - 1) * s - 2 * p + k for n, k, s, p in zip(spatial, kernel_size, stride, padding,
                                                                     strict=True))
    if output_size is None:
        out = default
    else:
        out = tuple(int(n) for n in output_size)[-len(spatial):]
        if len(tuple(output_size)) not in (len(spatial), len(spatial) + 2):
            raise ShapeError(f"{name}: received output_size={tuple(output_size)}; expected {len(spatial)} "
                             f"spatial sizes (or a full shape with batch and channels).")
        for n, d, s in zip(out, default, stride, strict=True):
            if not d - s < n < d + s:
                raise ShapeError(f"{name}: received output_size={tuple(output_size)}; each size must lie "
                                 f"between {tuple(d - s + 1 for d, s in zip(default, stride))} and "
                                 f"{tuple(d + s - 1 for d, s in zip(default, stride))} for an input "
                                 f"of spatial size {tuple(spatial)}.")
    if any(n < 1 for n in out):
        raise ShapeError(f"{name}: the output would have spatial size {out}; every axis needs at least 1.")
    return out


def max_unpool(x, indices, output_spatial, *, name="max_unpool"):
    """Place each value of x at its flat index in a zero volume (the inverse of max pooling's selection).

    Shape: x (N, C, *S_in), indices (N, C, *S_in) -> y (N, C, *output_spatial), x's dtype.

    Args:
        x: the pooled values. indices: integer flat positions inside each (N, C) plane of the output, as
            max pooling with ``return_indices=True`` gives them. output_spatial: the output's spatial sizes
            (see :func:`unpool_output_size`).

    Returns:
        ``(y, cache)``. When two values share an index the later one (in flat order) is kept.

    Raises:
        ShapeError: indices of another shape than x, or an index outside the output plane.
        TypeError: indices that are not integers.
    """
    indices = np.asarray(indices)
    if indices.shape != x.shape:
        raise ShapeError(f"{name}: indices have shape {indices.shape} but the input has shape {x.shape}; "
                         f"pass the indices that the max pool returned with this output.")
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"{name}: expected integer indices, received dtype {indices.dtype}.")
    plane = math.prod(output_spatial)
    if indices.size and (indices.min() < 0 or indices.max() >= plane):
        raise ShapeError(f"{name}: found an index in [{indices.min()}, {indices.max()}] outside the output "
                         f"plane of {plane} positions (spatial size {tuple(output_spatial)}).")
    N, C = x.shape[:2]
    y = np.zeros(N * C * plane, x.dtype)
    y[_plane_offsets(indices.astype(np.int64, copy=False), plane).ravel()] = x.ravel()
    return y.reshape(N, C, *output_spatial), dict(indices=indices)


def max_unpool_backward(dy, cache):
    """The gradient of :func:`max_unpool`: each input receives dy at its index. dy (N, C, *S_out) -> dx."""
    return gather(dy, cache["indices"])


def indices_from_switches(switches, geometry, spatial):
    """PyTorch's max-pool ``indices`` from the window-tap switches a max pool keeps.

    Shape: switches (N, C, *S_out) (the tap of each window's max, in row-major kernel order) ->
    (N, C, *S_out) int64 flat positions inside the unpadded (N, C) plane of size ``spatial``.

    Args:
        geometry: the pool's ``kernel_size``, ``stride``, ``dilation``, ``out`` and ``pads`` per axis (as
            :func:`cnnkit.geometry.pool_geometry` returns them).
    """
    taps = np.unravel_index(switches.astype(np.int64), geometry["kernel_size"])
    flat = np.zeros(switches.shape, np.int64)
    for axis, (t, s, d, (lo, _), n) in enumerate(zip(taps, geometry["stride"], geometry["dilation"],
                                                     geometry["pads"], spatial, strict=True)):
        shape = [1] * switches.ndim
        shape[2 + axis] = switches.shape[2 + axis]
        start = np.arange(switches.shape[2 + axis]).reshape(shape) * s - lo
        flat = flat * n + start + t * d  # the max never sits in padding, so the position is inside
    return flat
