"""Dispatch by measurement: time the kernels that can compute a layer once, keep the fastest, remember it.

The rules of :mod:`cnnkit.fast.dispatch` hold numbers measured on one machine (docs/performance.md); on
another CPU -- another BLAS kernel, other cache sizes -- the fastest kernel for a shape can be another one.
With ``cnnkit.runtime.configure(dispatch="measure")`` the first convolution of each *entry* (the op, the
shapes of x and the weight, stride, padding, dilation, groups, the dtype, the memory layout of x, the
elementwise and BLAS thread counts, and whether a backward follows) runs every kernel that can compute
it on the call's own arrays (the first MEASURE_IMAGES images of the batch) -- once untimed, then in turns,
timed, within MEASURE_BUDGET seconds -- and keeps the fastest for the whole batch. Measuring runs on the
main thread only: a layer called from worker threads (a batch cut into slices on threads) uses a choice
made before, else the rules.

Choices persist in ``~/.cache/cnnkit/dispatch-<key>.json`` (``$CNNKIT_CACHE_DIR`` or
``$XDG_CACHE_HOME/cnnkit`` when set), one file per machine and software: ``key`` hashes the CPU model,
its SIMD flags, NumPy's BLAS kernel (threadpoolctl), the SIMD targets NumPy runs, and the NumPy and cnnkit
versions, so an upgrade, another machine or a NumPy held to fewer instructions measures afresh. The file
is safe to delete (the shapes are measured again), written atomically (a temporary file renamed over
it: a reader never sees half a file, and concurrent writers each leave a whole one), and a file that
cannot be read is ignored with one warning and rewritten.

A checkpoint keeps the kernels its run chose (:func:`record`); a resumed run on the same machine uses them
again (:func:`pin`), so resuming stays bitwise exact even when the cache file was deleted meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cnnkit.fast.tuning import MEASURE_BUDGET, MEASURE_ROUNDS
from cnnkit.layout import is_channels_last
from cnnkit.runtime import blas_thread_count, elementwise_threads

__all__ = ["cache_key", "cache_path", "choose", "clock", "conv_entry", "fastest", "machine", "numpy_cpu",
           "numpy_simd", "pin", "pinning", "read_choices", "record", "reset", "runs", "write_choices"]

clock = time.perf_counter  # the timer; tests put a fake clock here to decide which kernel is "faster"
FORMAT = 1
_SIMD = ("sse", "ssse", "avx", "fma", "f16c", "amx", "vnni", "neon", "asimd", "sve")
_state: dict = {}  # machine, path, choices (loaded lazily), pins, used, warned; see reset()


def reset() -> None:
    """Forget what this process knows (the machine, the choices read or measured, pins, the warnings
    given); the cache file stays. For tests, and after changing $CNNKIT_CACHE_DIR."""
    _state.clear()
    _state.update(machine=None, path=None, choices=None, pins={}, used={}, warned=set(), layers={})


reset()


# -- the machine and the cache file ------------------------------------------------------------------------

def machine() -> dict[str, str]:
    """What the fastest kernel depends on besides the shape: CPU model, SIMD flags, NumPy's BLAS kernel,
    NumPy's version and the SIMD targets its loops run (fewer than the CPU has under
    ``NPY_DISABLE_CPU_FEATURES``, as ``python -m benchmarks --isa avx2`` sets it), cnnkit's version (read
    once per process)."""
    if _state["machine"] is None:
        flags = (_cpu_field("flags") or _cpu_field("Features")).split()  # x86 / ARM names of the line
        _state["machine"] = {"cpu": _cpu_field("model name") or platform.processor() or platform.machine(),
                             "flags": " ".join(sorted(f for f in flags if f.startswith(_SIMD))),
                             "blas": _blas_kernel(), "numpy": np.__version__, "numpy_simd": numpy_simd(),
                             "cnnkit": _cnnkit_version()}
    return dict(_state["machine"])


def cache_key(info: dict | None = None) -> str:
    """16 hex digits naming ``info`` (default: :func:`machine`): the cache file of this machine."""
    text = json.dumps(machine() if info is None else info, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_path(info: dict | None = None) -> Path:
    """``<cache folder>/dispatch-<key>.json`` (see the module's docstring for the folder)."""
    folder = os.environ.get("CNNKIT_CACHE_DIR") or (
        Path(os.environ["XDG_CACHE_HOME"]) / "cnnkit" if os.environ.get("XDG_CACHE_HOME")
        else Path.home() / ".cache" / "cnnkit")
    return Path(folder) / f"dispatch-{cache_key(info)}.json"


def read_choices(path) -> dict[str, dict]:
    """``{entry: {"kernel": name, "seconds": {...}}}`` from a cache file; {} if there is none, and {} with
    one warning per file if it cannot be read (it is rewritten at the next measurement)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        return _ignored(path, e)
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, dict) or not all(isinstance(c, dict) and isinstance(c.get("kernel"), str)
                                                for c in choices.values()):
        return _ignored(path, "no {entry: {kernel: ...}} table in it")
    return choices


def write_choices(path, choices: dict[str, dict], info: dict | None = None) -> None:
    """Write the cache file atomically: a temporary file in the same folder, renamed over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"format": FORMAT, "machine": machine() if info is None else info, "choices": choices},
                      indent=1, sort_keys=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as f:
            f.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _ignored(path, why):
    if str(path) not in _state["warned"]:
        _state["warned"].add(str(path))
        warnings.warn(f"cnnkit: ignoring the dispatch cache {path} ({why}); the kernels are measured again "
                      f"and the file rewritten. It is safe to delete.", RuntimeWarning, stacklevel=3)
    return {}


