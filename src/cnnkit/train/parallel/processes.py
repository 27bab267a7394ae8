"""Batch slices on processes: a training step's batch cut into slices, all but the first on worker processes.

For models too small for threads (:mod:`cnnkit.train.parallel.threads`). Python threads share one
interpreter lock; NumPy lets go of it inside each call, but a LeNet-5 step is a few hundred calls of
5-50 us, and handing the lock over costs as much as such a call. Measured on 2 cores: two threads each
stepping LeNet-5 on batch 32 took 6.7 ms a step where one thread alone took 4.2 ms; two *processes* took
4.05 and 4.16 ms.

A step: the model's parameters are copied into shared memory, the batch's last slices are written there
too, and each worker (a spawned process holding a replica of the model whose parameters are views of the
shared copy) runs forward, sends its scores and loss, runs backward and writes its gradients -- weighted
by its slice's share of the batch, so that the sum is the gradient of the batch's mean loss, exactly as
on threads -- into its own shared block. Meanwhile this process runs the first slice; backward
adds the workers' gradients into the model's.

Only this process's own objects cross to the workers (the model and loss, pickled once at start-up);
nothing is ever unpickled from a file. The workers are our processes: they turn on
``cnnkit.runtime.configure(keep_freed_memory=True)`` for themselves (every step's arrays reuse the memory
of the step before) and hold their BLAS to one thread.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
import traceback
from multiprocessing import shared_memory

import numpy as np

from cnnkit.runtime import batch_slices, blas_threads, configure, settings
from cnnkit.train.parallel.slices import Slices, check_slices, slice_backward, slice_forward


class Processes(Slices):
    """``fit(..., parallel=Processes(n))``: each batch in ``n`` slices at once, the first in this process,
    the others on ``n - 1`` worker processes spawned when ``fit`` starts.

    For models under about 20 M multiply-adds per example, whose hundreds of short NumPy calls threads
    cannot run at once (LeNet-5 steps 7.2 -> 4.9 ms on two cores); models with batch norm or dropout
    train whole. The workers are spawned, so a script training this way needs Python's
    ``if __name__ == "__main__":`` guard.

    >>> Processes(2)
    Processes(count=2)
    """

    def step(self, model, loss) -> ProcessSplitStep:
        return ProcessSplitStep(model, loss, self.count)


class _Block:
    """Named shared memory holding arrays laid end to end; the same layout opens it in another process."""

    def __init__(self, layout, name=None):
        self.layout = list(layout)  # [(shape, dtype str), ...]
        sizes = [int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in self.layout]
        self.shm = shared_memory.SharedMemory(name=name, create=name is None, size=max(1, sum(sizes)))
        self.arrays, offset = [], 0
        try:
            for (shape, dtype), size in zip(self.layout, sizes, strict=True):
                self.arrays.append(np.ndarray(shape, dtype, buffer=self.shm.buf, offset=offset))
                offset += size
        except BaseException:  # Ctrl-C included: a block made here and never returned is freed here
            self.close(unlink=name is None)
            raise

    def spec(self):
        return self.shm.name, self.layout

    def close(self, unlink=False):
        self.arrays = []
        try:
            self.shm.close()
        finally:  # the name goes even if a view still holds the mapping (it is freed with the view)
            if unlink:
                self.shm.unlink()


def _worker(conn, model, loss, params_spec, grads_spec, dispatch):
    """A worker's loop: ("batch", spec) opens a batch block; ("step", n, training) runs slice n's step.
    ``dispatch`` is the parent's runtime setting (a spawned process starts from the defaults)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group: the parent stops us
    # our own process: its steps reuse the memory of the step before
    configure(keep_freed_memory=True, dispatch=dispatch)
    params, grads, batch = _Block(params_spec[1], params_spec[0]), _Block(grads_spec[1], grads_spec[0]), None
    for p, shared in zip(model.parameters(), params.arrays, strict=True):
        p.data = shared  # the replica reads the parameters this process's model was given
    with blas_threads(1):
        while (message := _next(conn)) is not None:
            try:
                if message[0] == "batch":
                    if batch is not None:
                        batch.close()
                    batch = _Block(message[2], message[1])
                    continue
                _, n, share, training = message
                model.train(training)
                model.zero_grad()
                scores, value = slice_forward(model, loss, batch.arrays[0][:n], batch.arrays[1][:n])
                conn.send(("scores", scores, value))
                if value == value:  # not NaN: fit stops before backward otherwise
                    slice_backward(model, loss, share, scores.shape)
                    for p, shared in zip(model.parameters(), grads.arrays, strict=True):
                        np.copyto(shared, p.grad)
                conn.send(("done",))
            except Exception:  # noqa: BLE001 - reported to the parent, which raises it there
                conn.send(("error", traceback.format_exc()))


