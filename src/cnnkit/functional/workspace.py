"""Scratch arrays reused from call to call, for the large temporaries of the convolution kernels.

A fresh 40 MB ``np.empty`` is not free: the operating system hands out new pages that fault on first
touch, which measured as much as the arithmetic that fills them. A kernel asks for its temporaries by
name instead; the same memory comes back on the next call. Only arrays that die inside the kernel may
come from here -- never an output, never anything stored in a cache.
"""

from __future__ import annotations

import math
import threading

import numpy as np

_local = threading.local()  # one set of buffers per thread: threads splitting a batch must not share


def workspace(name: str, shape, dtype) -> np.ndarray:
    """An uninitialized array of ``shape`` whose memory is reused by the next call with the same ``name``.

    Valid until the next ``workspace(name, ...)`` call in this thread; the buffer grows to the largest
    size requested and is kept (see :func:`clear_workspaces`).

    >>> a = workspace("doc", (2, 3), np.float32)
    >>> b = workspace("doc", (3, 2), np.float32)
    >>> b.shape, np.shares_memory(a, b)
    ((3, 2), True)
    """
    buffers = _local.__dict__.setdefault("buffers", {})
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    flat = buffers.get((name, dtype))
    if flat is None or flat.size < size:
        flat = buffers[(name, dtype)] = np.empty(size, dtype)
    return flat[:size].reshape(shape)


def clear_workspaces() -> int:
    """Release this thread's scratch buffers; returns the number of bytes freed."""
    buffers = _local.__dict__.pop("buffers", {})
    return sum(b.nbytes for b in buffers.values())


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

    Process-wide and permanent; ``cnnkit.train.fit`` calls it. Returns True if it took effect, False
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
