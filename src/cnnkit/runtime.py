"""The runtime: threads, scratch memory, BLAS thread limits and the allocator policy, in one place.

Kernels never start threads, keep buffers or change process settings on their own; they ask this module.
One setting says what is allowed (:func:`configure`, or the :func:`configured` context manager), and
nothing here has a process-wide side effect unless that setting asks for it:

- ``threads``: the elementwise threads on which the fast kernels run independent batch parts and chunks
  (default 1: NumPy's BLAS usually owns the other cores). NumPy releases the GIL inside its loops, so
  chunks of one array on two threads use two cores.
- ``scratch``: whether fast kernels reuse named scratch arrays (:func:`workspace`) for their large
  temporaries instead of allocating them each call (default True). A fresh 40 MB ``np.empty`` is not
  free: the OS hands out new pages that fault on first touch, as slowly as the arithmetic that fills them.
- ``keep_freed_memory``: let glibc keep freed memory for reuse (:func:`keep_freed_memory`); process-wide
  and permanent, so only the CLI or a user turns it on.
- ``dispatch``: how an op with algorithm="auto" picks its convolution kernel: "rules" (default: the
  tuning table of :mod:`cnnkit.fast.dispatch`, the same choice on every machine) or "measure" (time the
  eligible kernels once per layer shape on this machine and keep the fastest, remembered on disk; see
  :mod:`cnnkit.fast.measure`).

Batch chunks: per-sample elementwise work done in cache-sized pieces. NumPy makes one pass over the whole
array per operation, so a pooling kernel of a dozen operations on a 16 MB activation streams it from main
memory a dozen times. Cut along the batch axis into chunks of about ``CHUNK_BYTES`` of input, the same
operations run on data that stays in the core's cache, and independent chunks may run on several threads.
Kernels using this write every chunk into a slice of preallocated outputs, so the result does not depend
on the chunking or the thread count. :func:`batch_slices` is the one way to cut a batch into parts.
"""

from __future__ import annotations

import contextlib
import math
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

CHUNK_BYTES = 2 << 20  # about the L2 cache of a core, where the measured gain stopped growing
_state = {"threads": 1, "pool": None, "scratch": True, "dispatch": "rules"}
DISPATCH = ("rules", "measure")
_local = threading.local()  # one set of scratch buffers per thread: threads splitting a batch must not share



def configure(*, threads: int | None = None, scratch: bool | None = None,
              keep_freed_memory: bool | None = None, dispatch: str | None = None) -> dict:
    """Set the runtime; options left as None keep their value. Returns the settings before the call.

    Args:
        threads: elementwise threads for the fast kernels' batch parts and chunks (an int >= 1).
        scratch: reuse named scratch arrays for kernels' temporaries (True) or allocate each call (False).
        keep_freed_memory: True asks glibc to keep freed memory for reuse (:func:`keep_freed_memory`);
            process-wide and permanent, so False afterwards changes nothing and is refused.
        dispatch: "rules" (default) or "measure": how "auto" picks a convolution kernel (see above).

    Raises:
        ValueError: threads is not an int >= 1, scratch is not a bool, keep_freed_memory=False after it
            was turned on, or dispatch is not one of DISPATCH.

    >>> before = configure(threads=1, scratch=True); sorted(before)
    ['dispatch', 'keep_freed_memory', 'scratch', 'threads']
    """
    before = settings()
    if scratch is not None and not isinstance(scratch, bool):
        raise ValueError(f"configure: Received scratch={scratch!r}; expected True or False.")
    if dispatch is not None and dispatch not in DISPATCH:
        raise ValueError(f"configure: Received dispatch={dispatch!r}; expected one of {DISPATCH}.")
    if keep_freed_memory is False and _kept:
        raise ValueError("configure: keep_freed_memory=False: glibc's malloc settings cannot be undone in a "
                         "running process; start a new process instead.")
    if threads is not None:
        set_elementwise_threads(threads)
    if scratch is not None:
        _state["scratch"] = scratch
        if not scratch:
            clear_workspaces()
    if keep_freed_memory:
        globals()["keep_freed_memory"]()
    if dispatch is not None:
        _state["dispatch"] = dispatch
    return before


def settings() -> dict:
    """The current settings, as :func:`configure` takes them."""
    return {"threads": _state["threads"], "scratch": _state["scratch"], "keep_freed_memory": bool(_kept),
            "dispatch": _state["dispatch"]}


@contextlib.contextmanager
def configured(**options):
    """:func:`configure` for the block only (``keep_freed_memory`` excepted: it cannot be undone).

    >>> with configured(threads=2):
    ...     elementwise_threads()
    2
    >>> elementwise_threads()
    1
    """
    before = configure(**options)
    try:
        yield
    finally:
        configure(threads=before["threads"], scratch=before["scratch"], dispatch=before["dispatch"])


