"""Classification losses: cross-entropy (with PyTorch's options), the negative log-likelihood, the
multiclass hinge loss; and the notes' names for them, SoftmaxCrossEntropy and MulticlassSVM.

Kernels: :mod:`cnnkit.reference.losses`.
"""

from __future__ import annotations

import numbers

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.losses.base import Loss, check_array, check_real, check_reduction
from cnnkit.reference import losses as R


def _check_ignore_index(owner, ignore_index) -> int:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"{owner}: Received ignore_index={ignore_index!r}; expected an int (a class index "
                        f"to skip, -100 by default).")
    return int(ignore_index)


class _ClassLoss(Loss):
    """Shared by the losses that take scores (N, C, ...) and a per-class ``weight``."""

    def _check_weight(self, scores):
        C = scores.shape[1] if scores.ndim > 1 else scores.shape[0]
        if self.weight is not None and self.weight.shape != (C,):
            raise ShapeError(f"{self!r}: weight has {self.weight.shape[0]} entries, one per class; the "
                             f"scores {scores.shape} have C = {C} classes.")


class CrossEntropyLoss(_ClassLoss):
    """Softmax and cross-entropy with the targets, exactly ``torch.nn.CrossEntropyLoss``.

    With ``log p = log_softmax(scores)`` over the classes (axis 1) the loss of one example is
    ``-sum_c q_c log p_c`` for the target distribution q: ``weight[y] * onehot(y)`` for a class index y
    (the notes' ``-log p_y``), or given probabilities (soft labels, mixup) times ``weight``. With
    ``label_smoothing = eps`` the target keeps ``1 - eps`` and spreads ``eps`` over all C classes.
    ``reduction="mean"`` divides by ``sum(weight[y_i])`` over the kept targets for class indices (the
    example count without weights) and by the number of examples for probabilities.

    Shape:
        scores (N, C), or (N, C, d1, ...) for one prediction per position (segmentation: (N, C, H, W)),
        or (C,) for one example. targets: integer class indices (N,) / (N, d1, ...) / (), or float
        probabilities of the scores' shape. Result: a float, or the (N, d1, ...) losses for "none".

    Args:
        weight: None or C per-class factors (rare classes count more).
        ignore_index: targets equal to it contribute nothing and are not counted (default -100).
        reduction: "mean" (default), "sum" or "none".
        label_smoothing: eps in [0, 1] (default 0).

    Raises:
        TypeError/ValueError for bad arguments (each named). TypeError: non-float scores, targets neither
        integer nor float. ShapeError: targets that do not fit the scores, a weight without C entries.
        ValueError: NaN/inf scores or probabilities, class indices outside [0, C), ignore_index with
        probability targets.

    >>> loss = CrossEntropyLoss(label_smoothing=0.1)
    >>> round(loss(np.array([[-2.85, 0.86, 0.28]]), np.array([2])), 4)
    1.1252
    """

    _defaults = dict(weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0)

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        owner = type(self).__name__
        self.weight = check_array(owner, "weight", weight, ndim=1)
        self.ignore_index = _check_ignore_index(owner, ignore_index)
        self.reduction = check_reduction(owner, reduction)
        self.label_smoothing = check_real(owner, "label_smoothing", label_smoothing, low=0.0, high=1.0,
                                          allowed=" in [0, 1]")

    def _options(self):
        return dict(weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
                    label_smoothing=self.label_smoothing)

    probabilities = None  # softmax(scores) of the last forward

    def forward(self, scores, targets):
        self._check_scores(scores, None)
        self._check_weight(scores)
        targets = np.asarray(targets)
        if np.issubdtype(targets.dtype, np.floating):
            if targets.shape != scores.shape:
                expected = scores.shape[:1] + scores.shape[2:] if scores.ndim > 1 else ()
                raise TypeError(f"{self!r}: expected integer class indices as targets (int64, shape "
                                f"{expected}) or probabilities of the scores' shape {scores.shape}; received "
                                f"dtype {targets.dtype} and shape {targets.shape}.")
            targets = self._check_like(scores, targets, "probability targets")
            if self.ignore_index >= 0:
                raise ValueError(f"{self!r}: ignore_index={self.ignore_index} applies to class indices; "
                                 f"probability targets have no class to skip (leave ignore_index at -100).")
        else:
            targets = self._check_labels(scores, targets, self.ignore_index)
        value, cache = R.cross_entropy(scores, targets, self.weight, self.ignore_index, self.reduction,
                                       self.label_smoothing)
        self.probabilities = cache["probabilities"] if scores.ndim > 1 else cache["probabilities"][0]
        return self._keep(cache, value, scores.dtype)

    def _backward(self, dy, cache):
        return R.cross_entropy_backward(dy, cache)


