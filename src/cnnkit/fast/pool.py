"""Fast pooling: max, average, power-average (L_p) and blur over sliding windows, plus global pools.

Speeds up: every kernel of :mod:`cnnkit.reference.pool` (same signatures, same results; measured 1.5-3x
on max pooling, docs/performance-elementwise.md), for every shape; the dispatch uses them by default.

Layout: ``x`` is (N, C, *S) (NCHW for 2-D). Pooling works on every depth slice independently: the notes'
W x H x D volume keeps its depth D = C and shrinks in W and H.

Every windowed kernel here loops over the F x F kernel *taps* (at most prod(F) iterations), never over
pixels: tap ``i`` reads one strided slice of the padded input that holds, for every output position at
once, the input value under that tap. Backward scatters gradients through the same slices (the adjoint of
the gather, like ``col2im``).

Two tricks make those loops fast; both only reorganise memory, the arithmetic is the same:

- the max, average and blur kernels read the taps from a copy of the input regrouped by stride phase
  (:class:`_Phases`), where every tap is one long run of memory instead of many short strided rows;
- they work through the batch in chunks of a few MB (:mod:`cnnkit.runtime`), so that the
  dozen NumPy passes of a kernel find their data in the cache instead of main memory.

Sizes come from the one output-size rule (:func:`cnnkit.geometry.window_geometry`, through
:func:`cnnkit.geometry.pool_geometry`): ``fit="error"`` raises when the windows do not tile the
input, ``fit="crop"`` is PyTorch's floor rule and ``fit="pad"`` its ``ceil_mode=True``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from cnnkit.fast.activation import keep_where
from cnnkit.fast.im2col import pad, unpad
from cnnkit.geometry import padding_pairs, pool_geometry, window_slices
from cnnkit.layout import copy_as, empty_as, memory_order
from cnnkit.reference.pool import window_divisor
from cnnkit.runtime import COLUMNS, over_batch, workspace


def _taps(geometry):
    """(tap index, the slice of the padded input that this tap reads for every output position)."""
    g = geometry
    for i, offset in enumerate(itertools.product(*map(range, g["kernel_size"]))):
        yield i, window_slices(offset, g["dilation"], g["stride"], g["out"])


def _window_sum(xp, geometry, weights=None):
    """sum over each window of xp (times ``weights[tap]`` when given): (N, C, *S_padded) -> (N, C, *S_out)."""
    y = None
    for i, window in _taps(geometry):
        term = xp[window] if weights is None else xp[window] * weights[i]
        if y is None:
            y = np.array(term, copy=True)
        else:
            y += term
    return y


def _scatter(dy_per_tap, padded_shape, geometry, dtype):
    """The adjoint of a window gather: add ``dy_per_tap(i, window)`` into the input under tap i, unpad."""
    dxp = np.zeros(padded_shape, dtype=dtype)
    for i, window in _taps(geometry):
        dxp[window] += dy_per_tap(i, window)
    return np.ascontiguousarray(unpad(dxp, geometry["pads"]))


class _Phases:
    """The padded input regrouped by stride phase and flattened: every kernel tap reads one run of memory.

    Tap offset o (times dilation d) of windows with stride s reads the padded input at ``s*j + o*d`` for
    the outputs j = 0..n-1: along each axis the *phase* ``r = o*d % s`` (every s-th position from r),
    shifted by ``a = o*d // s``. Stored phase by phase with the spatial axes flattened, that read is the
    contiguous run ``phases[r][flat(a) : flat(a) + n_1 * Q_2 * ... * Q_nd]`` (Q: positions per phase and
    axis), which NumPy processes in long SIMD loops instead of one short strided row at a time (2-4x
    faster per tap on 32x32 and 56x56 maps). The run is *wide*: besides the n_k outputs it computes
    ``Q_k - n_k`` throw-away ones along every axis but the first (dropped by :meth:`crop`), and it may
    read past the last phase row, so every phase has a spare row.
    """

    def __init__(self, spatial, geometry):
        g = geometry
        self.spatial, self.stride, self.pads, self.out = tuple(spatial), g["stride"], g["pads"], g["out"]
        padded = [n + lo + hi for n, (lo, hi) in zip(spatial, self.pads, strict=True)]
        self.Q = tuple(-(-p // s) for p, s in zip(padded, self.stride, strict=True))
        self.wide = (self.out[0], *self.Q[1:])  # the outputs one run computes
        self.length = math.prod(self.wide)
        self.size = math.prod(self.Q) + math.prod(self.Q[1:])  # + the spare row
        self.rounded = tuple(q * s for q, s in zip(self.Q, self.stride, strict=True))  # whole phases
        self.single = all(s == 1 for s in self.stride)
        # every padded position lies inside x: nothing but the spare row needs the fill value
        self.covered = all(lo == hi == 0 and p % s == 0
                           for (lo, hi), p, s in zip(self.pads, padded, self.stride, strict=True))

    def run(self, phases, window):
        """The wide run of ``phases`` (N, C, phase, size) read by the tap of ``window`` (from _taps)."""
        starts = [axis.start for axis in window[1:]]  # window = (..., slice per spatial axis)
        r = np.ravel_multi_index([t % s for t, s in zip(starts, self.stride)], self.stride)
        a = np.ravel_multi_index([t // s for t, s in zip(starts, self.stride)], self.Q)
        return phases[:, :, r, a:a + self.length]

    def _grid(self, phases):
        """(N, C, phase, size) -> the (N, C, *stride, *Q) view of the phase positions (no spare rows)."""
        return phases[..., :math.prod(self.Q)].reshape(*phases.shape[:2], *self.stride, *self.Q)

    def _split(self, xp):
        """Padded input (N, C, *(stride * Q)) as a (N, C, *stride, *Q) view: position s*q + r -> [r, q]."""
        nd = len(self.Q)
        view = xp.reshape(*xp.shape[:2], *(n for q, s in zip(self.Q, self.stride) for n in (q, s)))
        return view.transpose(0, 1, *range(3, 2 + 2 * nd, 2), *range(2, 2 + 2 * nd, 2))

    def _inside(self):
        """Where x sits in the padded input."""
        return (..., *(slice(lo, lo + n) for (lo, _), n in zip(self.pads, self.spatial, strict=True)))

    def load(self, x, fill, name=COLUMNS):
        """x (N, C, *S) -> phases (N, C, prod(stride), size) in reused memory, padding = ``fill``.

        One transposing copy does the regrouping (a copy per phase reads every cache line once per
        phase: 3x slower for 2x2 phases).
        """
        N, C = x.shape[:2]
        phases = workspace(name, (N, C, math.prod(self.stride), self.size), x.dtype)
        phases[..., math.prod(self.Q):] = fill  # the spare rows
        if self.single:  # stride 1: the one phase is the padded input itself
            padded = self._grid(phases).reshape(N, C, *self.Q)
            if not self.covered:
                padded.fill(fill)
            padded[self._inside()] = x
        elif self.covered and x.flags.c_contiguous:
            self._grid(phases)[...] = self._split(x)
        else:
            xp = workspace(name + ".padded", (N, C, *self.rounded), x.dtype)
            xp.fill(fill)
            xp[self._inside()] = x
            self._grid(phases)[...] = self._split(xp)
        return phases

    def zeros(self, shape, dtype, name=COLUMNS):
        """Phases of zeros, in reused memory, to scatter gradients into; :meth:`store` makes them dx."""
        phases = workspace(name, (*shape[:2], math.prod(self.stride), self.size), dtype)
        phases.fill(0)
        return phases

    def store(self, phases, out):
        """The adjoint of :meth:`load` for stride 1 (padding dropped): phases -> ``out`` (N, C, *S)."""
        out[...] = self._grid(phases).reshape(*phases.shape[:2], *self.Q)[self._inside()]
        return out

    def widen(self, y, name):
        """The inverse of :meth:`crop`, in reused memory: (N, C, *S_out) -> (N, C, length), 0 elsewhere."""
        wide = workspace(name, (*y.shape[:2], self.length), y.dtype)
        if self.wide != self.out:
            wide.fill(0)
        self.crop(wide)[...] = y
        return wide

    def crop(self, wide):
        """(N, C, length) wide outputs -> the (N, C, *S_out) view of the real ones."""
        return wide.reshape(*wide.shape[:2], *self.wide)[(..., *(slice(0, n) for n in self.out))]


def _window_sum_chunk(x, g, layout, weights, y):
    """y = sum over each window of x (times ``weights[tap]`` when given), on one batch chunk, into y.

    Taps sharing a weight are added up first and multiplied once (the 3x3 binomial filter has three
    distinct weights: 11 passes over the outputs instead of 17).
    """
    phases = layout.load(x, 0)
    shape = (*x.shape[:2], layout.length)
    exact = layout.wide == layout.out
    total = y.reshape(shape) if exact else workspace("pool.y", shape, x.dtype)
    groups = {}  # weight -> the taps that have it, in tap order
    for i, window in _taps(g):
        groups.setdefault(None if weights is None else weights[i], []).append(window)
    for k, (weight, windows) in enumerate(groups.items()):
        part = total if k == 0 else workspace("pool.part", shape, x.dtype)
        np.copyto(part, layout.run(phases, windows[0]))
        for window in windows[1:]:
            part += layout.run(phases, window)
        if weight is not None and weight != 1:
            part *= weight
        if k:
            total += part
    if not exact:
        np.copyto(y, layout.crop(total))


def _scatter_chunk(dx, g, layout, arrays, term):
    """The adjoint of a window gather on one batch chunk: dx = the sum over taps i of ``term(i, *arrays)``
    placed under tap i (zero elsewhere).

    ``arrays`` (N, C, *S_out) reach ``term`` in the grid the taps use. When windows do not overlap,
    ``term(i, *arrays, out=view)`` writes straight into dx; otherwise ``term(i, *arrays)`` returns what to
    add.
    """
    overlap = _windows_overlap(g)
    if overlap and layout.single:
        # Stride 1: add up in the padded input's runs of memory (see _Phases), then copy its interior out.
        # (With a stride, regrouping the phases back writes with a stride and costs more than it saves.)
        arrays = [layout.widen(a, f"pool.scatter{k}") for k, a in enumerate(arrays)]
        dphases = layout.zeros(dx.shape, dx.dtype)
        for i, window in _taps(g):
            layout.run(dphases, window)[...] += term(i, *arrays)
        layout.store(dphases, out=dx)
        return
    padded = any(lo or hi for lo, hi in g["pads"])
    dxp = empty_as(dx, _padded_shape(dx.shape, g), dx.dtype, scratch="pool.dxp") if padded else dx
    dxp.fill(0)
    for i, window in _taps(g):
        if overlap:
            dxp[window] += term(i, *arrays)
        else:  # every input is under at most one window: write, nothing to add
            term(i, *arrays, out=dxp[window])
    if padded:
        dx[...] = unpad(dxp, g["pads"])


def _over_chunks(x_shape, dtype, work, like=None):
    """A new (N, C, *S) array filled by ``work(chunk, out)`` for the batch chunks (see batching.py), in
    the memory layout of ``like`` if given (see :func:`cnnkit.layout.empty_as`)."""
    out = np.empty(x_shape, dtype) if like is None else empty_as(like, x_shape, dtype)
    over_batch(lambda b: work(b, out[b]), x_shape[0], math.prod(x_shape[1:]) * np.dtype(dtype).itemsize)
    return out


# -- max pooling ------------------------------------------------------------------------------------------

def max_poolnd(x, kernel_size, stride=None, padding=0, dilation=1, fit="error", *, nd=None, name="max_pool"):
    """Max over each window, in 1, 2 or 3 spatial dimensions.

    Shape:
        x (N, C, *S) -> y (N, C, *S_out), per axis ``S_out = (S - F_eff + 2P) / stride + 1`` with
        ``F_eff = dilation * (kernel_size - 1) + 1`` (rounded as ``fit`` says).

    Padding is -inf so that it never wins a max (PyTorch's rule); so are the extra far-side positions
    that ``fit="pad"`` adds. Ties go to the first max in row-major window order; a NaN propagates.

    Args:
        x: (N, C, *S) floating-point array. kernel_size (F), stride=None (= kernel_size), padding (P)=0,
        dilation=1, fit="error": as :func:`pool_geometry`. nd: the expected number of spatial axes (None:
        any). name: prefix of error messages.

    Returns:
        ``(y, cache)``: y has x's dtype; the cache holds the *switches*, the tap index of the max of every
        window, so that :func:`max_poolnd_backward` routes each gradient to the one input that won.

    Raises:
        ValueError/TypeError: a bad kernel_size, stride, dilation, padding or fit (as Layer arguments).
        ShapeError: x is not (nd + 2)-D; F_eff > S + 2P on some axis; with fit="error", S_out is not an
            integer.
    """
    y, switches, g = _max_pool(x, (kernel_size, stride, padding, dilation, fit), nd, name, switches=True)
    return y, dict(geometry=g, switches=switches, padded_shape=_padded_shape(x.shape, g))


def max_poolnd_inference(x, kernel_size, stride=None, padding=0, dilation=1, fit="error", *, nd=None,
                         name="max_pool"):
    """:func:`max_poolnd` when no backward follows (``cnnkit.no_grad()``): y only, ``(y, None)``; one
    maximum per tap instead of four operations (the switches are what a backward reads)."""
    return _max_pool(x, (kernel_size, stride, padding, dilation, fit), nd, name, switches=False)[0], None


def _max_pool(x, window, nd, name, *, switches):
    """(y, switches or None, geometry): the chunks of :func:`_max_pool_chunk` over the batch."""
    g = pool_geometry(x.shape, *window, nd=nd, name=name)
    switch_type = np.min_scalar_type(math.prod(g["kernel_size"]) - 1)  # uint8 up to 16x16 kernels
    if _channels_last_windows(x, g):
        y = empty_as(x, (*x.shape[:2], *g["out"]), x.dtype)
        s = empty_as(x, y.shape, switch_type) if switches else None
        over_batch(lambda b: _max_pool_chunk_last(x[b], g, y[b], None if s is None else s[b]), len(x),
                   x[:1].nbytes)
        return y, s, g
    layout = _Phases(x.shape[2:], g)
    y = np.empty((*x.shape[:2], *g["out"]), x.dtype)
    s = np.empty(y.shape, switch_type) if switches else None
    over_batch(lambda b: _max_pool_chunk(x[b], g, layout, y[b], None if s is None else s[b]), len(x),
               x[:1].nbytes)
    return y, s, g


def _channels_last_windows(x, g) -> bool:
    """Pool channels-last memory where it lies (:func:`_max_pool_chunk_last`): 2-D windows that do not
    overlap, on channels-last x with several channels. Copying it into NCHW phases read it across its
    cache lines: 1.4-2.6x the time of the same pooling on NCHW input."""
    return (x.ndim == 4 and x.shape[1] > 1 and memory_order(x) == "channels-last"
            and not x.flags.c_contiguous and not _windows_overlap(g))


def _max_taps(views, y, switches, better, won):
    """y = the max over the taps' views (``views()`` iterates them in tap order), and in ``switches`` (if
    not None) the index of the tap that gave it, with ``better`` and ``won`` as scratch arrays of y's
    shape. A NaN wins its window: y is NaN there, and its switch is the window's first NaN, as in the
    reference kernel and PyTorch (found in a second pass over the taps, only when y has a NaN)."""
    for i, v in enumerate(views()):
        if i == 0:
            np.copyto(y, v)
            continue
        if switches is not None:
            # Strictly greater: a tie keeps the first max in row-major window order, as PyTorch does.
            np.greater(v, y, out=better)
            # switches = i where better. Taps come in increasing order, so every switch so far is < i and
            # max(switches, better * i) does it without a masked copy (a mispredicted branch per element).
            np.multiply(better, switches.dtype.type(i), out=won)
            np.maximum(switches, won, out=switches)
        np.maximum(y, v, out=y)  # (not copyto: np.maximum propagates a NaN instead of hiding it)
    if switches is not None and y.size and np.isnan(np.max(y)):  # (max: one pass, no temporary array)
        open_nan = np.isnan(y)  # windows whose first NaN is still to be found
        for i, v in enumerate(views()):
            first = open_nan & np.isnan(v)
            switches[first] = i
            open_nan &= ~first


def _max_pool_chunk(x, g, layout, y, switches):
    """max_poolnd on one chunk of the batch, into y and switches (slices of the whole outputs; switches
    None: y only)."""
    phases = layout.load(x, -np.inf)
    shape = (*x.shape[:2], layout.length)
    exact = layout.wide == layout.out  # no throw-away outputs: compute in the outputs themselves
    y_wide = y.reshape(shape) if exact else workspace("pool.y", shape, x.dtype)
    s_wide = better = won = None
    if switches is not None:
        s_wide = switches.reshape(shape) if exact else workspace("pool.switches", shape, switches.dtype)
        s_wide.fill(0)
        better, won = workspace("pool.better", shape, bool), workspace("pool.won", shape, switches.dtype)
    _max_taps(lambda: (layout.run(phases, window) for _, window in _taps(g)), y_wide, s_wide, better, won)
    if not exact:
        np.copyto(y, layout.crop(y_wide))
        if switches is not None:
            np.copyto(switches, layout.crop(s_wide))


def _max_pool_chunk_last(x, g, y, switches):
    """:func:`_max_pool_chunk` for channels-last x, y and switches: each tap reads a strided window of the
    (padded) input in place, C numbers in a row at every position, no phases."""
    xp = x
    if any(lo or hi for lo, hi in g["pads"]):
        padded = empty_as(x, _padded_shape(x.shape, g), x.dtype, scratch=COLUMNS)
        xp = pad(x, g["pads"], -np.inf, buffer=padded)
    better = won = None
    if switches is not None:
        switches.fill(0)
        better = empty_as(y, y.shape, bool, scratch="pool.better")
        won = empty_as(y, y.shape, switches.dtype, scratch="pool.won")
    _max_taps(lambda: (xp[window] for _, window in _taps(g)), y, switches, better, won)


def _padded_shape(shape, geometry, sign=1):
    """(N, C, *S) -> (N, C, *S_padded); sign=-1 goes back."""
    pads = geometry["pads"]
    return (*shape[:2], *(n + sign * (lo + hi) for n, (lo, hi) in zip(shape[2:], pads, strict=True)))


def _windows_overlap(geometry) -> bool:
    """True when some input position lies under two windows (then backward must add, not assign)."""
    g = geometry
    return any(d != 1 or s < k for k, s, d in zip(g["kernel_size"], g["stride"], g["dilation"], strict=True))


def max_poolnd_backward(dy, cache):
    """The gradient of :func:`max_poolnd`: each dy goes to the argmax of its window, zero elsewhere.

    Shape: dy (N, C, *S_out) -> dx (N, C, *S), dx.dtype = dy.dtype.

    Args:
        dy: the gradient of y. cache: from :func:`max_poolnd`.

    Returns:
        dx; where overlapping windows share a winner, their dy are summed.
    """
    g, switches = cache["geometry"], cache["switches"]
    x_shape = _padded_shape(cache["padded_shape"], g, -1)
    layout = _Phases(x_shape[2:], g)
    if memory_order(dy) != memory_order(switches):  # dy in the switches' layout: one pass over it
        dy = copy_as(switches, dy)
    return _over_chunks(x_shape, dy.dtype,  # dx in the switches' layout (channels-last: see _max_pool)
                        lambda b, dx: _scatter_chunk(dx, g, layout, (dy[b], switches[b]), _winners), switches)


def _winners(i, dy, switches, out=None):
    """dy where tap i won the window, else 0: what max pooling scatters under tap i."""
    won = np.equal(switches, i, out=empty_as(switches, switches.shape, bool, scratch="pool.won"))
    if out is None:
        out = empty_as(switches, dy.shape, dy.dtype, scratch="pool.routed")
    return keep_where(won, dy, out=out)


# -- average and L_p pooling ------------------------------------------------------------------------------

def avg_poolnd(x, kernel_size, stride=None, padding=0, count_include_pad=True, fit="error", *, nd=None,
               name="avg_pool"):
    """Mean over each window.

    Shape: x (N, C, *S) -> y (N, C, *S_out), ``S_out = (S - F + 2P) / stride + 1`` per axis (no
    dilation), rounded as ``fit`` says.

    Args:
        x: (N, C, *S) floating-point array. kernel_size (F), stride=None (= kernel_size), padding (P)=0,
        fit="error": as :func:`pool_geometry`. count_include_pad=True: see below. nd, name: as
        :func:`max_poolnd`.

    Returns:
        ``(y, cache)``: y has x's dtype; the cache holds the geometry and the divisor of every window.

    Raises:
        ValueError/TypeError: a bad kernel_size, stride, padding or fit (as Layer arguments).
        ShapeError: x is not (nd + 2)-D; F_eff > S + 2P on some axis; with fit="error", S_out is not an
            integer.

    The divisor follows PyTorch: with ``count_include_pad`` it is the window clipped to the zero-padded
    input (``padding`` counts, the extra far-side zeros of ``fit="pad"`` do not); without it, only the
    input values inside the window count.
    """
    g = pool_geometry(x.shape, kernel_size, stride, padding, 1, fit, nd=nd, name=name)
    user_pads = padding_pairs(padding, len(g["out"]), g["kernel_size"], g["dilation"])
    divisor = window_divisor(x.shape[2:], g, user_pads, count_include_pad, x.dtype)
    layout = _Phases(x.shape[2:], g)

    def chunk(b, y):
        _window_sum_chunk(x[b], g, layout, None, y)
        y /= divisor

    y = _over_chunks((*x.shape[:2], *g["out"]), x.dtype, chunk)
    return y, dict(geometry=g, divisor=divisor, padded_shape=_padded_shape(x.shape, g))


def avg_poolnd_backward(dy, cache):
    """The gradient of :func:`avg_poolnd`: every input in a window gets dy / divisor (summed over windows).

    Shape: dy (N, C, *S_out) -> dx (N, C, *S), dx.dtype = dy.dtype.

    Args:
        dy: the gradient of y. cache: from :func:`avg_poolnd`.

    Returns:
        dx.
    """
    g = cache["geometry"]
    x_shape = _padded_shape(cache["padded_shape"], g, -1)
    layout = _Phases(x_shape[2:], g)

    def chunk(b, dx):
        share = np.divide(dy[b], cache["divisor"], out=workspace("pool.share", dy[b].shape, dy.dtype))
        _scatter_chunk(dx, g, layout, (share,), lambda i, share, out=None: share if out is None else
                       np.copyto(out, share))

    return _over_chunks(x_shape, dy.dtype, chunk)


def lp_poolnd(x, norm_type, kernel_size, stride=None, fit="error", *, nd=None, name="lp_pool"):
    """Power-average pooling: the L_p norm of each window, ``(sum |x|^p) ** (1/p)``; p=2 is L2 pooling.

    Shape: x (N, C, *S) -> y (N, C, *S_out), ``S_out = (S - F) / stride + 1`` per axis (no padding, no
    dilation), rounded as ``fit`` says. ``fit="pad"`` zero-pads the far side, which adds nothing to a
    window's norm.

    Args:
        x: (N, C, *S) floating-point array. norm_type (p): a real number, not checked here (the layer
        requires a finite p >= 1). kernel_size (F), stride=None (= kernel_size), fit="error": as
        :func:`pool_geometry`. nd, name: as :func:`max_poolnd`.

    Returns:
        ``(y, cache)``: y has x's dtype; the cache holds the padded input, y and p.

    Raises:
        ValueError/TypeError: a bad kernel_size, stride or fit (as Layer arguments).
        ShapeError: x is not (nd + 2)-D; F_eff > S on some axis; with fit="error", S_out is not an
            integer.

    This is PyTorch's ``lp_pool2d`` wherever PyTorch's result is a norm (even p, or x >= 0 as after a
    ReLU). PyTorch raises x (not |x|) to the power p, which is NaN or not a norm for odd or fractional p
    and negative inputs, and with ``ceil_mode`` it rescales partial windows by kernel area / window area;
    here a partial window is the norm of what it covers. The gradient of a window whose norm is 0 is 0.
    """
    p = float(norm_type)  # a Python float keeps float32 arrays float32 (a NumPy float64 would upcast)
    g = pool_geometry(x.shape, kernel_size, stride, 0, 1, fit, nd=nd, name=name, max_padding=0)
    xp = pad(x, g["pads"])
    y = _window_sum(np.abs(xp) ** p, g) ** (1.0 / p)
    return y, dict(geometry=g, xp=xp, y=y, p=p)


def lp_poolnd_backward(dy, cache):
    """The gradient of :func:`lp_poolnd`: with y = (sum |x|^p)^(1/p), dy/dx = y^(1-p) |x|^(p-1) sign(x).

    Shape: dy (N, C, *S_out) -> dx (N, C, *S), dx.dtype = dy.dtype.

    Args:
        dy: the gradient of y. cache: from :func:`lp_poolnd`.

    Returns:
        dx, summed over overlapping windows; a window whose norm is 0 passes no gradient.
    """
    xp, y, p = cache["xp"], cache["y"], cache["p"]
    y_power = y ** (p - 1)
    scale = np.zeros_like(dy)
    np.divide(dy, y_power, out=scale, where=y_power > 0)  # a window of zeros has gradient 0, not inf
    slope = np.sign(xp) * np.abs(xp) ** (p - 1)  # d|x|^p/dx / p, once on the padded input, shared by taps
    return _scatter(lambda i, window: scale * slope[window], xp.shape, cache["geometry"], dy.dtype)


# -- fixed-filter blur ------------------------------------------------------------------------------------

def blurnd(x, kernel, stride=1, padding=0, fit="error", *, name="blur"):
    """One fixed filter applied to every channel (a depthwise convolution with a shared, frozen kernel).

    Shape: x (N, C, *S), kernel (*F) -> y (N, C, *S_out), ``S_out = (S - F + 2P) / stride + 1`` per axis,
    rounded as ``fit`` says; ``y[n, c] = sum_taps kernel[t] * x_padded[n, c, stride * j + t]``.

    Written as a weighted window sum (one multiply-add per tap), which is all a depthwise filter shared by
    every channel needs.

    Args:
        x: (N, C, *S) floating-point array. kernel: array-like of rank nd = x.ndim - 2 (cast to x's dtype).
        stride=1, padding=0, fit="error": as :func:`pool_geometry`. name: prefix of error messages.

    Returns:
        ``(y, cache)``: y has x's dtype; the cache holds the geometry and the flat weights.

    Raises:
        ValueError/TypeError: a bad stride, padding or fit (as Layer arguments).
        ShapeError: x is not (kernel.ndim + 2)-D; F > S + 2P on some axis; with fit="error", S_out is not
            an integer.
    """
    kernel = np.asarray(kernel)
    # Blur2d's padding follows from its filter size, so a ShapeError offers stride and fit only.
    g = pool_geometry(x.shape, kernel.shape, stride, padding, 1, fit, nd=kernel.ndim, name=name,
                      max_padding=0)
    weights = kernel.astype(x.dtype, copy=False).reshape(-1)
    layout = _Phases(x.shape[2:], g)
    y = _over_chunks((*x.shape[:2], *g["out"]), x.dtype,
                     lambda b, y: _window_sum_chunk(x[b], g, layout, weights, y))
    return y, dict(geometry=g, weights=weights, padded_shape=_padded_shape(x.shape, g))


def blurnd_backward(dy, cache):
    """The gradient of :func:`blurnd`: the transposed filter, scattered back through the same taps.

    Shape: dy (N, C, *S_out) -> dx (N, C, *S), dx.dtype = dy.dtype.

    Args:
        dy: the gradient of y. cache: from :func:`blurnd`.

    Returns:
        dx.
    """
    weights, g = cache["weights"].astype(dy.dtype, copy=False), cache["geometry"]
    x_shape = _padded_shape(cache["padded_shape"], g, -1)
    layout = _Phases(x_shape[2:], g)

    def chunk(b, dx):
        products = {}  # weight -> dy * weight, computed once for all the taps that share the weight

        def weighted(i, dy, out=None):
            if out is not None:
                return np.multiply(dy, weights[i], out=out)
            if weights[i] not in products:
                buffer = workspace(f"pool.product{len(products)}", dy.shape, dy.dtype)
                products[weights[i]] = np.multiply(dy, weights[i], out=buffer)
            return products[weights[i]]

        _scatter_chunk(dx, g, layout, (dy[b],), weighted)

    return _over_chunks(x_shape, dy.dtype, chunk)


# -- global pools -------------------------------------------------------------------------------------------

def global_avg_pool(x):
    """Mean over all spatial positions: ``y[n, c] = sum_s x[n, c, s] / prod(S)``.

    Shape: x (N, C, *S) -> y (N, C, 1, ..., 1).

    Args:
        x: (N, C, *S) floating-point array.

    Returns:
        ``(y, cache)``: y has x's dtype; the cache is the input shape.
    """
    if x.flags.c_contiguous:  # einsum sums the contiguous (N, C, H*W) view 3x faster than mean over 2 axes
        flat = x.reshape(*x.shape[:2], -1)
        y = (np.einsum("nci->nc", flat) / flat.shape[2]).reshape(*x.shape[:2], *(1,) * (x.ndim - 2))
    else:
        y = x.mean(axis=tuple(range(2, x.ndim)), keepdims=True)
    return y, dict(x_shape=x.shape)


def global_avg_pool_backward(dy, cache):
    """The gradient of :func:`global_avg_pool`: each position gets dy / prod(S).

    Shape: dy (N, C, 1, ..., 1) -> dx (N, C, *S), a new array.

    Args:
        dy: the gradient of y. cache: from :func:`global_avg_pool`.

    Returns:
        dx.
    """
    shape = cache["x_shape"]
    return np.broadcast_to(dy / math.prod(shape[2:]), shape).copy()


def global_max_pool(x):
    """Max over all spatial positions: ``y[n, c] = max_s x[n, c, s]`` (the first max, or the first NaN).

    Shape: x (N, C, *S) -> y (N, C, 1, ..., 1).

    Args:
        x: (N, C, *S) floating-point array.

    Returns:
        ``(y, cache)``: y has x's dtype; the cache holds the input shape and the flat argmax per channel.

    Raises:
        ValueError (from ``argmax``): x has no spatial positions (prod(S) == 0).

    >>> y, cache = global_max_pool(np.array([[[[1, 9], [9, 2]]]], np.float32))
    >>> float(y[0, 0, 0, 0]), global_max_pool_backward(np.ones_like(y), cache)[0, 0].tolist()
    (9.0, [[0.0, 1.0], [0.0, 0.0]])
    """
    N, C = x.shape[:2]
    flat = x.reshape(N, C, -1)
    argmax = flat.argmax(axis=2)[..., None]  # the first max (or the first NaN), as PyTorch
    y = np.take_along_axis(flat, argmax, axis=2).reshape(N, C, *(1,) * (x.ndim - 2))
    return y, dict(x_shape=x.shape, argmax=argmax)


def global_max_pool_backward(dy, cache):
    """The gradient of :func:`global_max_pool`: dy goes to each channel's argmax, zero elsewhere.

    Shape: dy (N, C, 1, ..., 1) -> dx (N, C, *S), dx.dtype = dy.dtype.

    Args:
        dy: the gradient of y. cache: from :func:`global_max_pool`.

    Returns:
        dx.
    """
    shape = cache["x_shape"]
    dx = np.zeros((*shape[:2], math.prod(shape[2:])), dtype=dy.dtype)
    np.put_along_axis(dx, cache["argmax"], dy.reshape(*shape[:2], 1), axis=2)
    return dx.reshape(shape)