def _choices() -> dict[str, dict]:
    if _state["choices"] is None:
        _state["path"] = cache_path()
        _state["choices"] = read_choices(_state["path"])
    return _state["choices"]


def _remember(entry: str, kernel: str, seconds: dict[str, float]) -> None:
    choice = {"kernel": kernel, "seconds": {k: float(f"{v:.3g}") for k, v in seconds.items()}}
    _choices()[entry] = choice
    path = _state["path"]
    try:  # merge with what other processes wrote since this one read the file
        write_choices(path, {**read_choices(path), entry: choice})
    except OSError as e:  # a read-only home: the choice still holds for this process
        _ignored(path, f"cannot write it: {e}")


# -- timing ------------------------------------------------------------------------------------------------

def fastest(candidates: dict[str, Callable[[], object]], *, budget: float = MEASURE_BUDGET,
            rounds: int = MEASURE_ROUNDS, timer: Callable[[], float] | None = None) -> tuple[str, dict]:
    """``(name, {name: best seconds})``: the candidate whose fastest call was fastest; ties go to the first.

    Each candidate runs once untimed (scratch buffers, first-touch page faults, BLAS threads waking up),
    then the candidates take turns, timed, for at most ``rounds`` rounds and while ``budget`` seconds last
    (one round at least): taking turns spreads a burst of outside load over all of them, and the minimum
    is the least noisy estimate of what a call costs.

    Args:
        candidates: name -> a call of no arguments. timer: seconds now (default :data:`clock`).
    """
    timer = clock if timer is None else timer
    best = dict.fromkeys(candidates, math.inf)
    for run in candidates.values():
        run()
    start = timer()
    for _ in range(rounds):
        for name, run in candidates.items():
            t0 = timer()
            run()
            best[name] = min(best[name], timer() - t0)
        if timer() - start >= budget:
            break
    return min(best, key=best.get), best


def runs(kernels: dict, args: tuple, kwargs: dict, *, backward: bool) -> dict[str, Callable[[], None]]:
    """For :func:`fastest`: each kernel's forward on ``args``, and its backward (of an output-shaped
    gradient) too if a backward will follow the real call."""
    def once(kernel):
        def run():
            y, cache = kernel.forward(*args, **kwargs)
            if backward:
                kernel.backward(y, cache)
        return run
    return {name: once(kernel) for name, kernel in kernels.items()}


# -- choosing ----------------------------------------------------------------------------------------------

