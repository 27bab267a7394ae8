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
DistributedDataParallel does without SyncBatchNorm; the running averages saved are rank 0's). With
``DataParallel(sync_batchnorm=True)`` every batch-norm layer computes its mean and variance over the images
of all ranks (two more small Allreduces per layer, one forward and one backward), so even a network with
batch norm trains exactly as one process with the whole batch would.

Nothing waits forever: MPI_Init and every collective have a deadline (``timeout``, else
``$CNNKIT_MPI_TIMEOUT``, else 120 s), after which the rank says which step stalled, on which rank and host,
waits (at most 5 s) until mpiexec's proxy has read that line, and stops the job. A rank that never started,
one that died, and a network link that went down all end this way (docs/distributed.md shows each across
two hosts).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from cnnkit.fast.norm import batch_norm  # the kernel itself: SyncBatchNorm extends its cache
from cnnkit.layers.activation import check_float_array
from cnnkit.layers.base import Layer
from cnnkit.layers.norm import BatchNorm1d, BatchNorm2d
from cnnkit.runtime import blas_threads
from cnnkit.train.parallel.supervisor import MARK, describe_rank, wait_until_read

_BUCKET_BYTES = 16 * 2**20  # large models are reduced in 16 MiB pieces, so the buffer stays cache-friendly


DEFAULT_TIMEOUT = 120.0
TIMEOUT_VARIABLE = "CNNKIT_MPI_TIMEOUT"


def collective_timeout(timeout: float | None = None) -> float:
    """``timeout``, else ``$CNNKIT_MPI_TIMEOUT``, else 120 s: how long MPI_Init and each collective may wait.

    Raises:
        ValueError: the variable is set but not a positive number of seconds.
    """
    if timeout is None:
        text = os.environ.get(TIMEOUT_VARIABLE)
        if not text:
            return DEFAULT_TIMEOUT
        try:
            timeout = float(text)
        except ValueError:
            timeout = -1.0
        if not timeout > 0:
            raise ValueError(f"cnnkit.train.parallel.mpi: Received {TIMEOUT_VARIABLE}={text!r}; expected a "
                             f"positive number of seconds.")
    return float(timeout)


def _mpi(timeout: float | None = None):
    """mpi4py's MPI module, with MPI initialized under a deadline (if nobody initialized it before).

    MPI_Init waits for every rank of the job; when a rank never starts (a host without cnnkit, a program
    that fails before MPI_Init), hydra leaves the others waiting there forever. MPI_Init holds Python's
    GIL, so no thread of this process can watch it: a small watchdog process does, and past the deadline
    prints why and stops this rank, on which mpiexec stops the job.
    """
    try:
        import mpi4py
    except ImportError as e:  # pragma: no cover - the test extra installs it
        raise ImportError('cnnkit.train.parallel.mpi needs MPI: pip install "cnnkit[mpi]" (mpi4py and mpich)'
                          ) from e
    if "mpi4py.MPI" not in sys.modules:
        mpi4py.rc.initialize = False  # initialized below, under the deadline
        mpi4py.rc.finalize = True
    from mpi4py import MPI

    if not MPI.Is_initialized():
        seconds = collective_timeout(timeout)
        message = (f"cnnkit.train.parallel.mpi: {describe_rank()}: MPI_Init did not complete within "
                   f"{seconds:g} s: a rank of the job did not start (see its error above), or the hosts "
                   f"cannot reach each other (check the hostfile, the interface given to mpiexec -iface and "
                   f"UCX_NET_DEVICES, firewalls). Stopping.")
        # SIGTERM goes to the rank's supervisor if it has one (it passes it on, and reports nothing more)
        supervisor = os.environ.get(MARK)
        target = int(supervisor) if supervisor and int(supervisor) == os.getppid() else os.getpid()
        watchdog = subprocess.Popen([sys.executable, "-I", "-S", "-c", _WATCHDOG, str(target),
                                     str(os.getpid()), str(seconds), message], stdin=subprocess.PIPE)
        try:
            MPI.Init_thread()
        finally:
            watchdog.stdin.close()  # the watchdog ends when its input closes
            watchdog.wait()
    return MPI


