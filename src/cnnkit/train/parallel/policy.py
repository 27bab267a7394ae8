"""How to spend a machine's cores on training one model: the rule ``cnnkit train`` follows.

``threads`` is the number of cores one training process may use (``cnnkit train --threads``; default all
of this machine's). How they are used depends on the model (measured on 2 cores, docs/training.md):

- a model whose layers treat each example on its own (no batch norm, no dropout) is trained in batch
  slices, one per core: on worker processes below ``SMALL_MODEL_MACS`` multiply-adds per example (a
  LeNet-5 step is hundreds of short NumPy calls that threads cannot run at once: one MNIST epoch 7.2 s
  whole, 5.1 s on two processes), on threads from there on (cifar_net steps 157 -> 100 ms);
- any other model runs each batch whole, its matrix products on ``threads`` BLAS threads -- except that a
  small model gets one BLAS thread unless ``threads`` is given: its matrices are too small to split, and
  spinning BLAS threads collapse when the cores are shared (LeNet-5 several times faster on one thread).

With MPI (``whole_batches=True``) every rank runs whole batches on its share of the cores.
"""

from __future__ import annotations

import os

from cnnkit.train.parallel.processes import Processes
from cnnkit.train.parallel.slices import Slices, why_not_split
from cnnkit.train.parallel.threads import Threads

SMALL_MODEL_MACS = 20_000_000  # multiply-adds per example below which a model counts as small (see above)


def plan(model, macs_per_example: int, threads: int | None = None, *,
         whole_batches: bool = False) -> tuple[Slices | None, int]:
    """The ``fit(parallel=...)`` value and the BLAS threads for training ``model`` on ``threads`` cores.

    Args:
        model: the network to train.
        macs_per_example: its multiply-adds per example (``cnnkit.analysis.summary(...).total_macs``).
        threads: the cores to use (default: ``os.cpu_count()``).
        whole_batches: never cut batches (an MPI rank: the ranks are the parallelism).

    Returns:
        ``(parallel, blas)``: ``Processes(n)``, ``Threads(n)`` or None, and an int >= 1.

    >>> import cnnkit as ck
    >>> plan(ck.Sequential(ck.Linear(4, 2)), 8, threads=2)
    (Processes(count=2), 1)
    >>> plan(ck.Sequential(ck.Linear(4, 2), ck.Dropout()), 8, threads=2)
    (None, 2)
    """
    cores = threads if threads is not None else os.cpu_count() or 1
    small = macs_per_example < SMALL_MODEL_MACS
    if whole_batches or cores < 2 or why_not_split(model) is not None:
        return None, 1 if small and threads is None else cores
    if small:
        return Processes(cores), 1
    return Threads(cores), cores  # each slice holds its BLAS to one thread; evaluation uses them all


def describe(parallel: Slices | None, blas: int) -> str:
    """``plan``'s answer in words: "2 processes (batch slices)", "2 threads (batch slices)", "1 thread".

    >>> describe(Threads(2), 2), describe(None, 1)
    ('2 threads (batch slices)', '1 thread')
    """
    if parallel is not None and parallel.count > 1:
        return f"{parallel.count} {type(parallel).__name__.lower()} (batch slices)"
    return f"{blas} thread{'s' * (blas != 1)}"