def conv_entry(x, weight, stride, pads, dilation, groups, *, backward: bool) -> str:
    """The name of a convolution call in the cache: everything its fastest kernel depends on."""
    layout = "channels-last" if is_channels_last(x) else "C" if x.flags.c_contiguous else "strided"
    pads = ",".join(f"{a}-{b}" for a, b in pads)
    return (f"conv {'train' if backward else 'infer'} x={_dims(x.shape)} w={_dims(weight.shape)} "
            f"stride={_dims(stride)} pad={pads} dilation={_dims(dilation)} groups={groups} {x.dtype} "
            f"{layout} threads={elementwise_threads()}/{blas_thread_count()}")


def choose(entry: str, names: list[str], candidates: Callable[[], dict], *, measure: bool) -> str | None:
    """The kernel for ``entry`` among ``names`` (the eligible kernels, the rules' choice first).

    A pin (:func:`pin`) wins, then a choice made before (this process, or the cache file), then this
    process's choice for the same layer at a larger batch (an epoch's smaller last batch is not measured
    again: that halved measurement's cost in a one-epoch run); else, with ``measure`` and on the main
    thread, :func:`fastest` of ``candidates()`` decides and the choice is kept.
    None: nothing known and nothing measured (the rules decide).
    """
    chosen = _state["pins"].get(entry)
    if chosen not in names:
        chosen = _choices().get(entry, {}).get("kernel")
    layer, batch = _layer(entry)
    known = _state["layers"].get(layer)
    if chosen not in names and known is not None and known[0] >= batch and known[1] in names:
        chosen = known[1]  # a smaller batch of a layer chosen for before (an epoch's last batch): the same
    if chosen not in names:
        if not measure or threading.current_thread() is not threading.main_thread():
            return None
        chosen, seconds = fastest(candidates())
        _remember(entry, chosen, seconds)
    if known is None or batch >= known[0]:
        _state["layers"][layer] = (batch, chosen)
    _state["used"][entry] = chosen
    return chosen


def _layer(entry: str) -> tuple[str, int]:
    """(the entry without its batch size, the batch size): ``conv_entry``'s ``x=NxCx...`` names both."""
    head, _, rest = entry.partition(" x=")
    batch, _, rest = rest.partition("x")
    return f"{head} x=*x{rest}", int(batch) if batch.isdigit() else 0


def record() -> dict:
    """What a checkpoint keeps: ``{"machine": cache key, "kernels": {entry: kernel}}`` of every choice
    :func:`choose` made in this process ({} if it made none: the rules decided everything)."""
    return {"machine": cache_key(), "kernels": dict(_state["used"])} if _state["used"] else {}


def pin(saved: dict | None) -> Callable[[], None]:
    """Use the kernels of ``saved`` (a :func:`record`, read back from a checkpoint) for their entries,
    whatever the dispatch policy, if it was made on this machine (same :func:`cache_key`); otherwise
    nothing changes. Returns the function that puts the pins back as they were."""
    before = _state["pins"]
    kernels = (saved or {}).get("kernels") or {}
    if kernels and saved.get("machine") == cache_key():
        _state["pins"] = {**before, **{str(k): str(v) for k, v in kernels.items()}}

    def unpin():
        _state["pins"] = before
    return unpin


def pinning() -> bool:
    """True while pins from a checkpoint are in force (the dispatch then consults :func:`choose`)."""
    return bool(_state["pins"])


def _dims(values) -> str:
    return "x".join(str(int(v)) for v in values)


def _cpu_field(name: str) -> str:
    """The first ``name : value`` of /proc/cpuinfo (Linux), else ''."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return ""


def _blas_kernel() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - a core dependency
        return "unknown"
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return f"{pool.get('internal_api')} {pool.get('version')} {pool.get('architecture')}"
    return "none"


def numpy_cpu() -> tuple[dict, list]:
    """NumPy's (CPU features it found, SIMD targets compiled in); empty when this NumPy does not say (its
    CPU tables are private: numpy._core from NumPy 2, numpy.core before). The benchmarks' ``--isa`` reads
    them too."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core import _multiarray_umath as umath
    return getattr(umath, "__cpu_features__", {}), list(getattr(umath, "__cpu_dispatch__", []))


def numpy_simd() -> str:
    """The SIMD targets NumPy compiled in that it runs on this CPU now, e.g. "X86_V3 X86_V4" ('' if none)."""
    features, targets = numpy_cpu()
    return " ".join(t for t in targets if features.get(t))


def _cnnkit_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cnnkit")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
        return "unknown"