@contextlib.contextmanager
def _sigint_deferred():
    """Ctrl-C only recorded while the workers are started, then raised as it would have been.

    A Ctrl-C runs its Python handler at whatever bytecode comes next, such as one inside
    ``Process.start()`` after the child was spawned: the worker and the shared blocks would then belong to
    nobody, and the blocks be reported as leaked at exit. Recorded instead, it is raised again at the end,
    when :meth:`ProcessSplitStep.close` can stop every worker before it unlinks the blocks.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    held = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        signal.raise_signal(signal.SIGINT)  # to the handler the caller had: Interrupted, KeyboardInterrupt...


@contextlib.contextmanager
def _sigint_blocked():
    """SIGINT held back while a worker is spawned: the worker inherits the block (and ignores SIGINT once
    it runs), so Ctrl-C during its start-up neither kills it before it has read what it was sent (the
    spawning ``start()`` would wait for that read forever) nor prints a traceback from it; here the signal
    is only delayed until the worker has started, not lost. Only around ``start()``: starting Python's
    resource tracker (the first shared block) unblocks SIGINT again."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _next(conn):
    """The parent's next message; None to stop, also when the parent is gone (its end of the pipe closed)."""
    try:
        return conn.recv()
    except EOFError:
        return None


class ProcessSplitStep:
    """Forward, loss and backward of one batch in ``processes`` slices at once: the first slice here, the
    others on worker processes. The same interface as :class:`cnnkit.train.parallel.threads.SplitStep`.

    Args:
        model: an eligible model (:func:`~cnnkit.train.parallel.why_not_split` returns None) whose
            parameters all have one dtype.
        loss: the loss object; each worker gets a copy.
        processes: an int >= 2 (this process counts as one).

    Raises:
        ValueError: the model is not eligible, or processes < 2.
    """

    def __init__(self, model, loss, processes: int):
        check_slices("ProcessSplitStep", model, processes=processes)
        self.model, self.loss, self.processes = model, loss, processes
        layout = [(p.data.shape, p.data.dtype.str) for p in model.parameters()]
        self._params, self._grads, self._batches, self._workers, self._conns = None, [], [], [], []
        try:
            with _sigint_deferred():
                self._params = _Block(layout)
                for _ in range(processes - 1):
                    self._grads.append(_Block(layout))
                context = multiprocessing.get_context("spawn")  # no fork of a process that runs BLAS threads
                for grads in self._grads:
                    parent, child = context.Pipe()
                    worker = context.Process(target=_worker, daemon=True, name="cnnkit-slice",
                                             args=(child, model, loss, self._params.spec(), grads.spec(),
                                                   settings()["dispatch"]))
                    with _sigint_blocked():
                        worker.start()
                    self._workers.append(worker)
                    self._conns.append(parent)
                    child.close()
        except BaseException:  # a Ctrl-C held back during the start, or a model that cannot be pickled:
            self.close()       # the caller never gets this object to close, so it is closed here
            raise

    def _exited(self, i):
        self._workers[i].join(timeout=1)
        code = self._workers[i].exitcode
        return RuntimeError(f"ProcessSplitStep: worker {i + 1} exited (exit code {code}); the step cannot "
                            f"finish.")

    def _send(self, i, message):
        try:
            self._conns[i].send(message)
        except OSError:  # BrokenPipeError: the worker is gone
            raise self._exited(i) from None

    def _receive(self, i, kind):
        try:
            message = self._conns[i].recv()
        except EOFError:
            raise self._exited(i) from None
        if message[0] == "error":
            raise RuntimeError(f"ProcessSplitStep: worker {i + 1} failed:\n{message[1]}")
        assert message[0] == kind, message[0]  # the protocol's order, not user input
        return message

    def _share_batch(self, x, y, rows):
        """Each worker's block to read its slice from, made anew when a batch does not fit it."""
        layout = [((rows, *x.shape[1:]), x.dtype.str), ((rows, *y.shape[1:]), y.dtype.str)]
        if self._batches and self._batches[0].layout == layout:
            return
        old, self._batches = self._batches, []
        for block in old:
            block.close(unlink=True)
        for _ in self._conns:  # one at a time into self._batches: close() frees all made, even on Ctrl-C
            self._batches.append(_Block(layout))
        for i, block in enumerate(self._batches):
            self._send(i, ("batch", *block.spec()))

    def forward(self, x, y):
        """Scores (N, ...) of the whole batch and its mean loss (NaN if a score is not finite), by slices."""
        n = len(x)
        self._slices, self._n = batch_slices(n, count=self.processes), n
        for p, shared in zip(self.model.parameters(), self._params.arrays, strict=True):
            np.copyto(shared, p.data)  # optimizers may have rebound p.data: copy, every step
        self._share_batch(x, y, max(s.stop - s.start for s in self._slices))
        self._busy = []
        for i, s in enumerate(self._slices[1:]):
            np.copyto(self._batches[i].arrays[0][:s.stop - s.start], x[s])
            np.copyto(self._batches[i].arrays[1][:s.stop - s.start], y[s])
            self._send(i, ("step", s.stop - s.start, (s.stop - s.start) / n, self.model.training))
            self._busy.append(i)
        with blas_threads(1):
            scores, value = slice_forward(self.model, self.loss, x[self._slices[0]], y[self._slices[0]])
        results = [(scores, value)] + [self._receive(i, "scores")[1:] for i in self._busy]
        self._shape = scores.shape
        total = sum(v * (s.stop - s.start) for (_, v), s in zip(results, self._slices, strict=True)) / n
        if not np.isfinite(total):
            for i in self._busy:  # the workers skipped backward; collect their "done"
                self._receive(i, "done")
            self._busy = []
        return np.concatenate([scores for scores, _ in results]), float(total)

    def backward(self):
        """Gradients of the batch's mean loss added into the model's ``param.grad``."""
        share = (self._slices[0].stop - self._slices[0].start) / self._n
        with blas_threads(1):
            slice_backward(self.model, self.loss, share, self._shape)
        for i in self._busy:
            self._receive(i, "done")
            for p, grad in zip(self.model.parameters(), self._grads[i].arrays, strict=True):
                p.grad += grad
        self._busy = []

    def close(self):
        """Stop the workers, then free the shared memory.

        A worker is gone before a block is unlinked: one that opened a block after its name was unlinked
        would register it again with Python's resource tracker (Python < 3.13 registers every block a
        process opens), which then warns at exit of "leaked shared_memory objects".
        """
        blocks = [b for b in [self._params, *self._grads, *self._batches] if b is not None]
        workers, conns = self._workers, self._conns
        self._params, self._workers, self._conns, self._grads, self._batches = None, [], [], [], []
        try:
            for conn in conns:
                try:
                    conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
            for worker in workers:
                worker.join(timeout=5)
                for stop in (worker.terminate, worker.kill):
                    if worker.is_alive():
                        stop()
                        worker.join(timeout=5)
            for conn in conns:
                conn.close()
        finally:  # also after a second Ctrl-C while waiting for the workers
            for block in blocks:
                block.close(unlink=True)