def set_elementwise_threads(threads: int) -> None:
    """Use ``threads`` threads for the batch chunks of the pooling kernels (default 1: the BLAS of the
    convolutions usually owns the other cores).

    Args:
        threads: an int >= 1; a change shuts the current thread pool down.

    Raises:
        ValueError: threads is not an int >= 1 (a bool included).

    >>> set_elementwise_threads(1); elementwise_threads()
    1
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"set_elementwise_threads: Received threads={threads!r}; expected an int >= 1.")
    if threads != _state["threads"] and _state["pool"] is not None:
        _state["pool"].shutdown()
        _state["pool"] = None
    _state["threads"] = threads


def elementwise_threads() -> int:
    """The number of threads :func:`over_batch` uses (see :func:`set_elementwise_threads`)."""
    return _state["threads"]


def dispatch_policy() -> str:
    """"rules" or "measure": how "auto" picks a convolution kernel (see :func:`configure`)."""
    return _state["dispatch"]


def batch_slices(items: int, step: int | None = None, *, count: int | None = None) -> list[slice]:
    """The one way cnnkit cuts a batch: slices covering range(items), in order, either of ``step`` items
    each (the last may be shorter) or ``count`` of nearly equal size (fewer if items < count). Kernels and
    the parallel trainers choose the step or count by their own rule; this cuts.

    >>> batch_slices(5, 2)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    >>> batch_slices(5, count=2)
    [slice(0, 2, None), slice(2, 5, None)]
    """
    if (step is None) == (count is None):
        raise ValueError(f"batch_slices: give step or count, not both or neither; received step={step!r}, "
                         f"count={count!r}.")
    if count is not None:
        parts = min(count, items)
        bounds = [round(i * items / parts) for i in range(parts + 1)] if items else [0]
        return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    step = max(1, int(step))
    return [slice(start, min(start + step, items)) for start in range(0, items, step)]


def batch_parts(items: int, per_item: int, part_size: int, threads: int = 1) -> list[slice]:
    """A kernel's batch parts: slices of about ``part_size`` (in the unit of ``per_item``, at least one
    item each), in a multiple of ``threads`` parts when the batch has the items for it.

    >>> batch_parts(8, 3, 10), batch_parts(8, 3, 100, threads=2)
    ([slice(0, 3, None), slice(3, 6, None), slice(6, 8, None)], [slice(0, 4, None), slice(4, 8, None)])
    """
    count = -(-items // max(1, part_size // max(1, per_item)))
    count = max(1, min(items, -(-count // threads) * threads))
    return batch_slices(items, -(-items // count))


def batch_chunks(items: int, bytes_per_item: int, chunk_bytes: int | None = None) -> list[slice]:
    """Slices covering range(items), each about ``chunk_bytes`` (default CHUNK_BYTES; at least one item).

    Args:
        items: the batch size. bytes_per_item: the input bytes of one sample. chunk_bytes=None: the target.

    Returns:
        ``ceil(items / step)`` slices with ``step = max(1, chunk_bytes // bytes_per_item)`` items each (the
        last one may be shorter).

    >>> batch_chunks(10, 1 << 20)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 6, None), slice(6, 8, None), slice(8, 10, None)]
    """
    budget = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    return batch_slices(items, budget // max(1, bytes_per_item))


def over_parts(work, parts: int, *, threaded: bool = True) -> list:
    """``[work(i) for i in range(parts)]``, on the configured threads, NumPy's BLAS held to one thread each.

    For kernels whose parts each multiply small matrices: two parts on two threads with a one-thread BLAS
    keep both cores busy through the NumPy-only steps between the multiplies too, where a two-thread BLAS
    only helps inside them. Inline (BLAS untouched) if not ``threaded``, with one thread or one part, and
    off the main thread, as :func:`over_batch`.
    """
    nested = threading.current_thread() is not threading.main_thread()
    if not threaded or _state["threads"] == 1 or parts == 1 or nested:
        return [work(i) for i in range(parts)]
    if _state["pool"] is None:
        _state["pool"] = ThreadPoolExecutor(_state["threads"], thread_name_prefix="cnnkit-elementwise")
    with blas_threads(1):
        return list(_state["pool"].map(work, range(parts)))


def blas_threads(threads: int):
    """Hold NumPy's BLAS to ``threads`` threads, from now until the returned context manager exits.

    ``with blas_threads(1):`` around work on threads of our own (each runs its multiplies on one thread);
    kept without a ``with`` (an MPI rank's share of the cores), the limit lasts as long as the process.
    One threadpoolctl controller is made per process (it scans the loaded libraries); without
    threadpoolctl nothing changes.

    Args:
        threads: an int >= 1.

    Raises:
        ValueError: threads is not an int >= 1 (a bool included).

    >>> with blas_threads(1):
    ...     pass
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"blas_threads: Received threads={threads!r}; expected an int >= 1.")
    if _blas_controller() is None:  # pragma: no cover
        return contextlib.nullcontext()
    return _state["blas"].limit(limits=threads, user_api="blas")


