"""What training in batch slices needs wherever the slices run: which models allow it, and one slice's step.

A batch cut into slices gives exactly the whole batch's gradient when every example is treated on its own:
the gradient of the batch's mean loss is the sum of each slice's gradient of its own mean, weighted by the
slice's share of the batch. A layer whose training forward mixes examples (batch norm's batch statistics)
or draws random numbers (dropout: each slice would draw its own masks) says so with the class attribute
``mixes_examples = True``; :func:`why_not_split` reads it on every layer of a model, so a new layer class
that treats examples on its own needs nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def why_not_split(model) -> str | None:
    """None if every layer of ``model`` treats each example on its own; else the first one that does not.

    >>> import cnnkit as ck
    >>> why_not_split(ck.Sequential(ck.Linear(4, 2), ck.ReLU())) is None
    True
    >>> why_not_split(ck.Sequential(ck.Linear(4, 2), ck.Dropout(0.5)))
    "layer '1' (Dropout) mixes or randomizes examples"
    """
    for name, layer in model.named_layers():
        if layer.mixes_examples:
            return f"layer {name!r} ({type(layer).__name__}) mixes or randomizes examples"
    return None


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


@dataclass(frozen=True)
class Slices:
    """The base of :class:`~cnnkit.train.parallel.Threads` and :class:`~cnnkit.train.parallel.Processes`:
    how many slices each batch is cut into (1: the batch runs whole).

    Raises:
        ValueError: count is not an int >= 1.
    """

    count: int

    def __post_init__(self):
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"{type(self).__name__}: Received count={self.count!r}; expected an int >= 1.")

    def step(self, model, loss):
        """The object that runs one batch's forward and backward in slices (``fit`` calls it)."""
        raise NotImplementedError


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
