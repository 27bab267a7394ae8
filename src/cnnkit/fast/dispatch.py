"""The one door between the textbook and the fast paths: which kernel computes an op for this shape.

Every op of :mod:`cnnkit.functional` asks here and calls what it gets: a :class:`Kernel`, a forward and
the backward that goes with its cache. The rules below are the only place where speed decisions are made;
their numbers sit in one table, :mod:`cnnkit.fast.tuning`, each with the line of why.

The rules are the default; ``cnnkit.runtime.configure(dispatch="measure")`` replaces them for convolutions
by measurement on this machine (:mod:`cnnkit.fast.measure`: time the eligible kernels of a layer shape
once, keep the fastest, remember it on disk). Two switches bypass both:
- ``algorithm=`` on a layer or functional op forces a kernel ("reference" is the textbook kernel of
  :mod:`cnnkit.reference`, which every op has);
- ``with reference_mode():`` makes every op run its reference kernel: for learning, debugging, and as a
  check of the fast kernels. Reference kernels start no thread and keep no scratch memory.

And one switch says whether a backward will follow: inside ``with no_grad():`` every op returns ``None`` as
its cache (:func:`cached`), so inference keeps no inputs, columns or switches alive between layers.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Callable
from typing import NamedTuple

from cnnkit.fast import activation, depthwise, im2col, measure, norm, pointwise, pool, winograd
from cnnkit.fast.tuning import (
    MEASURE_IMAGES,
    WINOGRAD_MIN_CHANNELS,
    WINOGRAD_MIN_CHANNELS_TRAINING,
    WINOGRAD_MIN_TILES,
)
from cnnkit.geometry import as_tuple, conv_geometry
from cnnkit.reference import activation as reference_activation
from cnnkit.reference import conv as reference_conv
from cnnkit.reference import norm as reference_norm
from cnnkit.reference import pool as reference_pool
from cnnkit.runtime import dispatch_policy


class Kernel(NamedTuple):
    """A forward ``f(x, ...) -> (y, cache)`` and the backward ``f_backward(dy, cache, ...)`` of its cache;
    ``inference``, if the kernel has one, is the forward to run when no backward follows (``(y, None)``)."""
    name: str
    forward: Callable
    backward: Callable
    inference: Callable | None = None


class Cached(NamedTuple):
    """What a functional op returns as its cache: the kernel's own cache and the backward that reads it."""
    backward: Callable
    data: object


_state = {"reference": False}
_grad = threading.local()  # grad mode is per thread, as PyTorch's: .enabled, True when never set


@contextlib.contextmanager
def reference_mode(enabled: bool = True):
    """Run every op on its reference kernel inside the block (``enabled=False``: the usual dispatch).

    A forced ``algorithm=`` other than "auto" still wins: it is an explicit request.

    >>> import numpy as np, cnnkit as ck
    >>> x, w = np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 3, 3), np.float32)
    >>> with ck.reference_mode():
    ...     y, cache = ck.functional.conv2d(x, w)
    >>> float(y[0, 0, 0, 0]), cache.backward.__module__
    (9.0, 'cnnkit.reference.conv')
    """
    before = _state["reference"]
    _state["reference"] = bool(enabled)
    try:
        yield
    finally:
        _state["reference"] = before


def in_reference_mode() -> bool:
    """True inside :func:`reference_mode`."""
    return _state["reference"]


@contextlib.contextmanager
def no_grad(enabled: bool = True):
    """Inference inside the block: every op returns ``None`` as its cache and layers keep nothing.

    Forward computes exactly what it computes in training, but no input, column matrix or argmax switch
    outlives the op that made it, so a network's memory holds a couple of activations at a time instead of
    all of them. A layer's backward after a forward in this block raises RuntimeError. Per thread, like
    PyTorch's grad mode: another thread (a server's training thread beside its inference thread) keeps
    its own; a kernel's own helper threads compute inside one op and need no flag. Usable as a decorator.
    ``enabled=False`` is the usual mode again inside (:func:`enable_grad`).

    >>> import numpy as np, cnnkit as ck
    >>> with ck.no_grad():
    ...     y, cache = ck.functional.relu(np.array([-1.0, 2.0]))
    >>> y.tolist(), cache
    ([0.0, 2.0], None)
    """
    before = is_grad_enabled()
    _grad.enabled = not enabled
    try:
        yield
    finally:
        _grad.enabled = before


def enable_grad():
    """Caches again inside the block, within a :func:`no_grad` block (batch norm's statistics need one)."""
    return no_grad(False)


def is_grad_enabled() -> bool:
    """False inside :func:`no_grad` (on this thread): ops return no cache and layers keep none."""
    return getattr(_grad, "enabled", True)


def cached(backward: Callable, data) -> Cached | None:
    """What an op returns as its cache: the kernel's cache with the backward that reads it, or ``None``
    inside :func:`no_grad`, where no backward follows and the kernel's cache is dropped on return."""
    return Cached(backward, data) if is_grad_enabled() else None


