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
