"""The loss contract and the checks every loss shares: scores, targets, options, the upstream gradient.

A loss ends the network: ``value = loss.forward(scores, targets)`` and ``dscores = loss.backward()``,
so a training step reads ``loss.forward(model.forward(x), y); model.backward(loss.backward())``. With
``reduction="none"`` forward returns the per-example losses and backward takes their upstream gradient,
as a torch ``loss.backward(gradient)`` does. ``backward(with_targets=True)`` also returns the gradient
with respect to the targets where PyTorch has one (float targets: regression, distillation, soft labels).
"""

from __future__ import annotations

import numbers

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.reference.elementwise_losses import REDUCTIONS


def check_reduction(owner: str, reduction) -> str:
    """``reduction`` if it is one of "mean", "sum", "none"; else ValueError naming ``owner``."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"{owner}: Received reduction={reduction!r}; expected one of "
                         f"{', '.join(map(repr, REDUCTIONS))}.")
    return reduction


def check_real(owner: str, name: str, value, *, low=None, high=None, allowed="") -> float:
    """A finite real number within [low, high]: TypeError if not a number, ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: Received {name}={value!r}; expected a number.")
    if not np.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{owner}: Received {name}={value!r}; expected a finite number{allowed}.")
    return float(value)


def check_array(owner: str, name: str, value, *, ndim=None):
    """``None``, or a finite real array (a list is fine), kept as given (cast to the scores' dtype later)."""
    if value is None:
        return None
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)) \
            or array.dtype == np.bool_:
        raise TypeError(f"{owner}: Received {name} of dtype {array.dtype}; expected real numbers.")
    if ndim is not None and array.ndim != ndim:
        raise ShapeError(f"{owner}: Received {name} of shape {array.shape}; expected a {ndim}-D array "
                         f"(one value per class).")
    if not np.isfinite(array).all():
        raise ValueError(f"{owner}: Received {name} with NaN or infinite values; expected finite numbers.")
    return array.copy()


