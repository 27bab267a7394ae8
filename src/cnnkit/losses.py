"""Loss functions: softmax cross-entropy, the multiclass SVM (hinge) loss, and the squared (L2) loss.

Every loss has ``forward(scores, targets) -> float`` (averaged over the batch) and ``backward() -> dscores``
(the gradient of that average with respect to the scores, same shape and dtype as the scores), so a
training step reads ``loss.forward(model.forward(x), y); model.backward(loss.backward())``.

Normalisation, precisely (N examples, C classes):
    SoftmaxCrossEntropy  L = 1/N sum_i -log softmax(s_i)[y_i]                 == torch.nn.CrossEntropyLoss()
    MulticlassSVM        L = 1/N sum_i 1/C sum_{j != y_i} max(0, s_ij - s_iy_i + margin)
                                                                             == torch.nn.MultiMarginLoss()
                         with ``divide_by_classes=False``: the notes' L_i = sum_{j != y_i} max(0, ...),
                         i.e. C times larger.
    MSE                  L = 1/(N*D) sum_i ||s_i - t_i||^2 over all N*D entries  == torch.nn.MSELoss()
                         (the notes' per-example L2 loss ||s_i - t_i||^2 averaged over the batch is D
                         times this; D = number of outputs per example).
"""

from __future__ import annotations

import numbers

import numpy as np

from cnnkit.errors import ShapeError


class Loss:
    """Base class: validates scores, keeps the cache between forward and backward."""

    _cache = None

    def __call__(self, scores, targets):
        return self.forward(scores, targets)

    def __repr__(self):
        return f"{type(self).__name__}()"

    def forward(self, scores, targets) -> float:
        raise NotImplementedError

    def backward(self):
        """dL/dscores for the last forward; the cache is dropped, so a second call fails loudly."""
        cache, self._cache = self._cache, None
        if cache is None:
            raise RuntimeError(f"{self!r}: backward was called before forward (or twice for one forward); "
                               f"call forward(scores, targets) first.")
        return self._backward(cache)

    def _backward(self, cache):
        raise NotImplementedError

    def _check_scores(self, scores, ndim: int | None = 2):
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
        bad = np.size(scores) - np.count_nonzero(np.isfinite(scores))
        if bad:
            raise ValueError(f"{self!r}: {bad} of {scores.size} scores are NaN or infinite; training has "
                             f"probably diverged (lower the learning rate, check the input normalisation).")

    def _check_labels(self, scores, targets):
        """Class indices: an integer array (N,) with values in [0, C)."""
        N, C = scores.shape
        targets = np.asarray(targets)
        if not np.issubdtype(targets.dtype, np.integer):
            raise TypeError(f"{self!r}: expected integer class indices as targets (int64, shape ({N},)), "
                            f"received dtype {targets.dtype}.")
        if targets.shape != (N,):
            raise ShapeError(f"{self!r}: expected targets of shape ({N},), one class index per row of the "
                             f"scores {scores.shape}, received shape {targets.shape}.")
        outside = (targets < 0) | (targets >= C)
        if outside.any():
            raise ValueError(f"{self!r}: targets must be class indices in [0, {C - 1}] for {C} classes; "
                             f"received {targets[outside][:5].tolist()} at rows "
                             f"{np.flatnonzero(outside)[:5].tolist()}.")
        return targets


class SoftmaxCrossEntropy(Loss):
    """Softmax followed by the negative log-likelihood of the correct class, averaged over the batch.

    ``L = 1/N sum_i -log(exp(s_{i,y_i}) / sum_j exp(s_ij))``, computed with log-sum-exp (the maximum score
    is subtracted first), so any finite scores work. ``backward()`` is ``(softmax(s) - onehot(y)) / N``.
    After forward, ``probabilities`` holds softmax(s) (N, C).

    Shape: scores (N, C) float, targets (N,) integer class indices in [0, C).

    Raises:
        TypeError: non-float scores or non-integer targets. ShapeError: scores not (N, C), targets not (N,).
        ValueError: NaN/inf scores, or targets outside [0, C).

    >>> loss = SoftmaxCrossEntropy()
    >>> round(loss(np.array([[-2.85, 0.86, 0.28]]), np.array([2])), 2)  # the notes' example
    1.04
    """

    probabilities = None

    def forward(self, scores, targets):
        self._check_scores(scores)
        targets = self._check_labels(scores, targets)
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        log_probs = shifted - log_sum
        rows = np.arange(len(targets))
        self.probabilities = np.exp(log_probs)
        self._cache = (self.probabilities, targets)
        return float(-log_probs[rows, targets].mean())

    def _backward(self, cache):
        probs, targets = cache
        d = probs.copy()
        d[np.arange(len(targets)), targets] -= 1
        return d / probs.dtype.type(len(targets))