_WATCHDOG = """
import os, select, signal, sys
target, rank, seconds, message = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
if not select.select([sys.stdin], [], [], seconds)[0]:
    print(message, file=sys.stderr, flush=True)
    os.kill(target, signal.SIGTERM)
    if not select.select([sys.stdin], [], [], 5.0)[0]:
        try:
            os.kill(rank, signal.SIGKILL)
        except ProcessLookupError:
            pass
"""


class DataParallel:
    """The MPI job seen from one rank: its rank, the number of ranks, and the three things to wrap.

    >>> dp = DataParallel()                                   # doctest: +SKIP
    >>> dp.setup(model)                                       # doctest: +SKIP
    >>> loader, optimizer = dp.shard(loader), dp.wrap(optimizer)    # doctest: +SKIP
    >>> fit(model, loss, optimizer, loader, quiet=not dp.is_root)   # doctest: +SKIP

    Args:
        comm: an mpi4py communicator (default ``MPI.COMM_WORLD``).
        timeout: seconds MPI_Init and each collective may wait before the job is aborted: a rank that died,
            or a network link that went down, would otherwise leave the others blocked forever. Default:
            ``$CNNKIT_MPI_TIMEOUT``, else 120.
        sync_batchnorm: batch-norm layers use the statistics of the whole global batch (see above).
        threads: BLAS threads per rank; default: this machine's cores divided by the ranks on it, so that
            ranks x threads never oversubscribes the cores.
    """

    def __init__(self, comm=None, *, timeout: float | None = None, sync_batchnorm: bool = False,
                 threads: int | None = None):
        self.timeout = collective_timeout(timeout)
        MPI = _mpi(self.timeout)
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.host = os.environ.get("PMI_HOSTNAME") or MPI.Get_processor_name()
        self.sync_batchnorm = sync_batchnorm
        self._shards: list[DistributedLoader] = []
        self.threads = threads if threads is not None else self._cores_per_rank()
        self._blas = blas_threads(self.threads)  # kept for the job: the rank's share of the cores

    @property
    def is_root(self) -> bool:
        """Rank 0: the one rank that prints, writes checkpoints, history and the report."""
        return self.rank == 0

    def _cores_per_rank(self) -> int:
        """This machine's cores divided by the ranks running on it (at least 1)."""
        local = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        per_node = local.Get_size()
        local.Free()
        return max(1, (os.cpu_count() or 1) // per_node)

    # -- collectives with a deadline ---------------------------------------------------------------------
    def _wait(self, request, what: str):
        """Wait for a non-blocking collective; abort the whole job if it takes longer than ``timeout``."""
        deadline = time.monotonic() + self.timeout
        while not request.Test():
            if time.monotonic() > deadline:
                print(f"cnnkit.train.parallel.mpi: rank {self.rank} of {self.size} on {self.host}: {what} "
                      f"did not complete within {self.timeout:g} s: another rank has failed or the network "
                      f"between the hosts is down (${TIMEOUT_VARIABLE} sets the deadline). Aborting the job.",
                      file=sys.stderr, flush=True)
                wait_until_read()  # mpiexec forwards nothing after the abort: the line must get there first
                self.comm.Abort(1)
                os._exit(1)  # MPICH's Abort may return while the process manager has yet to act
            time.sleep(0.0005)

    def allreduce_(self, buffer: np.ndarray, what: str = "Allreduce"):
        """Sum ``buffer`` (contiguous) over all ranks, in place."""
        self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM), what)
        return buffer

    def setup(self, model: Layer) -> Layer:
        """Make ``model`` a replica: rank 0's weights (:meth:`broadcast`) and, with ``sync_batchnorm``,
        batch-norm layers that reduce their statistics over all ranks. Returns the same model object."""
        self.broadcast(model)
        if self.sync_batchnorm:
            for _, layer in model.named_layers():
                if type(layer) in _SYNCED:
                    layer.__class__, layer.parallel = _SYNCED[type(layer)], self
        return model

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

    def wrap(self, optimizer) -> DistributedOptimizer:
        """An optimizer whose ``step`` first averages gradients over the ranks (one Allreduce)."""
        return DistributedOptimizer(optimizer, self)

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

    def __init__(self, optimizer, parallel: DataParallel):
        self.optimizer, self.parallel = optimizer, parallel
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
        self.communication_seconds += time.perf_counter() - began
        self.optimizer.step()