class Loss:
    """Base class: validates scores, keeps the cache between forward and backward.

    Subclasses implement ``forward`` (check, run one kernel of :mod:`cnnkit.reference`, keep its cache)
    and ``_backward(dy, cache) -> (dscores, dtargets)``.
    """

    _cache = None
    reduction = "mean"
    _defaults: dict = {}

    def __call__(self, scores, targets):
        return self.forward(scores, targets)

    def __repr__(self):
        args = [f"{k}={v!r}" for k, v in self._options().items()
                if not _same(v, self._defaults.get(k, _NONE))]
        return f"{type(self).__name__}({', '.join(args)})"

    def _options(self) -> dict:
        """The options shown in repr (those that differ from ``_defaults``)."""
        return {}

    @property
    def mixes_examples(self) -> bool:
        """True if the batch's loss is not the plain mean of one loss per example (a sum, or a mean
        weighted per class): then a batch cut into slices, each weighted by its share of examples, would
        not give the whole batch's gradient. (Targets equal to ``ignore_index`` do the same to a mean;
        a loss cannot know them before it sees them.)"""
        return self.reduction != "mean" or getattr(self, "weight", None) is not None

    def forward(self, scores, targets):
        raise NotImplementedError

    def backward(self, grad=None, *, with_targets=False):
        """dL/dscores for the last forward; the cache is dropped, so a second call fails loudly.

        Args:
            grad: the upstream gradient of the loss: a number for "mean" and "sum" (default 1), an array
                of the per-example losses' shape for ``reduction="none"`` (required there, as in PyTorch).
            with_targets: return ``(dscores, dtargets)``; dtargets is None where PyTorch gives no target
                gradient (class indices).

        Raises:
            RuntimeError: before forward (or twice). ValueError/ShapeError: a missing or mis-shaped grad.
        """
        cache, self._cache = self._cache, None
        if cache is None:
            raise RuntimeError(f"{self!r}: backward was called before forward (or twice for one forward); "
                               f"call forward(scores, targets) first.")
        kernel_cache, loss_shape, dtype = cache
        dy = self._upstream(grad, loss_shape, dtype)
        dscores, dtargets = self._backward(dy, kernel_cache)
        return (dscores, dtargets) if with_targets else dscores

    def _backward(self, dy, cache):
        raise NotImplementedError

    def _keep(self, kernel_cache, value, dtype):
        """Store the kernel's cache for backward, and return the value as the user sees it: a float for
        "mean" and "sum", the array of per-example losses for "none"."""
        self._cache = (kernel_cache, np.shape(value), dtype)
        return value if self.reduction == "none" else float(value)

    def _upstream(self, grad, shape, dtype):
        if grad is None:
            if self.reduction == "none":
                raise ValueError(f"{self!r}: backward needs grad, the upstream gradient of the per-example "
                                 f"losses of shape {shape}, with reduction='none' (e.g. "
                                 f"backward(np.ones({shape}))).")
            return dtype.type(1)
        dy = np.asarray(grad)
        if not (np.issubdtype(dy.dtype, np.floating) or np.issubdtype(dy.dtype, np.integer)):
            raise TypeError(f"{self!r}: Received grad of dtype {dy.dtype}; expected real numbers.")
        if self.reduction == "none" and dy.shape != shape:
            raise ShapeError(f"{self!r}: expected grad of the per-example losses' shape {shape}, received "
                             f"shape {dy.shape}.")
        if self.reduction != "none" and dy.size != 1:
            raise ShapeError(f"{self!r}: expected a number as grad of the {self.reduction} of the losses, "
                             f"received shape {dy.shape}.")
        return dy.astype(dtype).reshape(shape)

    # -- checks -------------------------------------------------------------------------------------------
    def _check_scores(self, scores, ndim: int | None = 2, *, negative_infinity=False):
        if not isinstance(scores, np.ndarray):
            raise TypeError(f"{self!r}: expected scores as a NumPy array, received {type(scores).__name__}.")
        if not np.issubdtype(scores.dtype, np.floating):
            raise TypeError(f"{self!r}: expected floating-point scores, received dtype {scores.dtype}; "
                            f"convert with scores.astype(np.float32).")
        if ndim is not None and scores.ndim != ndim:
            raise ShapeError(f"{self!r}: expected scores of shape (N, C), one row of class scores per "
                             f"example; received shape {scores.shape} "
                             f"(add a Flatten() before the classifier).")
        if scores.size == 0:
            raise ShapeError(f"{self!r}: received empty scores of shape {scores.shape}.")
        finite = np.isfinite(scores) | (np.isneginf(scores) if negative_infinity else False)
        bad = np.size(scores) - np.count_nonzero(finite)
        if bad:
            raise ValueError(f"{self!r}: {bad} of {scores.size} scores are NaN or infinite; training has "
                             f"probably diverged (lower the learning rate, check the input normalisation).")

    def _check_labels(self, scores, targets, ignore_index=None):
        """Class indices: an integer array (N,) (or (N, d1, ...) for scores (N, C, d1, ...), () for (C,))
        with values in [0, C), or equal to ``ignore_index``."""
        C = scores.shape[1] if scores.ndim > 1 else scores.shape[0]
        expected = scores.shape[:1] + scores.shape[2:] if scores.ndim > 1 else ()
        targets = np.asarray(targets)
        if not np.issubdtype(targets.dtype, np.integer):
            raise TypeError(f"{self!r}: expected integer class indices as targets (int64, shape {expected}), "
                            f"received dtype {targets.dtype}.")
        if targets.shape != expected:
            if scores.ndim > 2 and targets.shape == scores.shape[:1]:
                raise ShapeError(f"{self!r}: expected scores of shape (N, C) for targets of shape (N,); "
                                 f"received shape {scores.shape} with targets {targets.shape} (add a "
                                 f"Flatten() before the classifier, or give targets {expected}, a class per "
                                 f"position).")
            raise ShapeError(f"{self!r}: expected targets of shape {expected}, one class index per row of "
                             f"the scores {scores.shape}, received shape {targets.shape}.")
        outside = ((targets < 0) | (targets >= C)) & (targets != ignore_index if ignore_index is not None
                                                      else True)
        if outside.any():
            where = np.argwhere(outside)[:5]
            at = f"rows {where[:, 0].tolist()}" if targets.ndim == 1 else \
                f"positions {[tuple(i) for i in where.tolist()]}" if targets.ndim else "the target"
            skip = f" (or ignore_index={ignore_index} to skip one)" if ignore_index is not None else ""
            raise ValueError(f"{self!r}: targets must be class indices in [0, {C - 1}] for {C} classes; "
                             f"received {targets[outside][:5].tolist()} at {at}{skip}.")
        return targets

    def _check_like(self, scores, targets, name="targets"):
        """Real-valued targets of the scores' shape, finite, as an array (not yet converted)."""
        targets = np.asarray(targets)
        if not (np.issubdtype(targets.dtype, np.floating) or np.issubdtype(targets.dtype, np.integer)):
            raise TypeError(f"{self!r}: expected numeric {name}, received dtype {targets.dtype}.")
        if targets.shape != scores.shape:
            raise ShapeError(f"{self!r}: {name} must have the scores' shape {scores.shape}, received "
                             f"{targets.shape}.")
        if not np.isfinite(targets).all():
            raise ValueError(f"{self!r}: {name} contain NaN or infinite values.")
        return targets


_NONE = object()


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    return a == b
