"""Data-parallel training over MPI: every rank holds the whole model and a shard of every batch.

One step on ``size`` ranks, each with its own B images::

    every rank:  forward + backward on its B images       (the same code as on one process)
    Allreduce:   sum of (gradient * B_rank) and of B_rank  (ONE flat float32 buffer, bucketed if large)
    every rank:  gradient = sum / total images; identical optimizer step on identical weights

Because the ranks start from rank 0's weights and apply the same averaged gradient, they stay identical,
and ``size`` ranks with B images each compute exactly what one process computes with a batch of size*B
(up to float32 rounding in the sum). MPI (``mpi4py``, with the ``mpich`` wheel from PyPI) is imported only
here: ``pip install "cnnkit[mpi]"``, then ``mpiexec -n 2 cnnkit train --distributed``.

Batch norm statistics are kept per rank by default (each rank normalises its own B images, as PyTorch's
DistributedDataParallel does without SyncBatchNorm); the running averages are rank 0's, which is what gets
saved. ``DataParallel(sync_batchnorm=True)`` instead averages the running statistics across ranks after
every step, so the saved model reflects every rank's data.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from cnnkit.layers.base import Layer

_BUCKET_BYTES = 16 * 2**20  # large models are reduced in 16 MiB pieces, so the buffer stays cache-friendly


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:  # pragma: no cover - the test extra installs it
        raise ImportError('cnnkit.distributed needs MPI: pip install "cnnkit[mpi]" (mpi4py and mpich)') from e
    return MPI


class DataParallel:
    """The MPI job seen from one rank: its rank, the number of ranks, and the three things to wrap.

    >>> dp = DataParallel()                                   # doctest: +SKIP
    >>> dp.broadcast(model)                                   # doctest: +SKIP
    >>> loader, optimizer = dp.shard(loader), dp.wrap(optimizer)    # doctest: +SKIP
    >>> fit(model, loss, optimizer, loader, quiet=not dp.is_root)   # doctest: +SKIP

    Args:
        comm: an mpi4py communicator (default ``MPI.COMM_WORLD``).
        timeout: seconds a collective may wait before the job is aborted: a rank that died would otherwise
            leave the others blocked forever.
        sync_batchnorm: average batch-norm running statistics across ranks after every step.
        threads: BLAS threads per rank; default: this machine's cores divided by the ranks on it, so that
            ranks x threads never oversubscribes the cores.
    """

    def __init__(self, comm=None, *, timeout: float = 120.0, sync_batchnorm: bool = False,
                 threads: int | None = None):
        MPI = _mpi()
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout, self.sync_batchnorm = float(timeout), sync_batchnorm
        self._shards: list[DistributedLoader] = []
        self.threads = self._limit_blas_threads(threads)

    @property
    def is_root(self) -> bool:
        """Rank 0: the one rank that prints, writes checkpoints, history and the report."""
        return self.rank == 0

    def _limit_blas_threads(self, threads: int | None) -> int:
        if threads is None:
            local = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
            per_node = local.Get_size()
            local.Free()
            threads = max(1, (os.cpu_count() or 1) // per_node)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # without threadpoolctl the environment variables are the only lever
            return threads
        self._limiter = threadpool_limits(limits=threads)
        return threads

    # -- collectives with a deadline ---------------------------------------------------------------------
    def _wait(self, request, what: str):
        """Wait for a non-blocking collective; abort the whole job if it takes longer than ``timeout``."""
        deadline = time.monotonic() + self.timeout
        while not request.Test():
            if time.monotonic() > deadline:
                print(f"cnnkit.distributed: rank {self.rank}/{self.size}: {what} did not complete within "
                      f"{self.timeout:g} s; another rank has probably failed. Aborting the job.",
                      file=sys.stderr, flush=True)
                self.comm.Abort(1)
            time.sleep(0.0005)

    def allreduce_(self, buffer: np.ndarray, what: str = "Allreduce"):
        """Sum ``buffer`` (contiguous) over all ranks, in place."""
        self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM), what)
        return buffer

    def broadcast(self, model: Layer, root: int = 0) -> Layer:
        """Give every rank rank 0's parameters and buffers, so all replicas start identical."""
        for name, array in model.state_dict().items():
            if not array.flags.c_contiguous:
                raise ValueError(f"DataParallel.broadcast: {name} is not contiguous")
            self._wait(self.comm.Ibcast(array, root=root), f"Bcast of {name}")
        return model

    def barrier(self):
        self._wait(self.comm.Ibarrier(), "Barrier")

    # -- wrappers ----------------------------------------------------------------------------------------
    def shard(self, loader) -> DistributedLoader:
        """Each rank reads its own part of every global batch of ``loader.batch_size * size`` images."""
        shard = DistributedLoader(loader, self.rank, self.size)
        self._shards.append(shard)
        return shard

    def wrap(self, optimizer, model: Layer | None = None) -> DistributedOptimizer:
        """An optimizer whose ``step`` first averages gradients over the ranks (one Allreduce)."""
        return DistributedOptimizer(optimizer, self, model)

    def gather_metrics(self, values: dict) -> dict:
        """Sum numeric metrics over the ranks (e.g. correct predictions and counts), for rank-0 reporting."""
        keys = sorted(values)
        buffer = np.array([float(values[k]) for k in keys], dtype=np.float64)
        self.allreduce_(buffer, "Allreduce of metrics")
        return dict(zip(keys, buffer.tolist()))