class _SyncBatchNorm:
    """Batch norm whose batch statistics are those of the global batch (all ranks' images).

    Forward reduces per-channel sums of x and x^2 and the element count; backward reduces the sums of
    g = dy * weight and g * x_hat that the batch-norm gradient needs. Each rank's loss is a mean over its
    own images and the optimizer weights rank r's gradients by its share w_r = n_r / N, so the gradient of
    the global objective reaching rank r is w_r * dy; the dx returned here is that gradient divided by w_r,
    which the optimizer's weighting then restores. Evaluation with running statistics is purely local.
    """

    parallel: DataParallel
    plain: type

    def config(self):
        return {**super().config(), "type": self.plain.__name__}  # checkpoints hold a plain batch norm

    def forward(self, x):
        if not (self.training or not self.track_running_stats):
            return super().forward(x)
        check_float_array(self, x)
        self.output_shape(x.shape)
        axes, C = (0, *range(2, x.ndim)), x.shape[1]
        m = x.size // C
        squares = np.square(x, dtype=np.float64).sum(axis=axes)
        sums = np.concatenate([x.sum(axis=axes, dtype=np.float64), squares, [m]])
        self.parallel.allreduce_(sums, "Allreduce of batch-norm statistics")
        M = sums[-1]
        mean = sums[:C] / M
        var = np.maximum(sums[C:2 * C] / M - mean * mean, 0.0)
        mean, var = mean.astype(x.dtype), var.astype(x.dtype)
        weight = None if self.weight is None else self.weight.data
        bias = None if self.bias is None else self.bias.data
        y, cache = batch_norm(x, weight, bias, mean, var, self.eps)
        if self.track_running_stats:
            self._update_running_stats(mean, var, int(M))
        self._cache = {**cache, "x_hat": cache["x_hat"], "share": m / M, "total": M}  # x_hat: made on demand
        return y

    def backward(self, dy):
        if self._cache is None or "share" not in self._cache:
            return super().backward(dy)
        cache = self._pop_cache()
        x_hat, inv_std, axes, share = cache["x_hat"], cache["inv_std"], cache["axes"], cache["share"]
        C, view = x_hat.shape[1], (1, -1, *(1,) * (x_hat.ndim - 2))
        g = dy if self.weight is None else dy * self.weight.data.reshape(view)
        gx = (g * x_hat).sum(axis=axes, dtype=np.float64)
        sums = np.concatenate([g.sum(axis=axes, dtype=np.float64), gx])
        sums *= share  # the global objective weights rank r's images by its share n_r / N
        self.parallel.allreduce_(sums, "Allreduce of batch-norm gradients")
        g_mean = (sums[:C] / cache["total"]).astype(dy.dtype).reshape(view)
        gx_mean = (sums[C:] / cache["total"]).astype(dy.dtype).reshape(view)
        dx = (g - (g_mean + x_hat * gx_mean) / dy.dtype.type(share)) * inv_std.reshape(view)
        if self.weight is not None:
            self.weight.grad += np.sum(dy * x_hat, axis=axes)
            self.bias.grad += np.sum(dy, axis=axes)
        return dx


class SyncBatchNorm1d(_SyncBatchNorm, BatchNorm1d):
    plain = BatchNorm1d


class SyncBatchNorm2d(_SyncBatchNorm, BatchNorm2d):
    plain = BatchNorm2d


_SYNCED = {BatchNorm1d: SyncBatchNorm1d, BatchNorm2d: SyncBatchNorm2d}