def blas_thread_count() -> int | None:
    """The threads NumPy's BLAS uses now (a few microseconds: one call into the library), or None if
    threadpoolctl finds no BLAS."""
    controller = _blas_controller()
    blas = [lib for lib in controller.lib_controllers if lib.user_api == "blas"] if controller else []
    return blas[0].get_num_threads() if blas else None


def _blas_controller():
    """The process's one threadpoolctl controller (made on first use: it scans the loaded libraries)."""
    if "blas" not in _state:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a core dependency (imported here: cnnkit loads light)
            _state["blas"] = None
        else:
            _state["blas"] = ThreadpoolController()
    return _state["blas"]


def over_batch(work, items: int, bytes_per_item: int) -> None:
    """Call ``work(chunk)`` for every chunk slice of the batch, on the configured threads.

    ``work`` must only write its own chunk of its outputs (and use per-thread scratch memory, as
    :func:`cnnkit.runtime.workspace` gives). Called from any thread but the main one (a slice
    of a batch that is itself on a thread, as in cnnkit.train.split), the chunks run on the calling thread:
    the cores are busy already, and a pool waiting on itself could deadlock.

    Args:
        work: a function of one ``slice`` of the batch. items, bytes_per_item: as :func:`batch_chunks`.

    Raises:
        Whatever ``work`` raises (re-raised from the thread that ran it).
    """
    map_chunks(work, items, bytes_per_item)


def map_chunks(work, items: int, bytes_per_item: int) -> list:
    """As :func:`over_batch`, returning ``[work(chunk) for chunk in batch_chunks(items, bytes_per_item)]``
    in chunk order (per-chunk partial sums, for example)."""
    chunks = batch_chunks(items, bytes_per_item)
    nested = threading.current_thread() is not threading.main_thread()
    if _state["threads"] == 1 or len(chunks) == 1 or nested:
        return [work(chunk) for chunk in chunks]
    if _state["pool"] is None:
        _state["pool"] = ThreadPoolExecutor(_state["threads"], thread_name_prefix="cnnkit-elementwise")
    return list(_state["pool"].map(work, chunks))  # iterating re-raises an exception from a chunk


# The name of the largest buffer of the kernels that gather windows (im2col's columns, pooling's phases).
# Kernels never run inside one another, so they can share it: a network keeps one such buffer per thread,
# not one per kind of layer (docs/performance.md, session 8: LeNet-5's peak).
COLUMNS = "columns"


def workspace(name: str, shape, dtype) -> np.ndarray:
    """An uninitialized array of ``shape`` whose memory is reused by the next call with the same ``name``.

    Valid until the next ``workspace(name, ...)`` call in this thread; the buffer grows to the largest
    size requested and is kept (see :func:`clear_workspaces`). A kernel must not hold a buffer across a
    call into another kernel that may ask for the same name (:data:`COLUMNS` is shared on purpose).

    >>> a = workspace("doc", (2, 3), np.float32)
    >>> b = workspace("doc", (3, 2), np.float32)
    >>> b.shape, np.shares_memory(a, b)
    ((3, 2), True)
    """
    if not _state["scratch"]:  # configure(scratch=False): a fresh array each call, nothing kept
        return np.empty(shape, dtype)
    buffers = _local.__dict__.setdefault("buffers", {})
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    flat = buffers.get((name, dtype))
    if flat is None or flat.size < size:
        flat = buffers[(name, dtype)] = np.empty(size, dtype)
    return flat[:size].reshape(shape)