class NLLLoss(_ClassLoss):
    """The negative log-likelihood of the target class, given log-probabilities: ``torch.nn.NLLLoss``.

    ``l_i = -weight[y_i] * scores[i, y_i]``; put a ``LogSoftmax()`` layer before it (together they are
    :class:`CrossEntropyLoss`). The mean divides by ``sum(weight[y_i])`` over the targets not ignored.

    Shape: scores (N, C), (N, C, d1, ...) or (C,) log-probabilities (-inf allowed); targets integer class
    indices (N,) / (N, d1, ...) / (). Result: a float, or the (N, d1, ...) losses for "none".

    Args:
        weight: None or C per-class factors. ignore_index: targets to skip (default -100).
        reduction: "mean" (default), "sum" or "none".

    Raises:
        as :class:`CrossEntropyLoss` (targets must be class indices).

    >>> round(NLLLoss()(np.log(np.array([[0.5, 0.25, 0.25]])), np.array([1])), 4)  # -log 0.25
    1.3863
    """

    _defaults = dict(weight=None, ignore_index=-100, reduction="mean")

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        owner = type(self).__name__
        self.weight = check_array(owner, "weight", weight, ndim=1)
        self.ignore_index = _check_ignore_index(owner, ignore_index)
        self.reduction = check_reduction(owner, reduction)

    def _options(self):
        return dict(weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)

    def forward(self, scores, targets):
        self._check_scores(scores, None, negative_infinity=True)
        self._check_weight(scores)
        targets = self._check_labels(scores, targets, self.ignore_index)
        value, cache = R.nll_loss(scores, targets, self.weight, self.ignore_index, self.reduction)
        return self._keep(cache, value, scores.dtype)

    def _backward(self, dy, cache):
        return R.nll_loss_backward(dy, cache), None


class MultiMarginLoss(_ClassLoss):
    """The multiclass hinge (SVM) loss, exactly ``torch.nn.MultiMarginLoss``.

    ``l_i = 1/C sum_{j != y_i} weight[y_i] * max(0, margin - s_{i,y_i} + s_ij)^p``: every class that
    scores within ``margin`` of the correct one costs; p=2 squares each violation. The notes' SVM loss
    is C times the default (see :class:`MulticlassSVM`).

    Shape: scores (N, C) or (C,); targets integer class indices (N,) or (). Result: a float, or (N,) for
    "none".

    Args:
        p: 1 (default) or 2. margin: the gap required (default 1.0). weight: None or C factors, by the
        correct class. reduction: "mean" (default), "sum" or "none".

    Raises:
        TypeError/ValueError for bad arguments; as :class:`CrossEntropyLoss` for bad scores and targets
        (scores must be (N, C) or (C,)).

    >>> round(MultiMarginLoss(p=2)(np.array([[3.2, 5.1, -1.7]]), np.array([0])), 4)  # 2.9^2 / 3
    2.8033
    """

    _defaults = dict(p=1, margin=1.0, weight=None, reduction="mean")

    def __init__(self, p=1, margin=1.0, weight=None, reduction="mean"):
        owner = type(self).__name__
        if isinstance(p, bool) or p not in (1, 2):
            raise ValueError(f"{owner}: Received p={p!r}; expected 1 (the hinge) or 2 (the squared hinge).")
        self.p = int(p)
        self.margin = check_real(owner, "margin", margin)
        self.weight = check_array(owner, "weight", weight, ndim=1)
        self.reduction = check_reduction(owner, reduction)

    def _options(self):
        return dict(p=self.p, margin=self.margin, weight=self.weight, reduction=self.reduction)

    def forward(self, scores, targets):
        self._check_scores(scores, 2 if np.ndim(scores) != 1 else 1)
        self._check_weight(scores)
        targets = self._check_labels(scores, targets)
        value, cache = R.multi_margin_loss(scores, targets, self.p, self.margin, self.weight, self.reduction)
        return self._keep(cache, value, scores.dtype)

    def _backward(self, dy, cache):
        return R.multi_margin_loss_backward(dy, cache), None


class SoftmaxCrossEntropy(CrossEntropyLoss):
    """The notes' name for :class:`CrossEntropyLoss`: softmax, then ``-log p_y`` averaged over the batch.

    ``L = 1/N sum_i -log(exp(s_{i,y_i}) / sum_j exp(s_ij))``, computed with log-sum-exp (the maximum score
    is subtracted first), so any finite scores work. ``backward()`` is ``(softmax(s) - onehot(y)) / N``.
    After forward, ``probabilities`` holds softmax(s) (N, C). Takes CrossEntropyLoss's options too.

    Shape: scores (N, C) float, targets (N,) integer class indices in [0, C) (and what CrossEntropyLoss
    takes).

    Raises:
        TypeError: non-float scores or non-integer targets. ShapeError: scores not (N, C), targets not (N,).
        ValueError: NaN/inf scores, or targets outside [0, C).

    >>> loss = SoftmaxCrossEntropy()
    >>> round(loss(np.array([[-2.85, 0.86, 0.28]]), np.array([2])), 2)  # the notes' example
    1.04
    """


class MulticlassSVM(MultiMarginLoss):
    """The notes' multiclass SVM (hinge) loss: the correct class should score ``margin`` above the others.

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
        super().__init__(margin=margin)
        self.divide_by_classes = bool(divide_by_classes)

    def __repr__(self):
        flag = "" if self.divide_by_classes else ", divide_by_classes=False"
        return f"MulticlassSVM(margin={self.margin}{flag})"

    def forward(self, scores, targets):
        # The notes' kernel, whose sum over all N * C terms at once these results have always had.
        self._check_scores(scores)
        targets = self._check_labels(scores, targets)
        value, cache = R.multiclass_svm(scores, targets, self.margin,
                                        divide_by_classes=self.divide_by_classes)
        return self._keep(cache, value, scores.dtype)

    def _backward(self, dy, cache):
        return R.multiclass_svm_backward(cache) * dy, None