class DistributedLoader:
    """A DataLoader's batches split over the ranks: every rank walks the same seeded order.

    Global batch i is ``order[i*B*size : (i+1)*B*size]`` where B is the wrapped loader's batch size and
    ``order`` the loader's order for this epoch (identical on every rank because it depends on
    (seed, epoch) only); rank r takes the r-th of ``size`` near-equal slices. ``current`` holds this rank's
    share of the last batch served, which the optimizer uses to weight its gradient.
    """

    def __init__(self, loader, rank: int, size: int):
        if not hasattr(loader, "order") or not hasattr(loader, "batch"):
            raise TypeError("DistributedLoader wraps a cnnkit.data.DataLoader (needs order() and batch()).")
        self.loader, self.rank, self.size = loader, rank, size
        self.batch_size = loader.batch_size
        self.epoch = 0
        self.current = 0

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.size

    def __len__(self) -> int:
        # A last batch with fewer images than ranks is dropped, so that no rank ever gets an empty shard.
        n, b = len(self.loader.dataset.labels), self.global_batch_size
        full, rest = divmod(n, b)
        return full + (0 if self.loader.drop_last or rest < self.size else 1)

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        order, B = self.loader.order(epoch), self.global_batch_size
        for i in range(len(self)):
            mine = np.array_split(order[i * B:(i + 1) * B], self.size)[self.rank]
            self.current = len(mine)
            seed = np.random.SeedSequence(self.loader.seed, spawn_key=(epoch, 1, i, self.rank))
            yield self.loader.batch(mine, np.random.default_rng(seed))


class DistributedOptimizer:
    """Wraps a cnnkit optimizer: ``step()`` = average gradients over ranks (weighted by images), then step."""

    def __init__(self, optimizer, parallel: DataParallel, model: Layer | None = None):
        self.optimizer, self.parallel, self.model = optimizer, parallel, model
        self.params = [p for _, p, _ in optimizer._indexed()]
        self.communication_seconds = 0.0

    def __getattr__(self, name):  # lr, param_groups, state_dict ... are the wrapped optimizer's
        return getattr(self.optimizer, name)

    def zero_grad(self):
        self.optimizer.zero_grad()

    def _images(self) -> int:
        shards = self.parallel._shards
        return shards[-1].current if shards else 1

    def step(self):
        began = time.perf_counter()
        n = self._images()
        sizes = [p.grad.size for p in self.params]
        flat = np.empty(sum(sizes) + 1, dtype=self.params[0].grad.dtype)  # float32: one buffer
        offset = 0
        for p, size in zip(self.params, sizes):
            # each rank's grad is a mean over its n images; n * grad is its share of the global sum
            np.multiply(p.grad.reshape(-1), n, out=flat[offset:offset + size])
            offset += size
        flat[-1] = n
        step = max(1, _BUCKET_BYTES // flat.itemsize)
        for start in range(0, flat.size, step):
            self.parallel.allreduce_(flat[start:start + step], "Allreduce of gradients")
        total = flat[-1]
        offset = 0
        for p, size in zip(self.params, sizes):
            p.grad[...] = (flat[offset:offset + size] / total).reshape(p.grad.shape)
            offset += size
        if self.parallel.sync_batchnorm and self.model is not None:
            self._average_running_stats()
        self.communication_seconds += time.perf_counter() - began
        self.optimizer.step()

    def _average_running_stats(self):
        for _, layer in self.model.named_layers():
            for name in ("running_mean", "running_var"):
                if name in getattr(layer, "buffer_names", ()):
                    buffer = getattr(layer, name)
                    self.parallel.allreduce_(buffer, f"Allreduce of {name}")
                    buffer /= self.parallel.size