class MulticlassSVM(Loss):
    """The multiclass SVM (hinge) loss: the correct class should score at least ``margin`` above the others.

    ``L = 1/N sum_i 1/C sum_{j != y_i} max(0, s_ij - s_{i,y_i} + margin)`` by default, exactly
    ``torch.nn.MultiMarginLoss(margin=margin)``. With ``divide_by_classes=False`` the per-example loss is
    the notes' ``L_i = sum_{j != y_i} max(0, s_ij - s_{i,y_i} + margin)`` (C times larger), still averaged
    over the batch. The (sub)gradient counts a term as active when it is strictly positive, as PyTorch does.

    Shape: scores (N, C) float, targets (N,) integer class indices in [0, C).

    Args:
        margin: the required gap (the notes' Delta, default 1.0).
        divide_by_classes: divide each example's sum by C like PyTorch (default True).

    Raises:
        as :class:`SoftmaxCrossEntropy`; TypeError/ValueError for a margin that is not a finite number.

    >>> scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])  # the notes' cat/car/frog
    >>> round(MulticlassSVM(divide_by_classes=False)(scores, np.array([0, 1, 2])), 2)  # (2.9 + 0 + 12.9) / 3
    5.27
    """

    def __init__(self, margin=1.0, *, divide_by_classes=True):
        if isinstance(margin, bool) or not isinstance(margin, numbers.Real):
            raise TypeError(f"MulticlassSVM: Received margin={margin!r}; expected a number.")
        if not np.isfinite(margin):
            raise ValueError(f"MulticlassSVM: Received margin={margin!r}; expected a finite number.")
        self.margin, self.divide_by_classes = float(margin), bool(divide_by_classes)

    def __repr__(self):
        flag = "" if self.divide_by_classes else ", divide_by_classes=False"
        return f"MulticlassSVM(margin={self.margin}{flag})"

    def forward(self, scores, targets):
        self._check_scores(scores)
        targets = self._check_labels(scores, targets)
        N, C = scores.shape
        rows = np.arange(N)
        margins = scores - scores[rows, targets][:, None] + scores.dtype.type(self.margin)
        margins[rows, targets] = 0  # the correct class is not compared with itself
        active = margins > 0
        scale = N * C if self.divide_by_classes else N
        self._cache = (active, targets, scores.dtype.type(1 / scale))
        return float(np.where(active, margins, 0).sum() / scale)

    def _backward(self, cache):
        active, targets, scale = cache
        d = active * scale  # +1 for every active wrong class ...
        d[np.arange(len(targets)), targets] = -active.sum(axis=1) * scale  # ... -1 per active term for y_i
        return d


class MSE(Loss):
    """Mean squared error over every entry, ``L = mean((scores - targets)^2)``: torch.nn.MSELoss().

    The notes' L2 regression loss ``||s_i - t_i||^2`` averaged over the batch is D times this value, D being
    the number of outputs per example. ``backward()`` is ``2 (scores - targets) / (N * D)``.

    Shape: scores (N, *) float; targets of the same shape (any real dtype, converted to the scores' dtype).

    Raises:
        TypeError: non-float scores or non-numeric targets. ShapeError: targets of another shape.
        ValueError: NaN/inf scores or targets.

    >>> MSE()(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 0.0], [3.0, 6.0]]))
    2.0
    """

    def forward(self, scores, targets):
        self._check_scores(scores, ndim=None)
        targets = np.asarray(targets)
        if not (np.issubdtype(targets.dtype, np.floating) or np.issubdtype(targets.dtype, np.integer)):
            raise TypeError(f"{self!r}: expected numeric targets, received dtype {targets.dtype}.")
        if targets.shape != scores.shape:
            raise ShapeError(f"{self!r}: targets must have the scores' shape {scores.shape}, received "
                             f"{targets.shape}.")
        if not np.isfinite(targets).all():
            raise ValueError(f"{self!r}: targets contain NaN or infinite values.")
        diff = scores - targets.astype(scores.dtype, copy=False)
        self._cache = diff
        return float(np.mean(diff * diff))

    def _backward(self, cache):
        diff = cache
        return diff * diff.dtype.type(2 / diff.size)
