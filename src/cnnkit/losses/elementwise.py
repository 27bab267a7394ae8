"""Losses that compare scores and targets entry by entry: MSELoss, L1Loss, SmoothL1Loss, BCEWithLogitsLoss,
and the notes' name MSE. PyTorch's definitions; both arguments get a gradient
(``backward(with_targets=True)``). Kernels: :mod:`cnnkit.reference.elementwise_losses`.
"""

from __future__ import annotations

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.losses.base import Loss, check_array, check_real, check_reduction
from cnnkit.reference import elementwise_losses as R


class _Elementwise(Loss):
    """scores of any shape, targets of the same shape; ``reduction``; one kernel pair."""

    _defaults = dict(reduction="mean")

    def __init__(self, reduction="mean"):
        self.reduction = check_reduction(type(self).__name__, reduction)

    def _options(self):
        return dict(reduction=self.reduction)

    def _kernel(self, scores, targets):
        raise NotImplementedError

    def _kernel_backward(self, dy, cache):
        raise NotImplementedError

    def forward(self, scores, targets):
        self._check_scores(scores, ndim=None)
        targets = self._check_like(scores, targets)
        value, cache = self._kernel(scores, targets)
        return self._keep(cache, value, scores.dtype)

    def _backward(self, dy, cache):
        return self._kernel_backward(dy, cache)


class MSELoss(_Elementwise):
    """The mean squared error over every entry, ``mean((scores - targets)^2)``: ``torch.nn.MSELoss``.

    The notes' L2 regression loss ``||s_i - t_i||^2`` averaged over the batch is D times this value, D being
    the number of outputs per example. ``backward()`` is ``2 (scores - targets) / (N * D)``.

    Shape: scores (N, *) float; targets of the same shape (any real dtype, converted to the scores' dtype).
    Result: a float, or the scores' shape for "none".

    Args:
        reduction: "mean" (default), "sum" or "none".

    Raises:
        ValueError: a bad reduction; NaN/inf scores or targets. TypeError: non-float scores or non-numeric
        targets. ShapeError: targets of another shape.

    >>> MSELoss(reduction="sum")(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 0.0], [3.0, 6.0]]))
    8.0
    """

    def _kernel(self, scores, targets):
        return R.mse_loss(scores, targets, self.reduction)

    def _kernel_backward(self, dy, cache):
        return R.mse_loss_backward(dy, cache)


class MSE(MSELoss):
    """The notes' name for :class:`MSELoss`: ``L = mean((scores - targets)^2)`` over every entry.

    Shape: scores (N, *) float; targets of the same shape.

    Raises:
        as :class:`MSELoss`.

    >>> MSE()(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 0.0], [3.0, 6.0]]))
    2.0
    """


class L1Loss(_Elementwise):
    """The mean absolute error, ``mean(|scores - targets|)``: ``torch.nn.L1Loss``.

    The gradient is ``sign(scores - targets)`` (0 where they are equal, as in PyTorch) over the count.

    Shape: scores (N, *) float; targets of the same shape. Result: a float, or the scores' shape for "none".

    Args:
        reduction: "mean" (default), "sum" or "none".

    Raises:
        as :class:`MSELoss`.

    >>> L1Loss()(np.array([1.0, -2.0]), np.array([0.0, 0.0]))
    1.5
    """

    def _kernel(self, scores, targets):
        return R.l1_loss(scores, targets, self.reduction)

    def _kernel_backward(self, dy, cache):
        return R.l1_loss_backward(dy, cache)


class SmoothL1Loss(_Elementwise):
    """Quadratic for small errors, linear for large ones: ``torch.nn.SmoothL1Loss`` (Fast R-CNN's box loss).

    ``l = 0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (d = scores - targets): the
    gradient is bounded by 1, so outliers pull no harder than in L1. ``beta=0`` is :class:`L1Loss`.

    Shape: scores (N, *) float; targets of the same shape. Result: a float, or the scores' shape for "none".

    Args:
        reduction: "mean" (default), "sum" or "none". beta: the switch point, >= 0 (default 1.0).

    Raises:
        ValueError: beta negative or not finite; as :class:`MSELoss`.

    >>> SmoothL1Loss(reduction="none")(np.array([0.5, 3.0]), np.zeros(2)).tolist()
    [0.125, 2.5]
    """

    _defaults = dict(reduction="mean", beta=1.0)

    def __init__(self, reduction="mean", beta=1.0):
        super().__init__(reduction)
        self.beta = check_real("SmoothL1Loss", "beta", beta, low=0.0, allowed=" >= 0")

    def _options(self):
        return dict(reduction=self.reduction, beta=self.beta)

    def _kernel(self, scores, targets):
        return R.smooth_l1_loss(scores, targets, self.reduction, self.beta)

    def _kernel_backward(self, dy, cache):
        return R.smooth_l1_loss_backward(dy, cache)


class BCEWithLogitsLoss(_Elementwise):
    """A sigmoid and the binary cross-entropy in one stable step: ``torch.nn.BCEWithLogitsLoss``.

    For multi-label classification (each of C labels on or off): with p = sigmoid(score),
    ``l = -weight * (pos_weight * t log p + (1 - t) log(1 - p))`` per entry, computed from the scores
    without ever taking the log of a probability that rounded to 0. Targets are in [0, 1] (soft labels
    allowed; not checked, as in PyTorch).

    Shape: scores (N, *) float; targets of the same shape; weight broadcasts against the scores,
    pos_weight against their last axis (one per class). Result: a float, or the scores' shape for "none".

    Args:
        weight: None or factors per entry (broadcast). reduction: "mean" (default), "sum" or "none".
        pos_weight: None or factors for the positive term, one per class (> 1 raises recall).

    Raises:
        ShapeError: weight or pos_weight that do not broadcast against the scores; as :class:`MSELoss`.

    >>> round(BCEWithLogitsLoss()(np.array([0.0, 100.0]), np.array([1.0, 1.0])), 4)  # (log 2 + 0) / 2
    0.3466
    """

    _defaults = dict(weight=None, reduction="mean", pos_weight=None)

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.weight = check_array("BCEWithLogitsLoss", "weight", weight)
        self.pos_weight = check_array("BCEWithLogitsLoss", "pos_weight", pos_weight)

    def _options(self):
        return dict(weight=self.weight, reduction=self.reduction, pos_weight=self.pos_weight)

    def _check_broadcast(self, scores):
        for name in ("weight", "pos_weight"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                fits = np.broadcast_shapes(value.shape, scores.shape) == scores.shape
            except ValueError:
                fits = False
            if not fits:
                raise ShapeError(f"{self!r}: {name} of shape {value.shape} does not broadcast against the "
                                 f"scores {scores.shape}" + (" (one per class: the last axis)"
                                                             if name == "pos_weight" else "") + ".")

    def _kernel(self, scores, targets):
        self._check_broadcast(scores)
        return R.binary_cross_entropy_with_logits(scores, targets, self.weight, self.reduction,
                                                  self.pos_weight)

    def _kernel_backward(self, dy, cache):
        return R.binary_cross_entropy_with_logits_backward(dy, cache)