def without_cache(forward: Callable) -> Callable:
    """``forward`` (an op with one kernel, ``(y, cache)``) as a public face: ``(y, None)`` under
    :func:`no_grad`. The faces of single-kernel ops (linear, transposed and locally-connected convolutions)
    are this and nothing more."""
    @functools.wraps(forward)
    def face(*args, **kwargs):
        y, cache = forward(*args, **kwargs)
        return y, (cache if is_grad_enabled() else None)
    return face


def check_algorithm(algorithm, algorithms, *, name):
    """``algorithm`` if it is one of ``algorithms``; else ValueError listing them."""
    if algorithm not in algorithms:
        raise ValueError(f"{name}: Invalid algorithm {algorithm!r}, should be one of {algorithms}.")
    return algorithm


# -- ops with the reference kernel and one fast kernel ----------------------------------------------------

ALGORITHMS = ("auto", "reference", "fast")
# op -> (reference module, fast module): each holds `op` and `op_backward` with the same signature.
PAIRS = {op: (reference_pool, pool) for op in ("max_poolnd", "avg_poolnd", "lp_poolnd", "blurnd",
                                               "global_avg_pool", "global_max_pool")}
PAIRS |= {"batch_norm": (reference_norm, norm)}
PAIRS |= {op: (reference_activation, activation) for op in ("relu", "relu6", "leaky_relu", "elu", "sigmoid",
                                                             "tanh", "softmax", "add")}
_BACKWARD = {"relu6": "relu_backward"}  # relu6's gradient is relu's: dy where the mask holds


def kernel(op: str, algorithm="auto", *, name=None) -> Kernel:
    """The kernel of an op with a reference and one fast kernel (pooling, normalization, activations):
    the fast one, unless ``algorithm="reference"`` or inside :func:`reference_mode`. A fast module's
    ``<op>_inference`` (ReLU without its mask, max pooling without its switches) is the forward inside
    :func:`no_grad`."""
    check_algorithm(algorithm, ALGORITHMS, name=name or op)
    reference = algorithm == "reference" or algorithm == "auto" and _state["reference"]
    module = PAIRS[op][0 if reference else 1]
    return _for_grad_mode(Kernel("reference" if reference else "fast", getattr(module, op),
                                 getattr(module, _BACKWARD.get(op, f"{op}_backward")),
                                 None if reference else getattr(module, f"{op}_inference", None)))


def _for_grad_mode(chosen: Kernel) -> Kernel:
    """``chosen``, with its inference forward (if it has one) as the forward inside :func:`no_grad`."""
    if chosen.inference is not None and not is_grad_enabled():
        return chosen._replace(forward=chosen.inference)
    return chosen


def run(op: str, algorithm, *args, **kwargs):
    """``y, cache`` of ``op(*args, **kwargs)`` on the kernel :func:`kernel` picks; the cache carries the
    kernel's backward, which :func:`backward` calls (``None`` under :func:`no_grad`)."""
    chosen = kernel(op, algorithm, name=kwargs.get("name"))
    y, cache = chosen.forward(*args, **kwargs)
    return y, cached(chosen.backward, cache)


def backward(dy, cache: Cached, **kwargs):
    """The backward of the kernel that made ``cache`` (see :func:`run`)."""
    return cache.backward(dy, cache.data, **kwargs)


# -- convolution ------------------------------------------------------------------------------------------

CONV_ALGORITHMS = ("auto", "reference", "im2col", "winograd", "winograd2", "depthwise")
CONV_KERNELS = {
    "reference": Kernel("reference", reference_conv.convnd, reference_conv.convnd_backward),
    "im2col": Kernel("im2col", im2col.convnd, im2col.convnd_backward),
    "pointwise": Kernel("pointwise", pointwise.convnd, pointwise.convnd_backward),
    "winograd": Kernel("winograd", winograd.conv2d, winograd.conv2d_backward, winograd.conv2d_inference),
    "winograd2": Kernel("winograd2", winograd.conv2d_tile2, winograd.conv2d_backward,
                        winograd.conv2d_tile2_inference),
    "depthwise": Kernel("depthwise", depthwise.conv2d, depthwise.conv2d_backward),
}


def _conv_kernel(name: str) -> Kernel:
    """CONV_KERNELS[name], with its inference forward as the forward inside :func:`no_grad`."""
    return _for_grad_mode(CONV_KERNELS[name])


