"""Data parallelism on threads: a training step's batch cut into slices that run at the same time.

NumPy releases the GIL inside its loops and matrix multiplies, so two threads, each taking half of the
batch through forward and backward with a one-thread BLAS, keep two cores busy where one thread's
NumPy loops keep one (measured on 2 cores, steps of batch 64: LeNet-5 9.8 -> 7.0 ms, cifar_net 151 ->
97 ms). The first slice runs through the model itself, each other slice through a replica whose
parameters share the model's arrays and own their gradients; after backward the replicas' gradients are
added into the model's and cleared.

Exact for models that treat every example on its own: the gradient of the batch's mean loss is the sum
of each slice's gradient of its own mean, weighted by the slice's share of the batch. Layers that mix
examples (batch norm in training mode) or draw random numbers (dropout: each replica would draw its own)
make a model ineligible: :func:`why_not_split` says which, and ``fit`` then runs the step whole.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cnnkit.layers import (
    ELU,
    AvgPool2d,
    Blur2d,
    BlurPool2d,
    Concat,
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose2d,
    Flatten,
    GlobalAvgPool2d,
    GlobalMaxPool2d,
    Identity,
    LeakyReLU,
    Linear,
    LocallyConnected2d,
    LocalResponseNorm,
    LPPool2d,
    MaxPool2d,
    ReLU,
    ReLU6,
    Residual,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from cnnkit.runtime import one_blas_thread

PER_EXAMPLE = (Conv1d, Conv2d, Conv3d, ConvTranspose2d, LocallyConnected2d, Linear, Flatten, ReLU, ReLU6,
               LeakyReLU, ELU, Sigmoid, Tanh, Softmax, Identity, MaxPool2d, AvgPool2d, LPPool2d, Blur2d,
               GlobalAvgPool2d, GlobalMaxPool2d, LocalResponseNorm, BlurPool2d, Sequential, Residual, Concat)


def why_not_split(model) -> str | None:
    """None if every layer of ``model`` treats each example on its own; else the first one that does not.

    >>> import cnnkit as ck
    >>> why_not_split(ck.Sequential(ck.Linear(4, 2), ck.ReLU())) is None
    True
    >>> why_not_split(ck.Sequential(ck.Linear(4, 2), ck.Dropout(0.5)))
    "layer '1' (Dropout) mixes or randomizes examples"
    """
    for name, layer in model.named_layers():
        if type(layer) not in PER_EXAMPLE:
            return f"layer {name!r} ({type(layer).__name__}) mixes or randomizes examples"
    return None


def slices_for(model, macs_per_example: int, cores: int, *, small: int) -> int:
    """How many slices to cut each batch into on ``cores`` cores: every core for eligible models of at
    least ``small`` multiply-adds per example (``cnnkit train`` uses 20 M), else 1.

    Measured on 2 cores (batch 64): cifar_net (40 M MACs) steps 157 -> 100 ms; LeNet-5 (0.4 M) gained
    under 10% in isolation and lost in a real run, where the data loader's thread wants a core too
    (8 epochs of ``cnnkit train``: 12 s whole, 18 s in slices).

    >>> import cnnkit as ck
    >>> net, dropout = ck.Sequential(ck.Linear(4, 2)), ck.Sequential(ck.Dropout())
    >>> [slices_for(m, macs, 2, small=1000) for m, macs in ((net, 5000), (net, 8), (dropout, 5000))]
    [2, 1, 1]
    """
    if cores < 2 or macs_per_example < small or why_not_split(model) is not None:
        return 1
    return cores


def check_slices(owner: str, model, **count):
    """The checks of a step in slices: an eligible model and a count (``threads=`` or ``processes=``) >= 2.

    Raises:
        ValueError: naming ``owner``, the layer that makes the model ineligible, or the bad count.
    """
    (name, value), = count.items()
    reason = why_not_split(model)
    if reason is not None:
        raise ValueError(f"{owner}: {reason}; train it with {name}=1.")
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ValueError(f"{owner}: Received {name}={value!r}; expected an int >= 2.")


def batch_slices(n: int, count: int) -> list[slice]:
    """``count`` slices of nearly equal size covering range(n) (fewer if n < count), in order."""
    bounds = np.linspace(0, n, min(count, n) + 1).round().astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def slice_forward(model, loss, x, y):
    """One slice's scores and mean loss; the loss is NaN (not computed) if a score is not finite: the
    caller sees it in the scores, and the loss would raise."""
    scores = model.forward(x)
    flat = scores.reshape(len(scores), -1)
    return scores, float(loss.forward(flat, y)) if np.isfinite(flat).all() else float("nan")


def slice_backward(model, loss, share: float, shape):
    """Gradients of one slice's mean loss times ``share`` (its part of the batch) into its param.grad."""
    dscores = loss.backward()
    dscores = dscores * dscores.dtype.type(share)
    getattr(model, "backward_params", model.backward)(dscores.reshape(shape))


class SplitStep:
    """Forward, loss and backward of one batch on ``threads`` slices at once (see the module doc).

    Args:
        model: an eligible model (:func:`why_not_split` returns None).
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
        with one_blas_thread():
            return list(self._pool.map(work, range(len(self._slices))))

    def forward(self, x, y):
        """Scores (N, ...) of the whole batch and its mean loss (NaN if a score is not finite), by slices."""
        for replica in self.replicas[1:]:  # share the model's current arrays (optimizers may rebind them)
            for mine, theirs in zip(replica.parameters(), self.model.parameters(), strict=True):
                mine.data, mine.trainable = theirs.data, theirs.trainable
            replica.train(self.model.training)
        n = len(x)
        self._slices, self._n = batch_slices(n, self.threads), n
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
