"""Batch slices on threads: a training step's batch cut into slices that run at the same time.

NumPy releases the GIL inside its loops and matrix multiplies, so two threads, each taking half of the
batch through forward and backward with a one-thread BLAS, keep two cores busy where one thread's
NumPy loops keep one (measured on 2 cores, steps of batch 64: LeNet-5 9.8 -> 7.0 ms, cifar_net 151 ->
97 ms). The first slice runs through the model itself, each other slice through a replica whose
parameters share the model's arrays and own their gradients; after backward the replicas' gradients are
added into the model's and cleared.

Exact for models whose layers treat every example on its own (:mod:`cnnkit.train.parallel.slices`); for
others ``fit`` runs the step whole.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cnnkit.fast.dispatch import is_grad_enabled, no_grad
from cnnkit.runtime import batch_slices, blas_threads
from cnnkit.train.parallel.slices import Slices, check_slices, slice_backward, slice_forward


class Threads(Slices):
    """``fit(..., parallel=Threads(n))``: each batch in ``n`` slices at once on ``n`` threads.

    For models of about 20 M multiply-adds per example or more (smaller ones gain on
    :class:`~cnnkit.train.parallel.Processes`); models with batch norm or dropout train whole.

    >>> Threads(2)
    Threads(count=2)
    """

    def step(self, model, loss) -> SplitStep:
        return SplitStep(model, loss, self.count)


class SplitStep:
    """Forward, loss and backward of one batch on ``threads`` slices at once (see the module doc).

    Args:
        model: an eligible model (:func:`~cnnkit.train.parallel.why_not_split` returns None).
        loss: the loss object; each slice gets its own copy.
        threads: an int >= 2.

    Raises:
        ValueError: the model is not eligible, or threads < 2.
    """

    def __init__(self, model, loss, threads: int):
        check_slices("SplitStep", model, threads=threads)
        self.model, self.threads = model, threads
        self.replicas = [model, *(copy.deepcopy(model) for _ in range(threads - 1))]
        self.losses = [loss, *(copy.deepcopy(loss) for _ in range(threads - 1))]
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="cnnkit-split")
        self._slices = []

    def _run(self, work):
        grad = is_grad_enabled()  # the slices compute as the calling thread would (grad mode is per thread)

        def in_mode(i):
            with no_grad(not grad):
                return work(i)

        with blas_threads(1):
            return list(self._pool.map(in_mode, range(len(self._slices))))

    def forward(self, x, y):
        """Scores (N, ...) of the whole batch and its mean loss (NaN if a score is not finite), by slices."""
        for replica in self.replicas[1:]:  # share the model's current arrays (optimizers may rebind them)
            for mine, theirs in zip(replica.parameters(), self.model.parameters(), strict=True):
                mine.data, mine.trainable = theirs.data, theirs.trainable
            replica.train(self.model.training)
        n = len(x)
        self._slices, self._n = batch_slices(n, count=self.threads), n
        results = self._run(lambda i: slice_forward(self.replicas[i], self.losses[i], x[self._slices[i]],
                                                    y[self._slices[i]]))
        self._shapes = [scores.shape for scores, _ in results]
        value = sum(v * (s.stop - s.start) for (_, v), s in zip(results, self._slices, strict=True)) / n
        return np.concatenate([scores for scores, _ in results]), float(value)

    def backward(self):
        """Gradients of the batch's mean loss into the model's ``param.grad`` (added, as backward does)."""
        def backward(i):
            share = (self._slices[i].stop - self._slices[i].start) / self._n
            slice_backward(self.replicas[i], self.losses[i], share, self._shapes[i])

        self._run(backward)
        for replica in self.replicas[1:]:
            for mine, theirs in zip(replica.parameters(), self.model.parameters(), strict=True):
                theirs.grad += mine.grad
                mine.grad[...] = 0

    def close(self):
        self._pool.shutdown()