def choose_algorithm(weight_shape, stride, dilation, groups, algorithm="auto", *, name="conv", out=None,
                     batch=None):
    """Which convolution kernel computes a layer: the per-shape rules, or the forced ``algorithm`` checked.

    ``"auto"`` picks, where each measured faster than im2col (docs/performance.md): Winograd F(4x4, 3x3)
    for 2-D 3x3 stride-1 undilated layers with at least WINOGRAD_MIN_CHANNELS input channels per group
    (WINOGRAD_MIN_CHANNELS_TRAINING when a backward follows: outside :func:`no_grad`) and, when ``out``
    and ``batch`` are given, WINOGRAD_MIN_TILES tiles of 4x4 outputs in the batch (its
    filter transform costs 36 * C * K numbers per call, which a few tiles do not repay); "depthwise" for
    2-D layers with one input and one output channel per group; im2col for everything else.
    Inside :func:`reference_mode`, "auto" is "reference".

    Raises:
        ValueError: an unknown algorithm, or a forced one that cannot compute the layer. Layers call this
            at construction, so the mistake shows where it is made.

    >>> [choose_algorithm((64, C, 3, 3), (1, 1), (1, 1), 1) for C in (64, 3)]
    ['winograd', 'im2col']
    """
    check_algorithm(algorithm, CONV_ALGORITHMS, name=name)
    K, Cg, *F = weight_shape
    winograd_fits, depthwise_fits = _fits(weight_shape, stride, dilation, groups)
    if algorithm == "auto":
        if _state["reference"]:
            return "reference"
        tiles = math.inf if out is None or batch is None else batch * math.prod(-(-n // 4) for n in out)
        channels = WINOGRAD_MIN_CHANNELS_TRAINING if is_grad_enabled() else WINOGRAD_MIN_CHANNELS
        if winograd_fits and Cg >= channels and tiles >= WINOGRAD_MIN_TILES:
            return "winograd"
        return "depthwise" if depthwise_fits else "im2col"
    if algorithm in ("winograd", "winograd2") and not winograd_fits:
        raise ValueError(f"{name}: algorithm={algorithm!r} computes 2-D 3x3 convolutions with stride 1 and "
                         f"dilation 1; received kernel_size={tuple(F)}, stride={tuple(stride)}, "
                         f"dilation={tuple(dilation)}. Use algorithm='auto', 'im2col' or 'reference'.")
    if algorithm == "depthwise" and not depthwise_fits:
        raise ValueError(f"{name}: algorithm='depthwise' computes 2-D convolutions with groups = in_channels "
                         f"= out_channels; received weight {tuple(weight_shape)} with groups={groups}. "
                         f"Use algorithm='auto', 'im2col' or 'reference'.")
    return algorithm


def _fits(weight_shape, stride, dilation, groups) -> tuple[bool, bool]:
    """(Winograd can compute it, the depthwise kernel can compute it)."""
    K, Cg, *F = weight_shape
    return (F == [3, 3] and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1),
            len(F) == 2 and Cg == 1 and K == groups)


def conv(x, weight, stride, padding, dilation, groups, fit="error", algorithm="auto", *,
         name="conv", bias=None) -> Kernel:
    """The kernel for ``convnd(x, weight, bias, ...)``: :func:`choose_algorithm`, and the 1x1 kernel for
    im2col's layers whose columns are the input itself (1x1 filters, stride 1, no padding). With
    ``runtime.configure(dispatch="measure")`` (or a checkpoint's kernels pinned) "auto" asks
    :func:`cnnkit.fast.measure.choose` instead, among the kernels that can compute the layer."""
    nd = x.ndim - 2
    stride, dilation = as_tuple(stride, nd, "stride"), as_tuple(dilation, nd, "dilation")
    out, pads = conv_geometry(x.shape[2:], weight.shape[2:], stride, padding, dilation, fit, name=name)
    chosen = choose_algorithm(weight.shape, stride, dilation, groups, algorithm, name=name, out=out,
                              batch=len(x))
    if chosen == "im2col" and pointwise.fits(weight.shape, stride, pads):
        chosen = "pointwise"
    measured = dispatch_policy() == "measure" or measure.pinning()
    if measured and algorithm == "auto" and not _state["reference"]:
        chosen = _measured(chosen, (x, weight, bias, stride, padding, dilation, groups, fit), pads, name)
    return _conv_kernel(chosen)


def _measured(rule, args, pads, name) -> str:
    """The kernel :func:`cnnkit.fast.measure.choose` picks for ``convnd(*args)`` among those that can
    compute it (the rules' choice ``rule`` first, so that it wins ties), or ``rule`` if it picks none."""
    x, weight, _, stride, _, dilation, groups, _ = args
    winograd_fits, depthwise_fits = _fits(weight.shape, stride, dilation, groups)
    eligible = ["pointwise" if pointwise.fits(weight.shape, stride, pads) else "im2col",
                *["winograd", "winograd2"] * winograd_fits, *["depthwise"] * depthwise_fits]
    names = [rule, *(n for n in eligible if n != rule)]
    if len(names) == 1:
        return rule
    backward = is_grad_enabled()  # inference times forward only; training forward and backward
    entry = measure.conv_entry(x, weight, stride, pads, dilation, groups, backward=backward)
    sample = (x[:MEASURE_IMAGES], *args[1:])  # timed on the first images: the choice holds for the batch
    chosen = measure.choose(entry, names, lambda: measure.runs(
        {n: _conv_kernel(n) for n in names}, sample, {"name": name}, backward=backward),
        measure=dispatch_policy() == "measure")
    return chosen or rule