def staggered(shape, dtype, name: str | None = None) -> np.ndarray:
    """An uninitialized array of ``shape`` whose first-axis slices start an odd number of 64-byte cache lines
    apart: :func:`workspace` memory when ``name`` is given, else a fresh array.

    A matrix multiply with a few dozen long rows (Winograd's tile transforms: 36 rows in, 36 or 16 out)
    reads and writes all of its rows at the same column at once. Rows a multiple of 4 KB apart all fall in
    one set of the 8-way L1 cache and evict each other; a row stride of an odd number of lines puts them in
    different sets (measured: docs/performance.md, session 9).

    >>> a = staggered((36, 1024), np.float32)
    >>> a.shape, a.strides[0] // 64 % 2, a.strides[1]
    ((36, 1024), 1, 4)
    """
    dtype = np.dtype(dtype)
    size = math.prod(shape[1:])
    lines = -(-size * dtype.itemsize // 64) | 1  # rounded up to whole lines, then to an odd number of them
    rows = (shape[0], lines * 64 // dtype.itemsize)
    memory = np.empty(rows, dtype) if name is None else workspace(name, rows, dtype)
    return memory[:, :size].reshape(shape)


def scratch_bytes() -> int:
    """The bytes of scratch memory this thread holds (0 until a fast kernel asks for some)."""
    return sum(b.nbytes for b in _local.__dict__.get("buffers", {}).values())


def clear_workspaces() -> int:
    """Release this thread's scratch buffers and every :func:`derived` array; returns the bytes freed."""
    buffers = _local.__dict__.pop("buffers", {})
    with _derived_lock:
        kept = sum(entry[1].nbytes + entry[2].nbytes for entry in _derived.values())
        _derived.clear()
    return sum(b.nbytes for b in buffers.values()) + kept


# derived(): key -> (weak reference to the source, snapshot of its values, the array made from them)
_derived: dict = {}
_derived_lock = threading.RLock()  # re-entrant: a source dying (its callback below) may interrupt a holder
DERIVED_BYTES = 256 * 2**20  # at most this much kept, snapshots included


def _forget(key) -> None:
    with _derived_lock:
        _derived.pop(key, None)


def derived(tag: str, source: np.ndarray, make) -> np.ndarray:
    """``make(source)``, kept and handed out again while ``source`` is the same array with the same values.

    For arrays a kernel makes from a layer's weights that cost more than comparing the weights: a
    Winograd layer's transformed filters are 4x the weights and take 10-20 ms to make for 512 x 512
    filters, while the comparison with a snapshot reads the weights twice (about 1 ms). Inference reuses
    them call after call; a training step's backward reuses the forward's (the weights change only at
    the optimizer's step, and then the snapshot differs and the array is made again). Scratch memory:
    nothing is kept with ``configure(scratch=False)``; :func:`clear_workspaces` drops everything; at most
    DERIVED_BYTES are kept (then new arrays are made each call, and the ones kept stay). The returned array
    must not be written to.

    >>> w = np.ones(3)
    >>> a = derived("doc", w, lambda w: w * 2); b = derived("doc", w, lambda w: w * 3)
    >>> b.tolist(), a is b
    ([2.0, 2.0, 2.0], True)
    >>> w[0] = 5; derived("doc", w, lambda w: w * 3).tolist()
    [15.0, 3.0, 3.0]
    """
    if not _state["scratch"]:
        return make(source)
    key = (tag, id(source))
    with _derived_lock:
        entry = _derived.get(key)
    if entry is not None and entry[0]() is source and entry[1].shape == source.shape \
            and np.array_equal(entry[1], source):
        return entry[2]
    made = make(source)
    with _derived_lock:
        _derived.pop(key, None)  # the same weights with new values: the old array goes
        total = sum(e[1].nbytes + e[2].nbytes for e in _derived.values())
        if total + source.nbytes + made.nbytes <= DERIVED_BYTES:  # full: the arrays kept stay (a network
            made.flags.writeable = False                         # larger than the budget then keeps its
            _derived[key] = (weakref.ref(source, lambda _, key=key: _forget(key)),  # first layers' arrays
                             source.copy(), made)                # instead of each evicting the next)
    return made


# glibc's mallopt parameters (malloc.h) and the largest mmap threshold it accepts on 64-bit systems.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX, _TRIM = -1, -3, 32 * 2**20, 2**30
_kept = None


def keep_freed_memory() -> bool:
    """Let this process reuse freed arrays' memory instead of returning it to the OS (glibc only).

    By default glibc gives large blocks back to the OS when they are freed (it unmaps them, or trims the
    top of its heap once a few MB there are free), so a layer's output (a 1.2 MB ReLU output in LeNet-5)
    often comes back as new pages that fault on first touch, on this machine as slowly as the arithmetic
    that fills them (LeNet-5's first ReLU: 0.46 ms with fresh pages, 0.14 ms with reused ones). This sets
    malloc's mmap threshold to its maximum (32 MB) and keeps up to 1 GB of freed memory at the top of the
    heap, so the arrays of one training step reuse the memory of the step before -- what PyTorch's caching
    allocators do on GPUs. The process keeps its peak memory instead of giving it back between steps.

    Process-wide and permanent; ``configure(keep_freed_memory=True)`` or the ``cnnkit`` command call it,
    never a library function on its own. Returns True if it took effect, False
    where the C library is not glibc (macOS, Windows, musl): nothing changes there.
    """
    global _kept
    if _kept is None:
        import ctypes
        import ctypes.util

        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            _kept = False
        else:
            mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
            _kept = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and \
                bool(mallopt(_M_TRIM_THRESHOLD, _TRIM))
    return _kept
