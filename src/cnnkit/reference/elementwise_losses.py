"""Losses that compare scores and targets entry by entry: squared error, absolute error, smooth L1 (Huber
with a scale) and the binary cross-entropy of logits. PyTorch's definitions and names.

Every loss is a pair of pure functions, like every op: ``y, cache = f(input, target, ..., reduction)``
and ``dinput, dtarget = f_backward(dy, cache)``. The per-entry losses ``l`` are then reduced:

    reduction="mean"   y = sum(l) / l.size         (a 0-d array; dy is a scalar)
    reduction="sum"    y = sum(l)
    reduction="none"   y = l, input's shape        (dy has that shape)

Both arguments get a gradient, as in PyTorch (a target can be another network's output: distillation,
autoencoders). y, dinput and dtarget keep the input's dtype; the target is converted to it. The arguments
are assumed valid: the classes of :mod:`cnnkit.losses` check them first.
"""

import numpy as np

REDUCTIONS = ("mean", "sum", "none")


def reduce(losses, reduction, count=None):
    """The per-entry (or per-example) ``losses`` reduced: their mean (``sum / count``, count defaulting to
    their number: a weighted mean passes its total weight), their sum (both 0-d arrays of the losses'
    dtype), or themselves (``"none"``)."""
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "mean":
        # A count of 0 (every target ignored) gives NaN, as in PyTorch, without NumPy's warning.
        with np.errstate(invalid="ignore", divide="ignore"):
            total = total / losses.dtype.type(losses.size if count is None else count)
    return np.asarray(total, dtype=losses.dtype)


def upstream(dy, reduction, dtype):
    """dy as an array of ``dtype`` that broadcasts against the per-entry losses: a scalar for "mean" and
    "sum" (the mean's 1/count is applied by each backward, after its own factors), the array for "none"."""
    return np.asarray(dy, dtype=dtype)


def _finish(base, dy, reduction, count):
    """``base * dy``, divided by ``count`` for the mean: in this order, so that dy = 1 leaves the bits of
    ``base / count`` (the loss classes' results stay bit for bit those of before the reductions)."""
    out = base * dy
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            out = out / base.dtype.type(count)
    return out


def mse_loss(input, target, reduction="mean"):
    """The squared error ``l = (input - target)^2`` per entry, reduced (torch.nn.functional.mse_loss).

    Shape: input any shape, target the same -> y: () for "mean"/"sum", input's shape for "none".

    Returns:
        ``(y, cache)``.

    >>> mse_loss(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 0.0], [3.0, 6.0]]))[0].tolist()
    2.0
    """
    diff = input - np.asarray(target).astype(input.dtype, copy=False)
    return reduce(diff * diff, reduction), dict(diff=diff, reduction=reduction)


def mse_loss_backward(dy, cache):
    """The gradients of :func:`mse_loss`: ``dinput = 2 (input - target) dy`` (over the count for the
    mean), ``dtarget = -dinput``.

    Shape: dy () or the loss's shape -> (dinput, dtarget) like the input.
    """
    diff, reduction = cache["diff"], cache["reduction"]
    dy = upstream(dy, reduction, diff.dtype)
    if reduction == "mean":  # 2/count as one rounded factor: the bits of the MSE class's gradient
        dinput = diff * diff.dtype.type(2 / diff.size) * dy
    else:
        dinput = diff * diff.dtype.type(2) * dy
    return dinput, -dinput


def l1_loss(input, target, reduction="mean"):
    """The absolute error ``l = |input - target|`` per entry, reduced (torch.nn.functional.l1_loss).

    Shape: as :func:`mse_loss`.

    Returns:
        ``(y, cache)``.

    >>> l1_loss(np.array([1.0, -2.0]), np.array([0.0, 0.0]), reduction="sum")[0].tolist()
    3.0
    """
    diff = input - np.asarray(target).astype(input.dtype, copy=False)
    return reduce(np.abs(diff), reduction), dict(diff=diff, reduction=reduction)


def l1_loss_backward(dy, cache):
    """The gradients of :func:`l1_loss`: ``dinput = sign(input - target) dy`` (0 where they are equal, as
    in PyTorch), ``dtarget = -dinput``.

    Shape: dy () or the loss's shape -> (dinput, dtarget) like the input.
    """
    diff, reduction = cache["diff"], cache["reduction"]
    dinput = _finish(np.sign(diff), upstream(dy, reduction, diff.dtype), reduction, diff.size)
    return dinput, -dinput


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """Smooth L1 (Fast R-CNN's box loss): quadratic near 0, linear beyond ``beta``.

    ``l = 0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``, with d = input - target; the two
    pieces meet with equal value and slope at |d| = beta. ``beta=0`` is the L1 loss.

    Shape: as :func:`mse_loss`.

    Returns:
        ``(y, cache)``.

    >>> smooth_l1_loss(np.array([0.5, 3.0]), np.zeros(2), reduction="none")[0].tolist()
    [0.125, 2.5]
    """
    diff = input - np.asarray(target).astype(input.dtype, copy=False)
    magnitude = np.abs(diff)
    if beta == 0:
        losses = magnitude
    else:
        b = input.dtype.type(beta)
        losses = np.where(magnitude < b, input.dtype.type(0.5) * diff * diff / b, magnitude - b / 2)
    return reduce(losses, reduction), dict(diff=diff, reduction=reduction, beta=beta)


def smooth_l1_loss_backward(dy, cache):
    """The gradients of :func:`smooth_l1_loss`: ``d / beta`` inside (-beta, beta), ``sign(d)`` outside,
    times dy; ``dtarget = -dinput``.

    Shape: dy () or the loss's shape -> (dinput, dtarget) like the input.
    """
    diff, reduction, beta = cache["diff"], cache["reduction"], cache["beta"]
    if beta == 0:
        slope = np.sign(diff)
    else:
        b = diff.dtype.type(beta)
        slope = np.where(np.abs(diff) < b, diff / b, np.sign(diff))
    dinput = _finish(slope, upstream(dy, reduction, diff.dtype), reduction, diff.size)
    return dinput, -dinput


def _softplus_of_negative(x):
    """log(1 + exp(-x)) without overflow: ``log1p(exp(-|x|)) + max(-x, 0)``."""
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)


def _sigmoid(x):
    e = np.exp(-np.abs(x))  # <= 1: never overflows (see reference.activation.sigmoid)
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Sigmoid and binary cross-entropy in one stable expression, per entry (multi-label classification).

    With p = sigmoid(x): ``l = -weight * (pos_weight * t * log(p) + (1 - t) * log(1 - p))``, computed as
    ``weight * ((1 - t) x + (1 + (pos_weight - 1) t) * log(1 + exp(-x)))`` (PyTorch's form), which never
    takes the log of a probability that rounded to 0. Targets may be soft (any value in [0, 1]).

    Shape: input any shape, target the same; weight broadcasts against the input; pos_weight against the
    last axis (one per class) -> y: () for "mean"/"sum", input's shape for "none".

    Returns:
        ``(y, cache)``.

    >>> x, t = np.array([0.0, 100.0]), np.array([1.0, 1.0])
    >>> y, _ = binary_cross_entropy_with_logits(x, t, reduction="none")
    >>> np.round(y, 4).tolist()
    [0.6931, 0.0]
    """
    t = np.asarray(target).astype(input.dtype, copy=False)
    softplus = _softplus_of_negative(input)  # -log(sigmoid(x))
    if pos_weight is None:
        losses = (1 - t) * input + softplus
    else:
        pos_weight = np.asarray(pos_weight).astype(input.dtype, copy=False)
        losses = (1 - t) * input + (1 + (pos_weight - 1) * t) * softplus
    if weight is not None:
        weight = np.asarray(weight).astype(input.dtype, copy=False)
        losses = losses * weight
    cache = dict(x=input, t=t, softplus=softplus, weight=weight, pos_weight=pos_weight, reduction=reduction,
                 count=losses.size)
    return reduce(losses, reduction), cache


def binary_cross_entropy_with_logits_backward(dy, cache):
    """The gradients of :func:`binary_cross_entropy_with_logits`, times weight and dy:
    ``dinput = (sigmoid(x) - t)`` (with pos_weight: ``(pos_weight t + 1 - t) sigmoid(x) - pos_weight t``),
    ``dtarget = -x`` (with pos_weight: ``-x + (pos_weight - 1) log(1 + exp(-x))``).

    Shape: dy () or the loss's shape -> (dinput, dtarget) like the input.
    """
    x, t, softplus, weight, pos_weight = (cache[k] for k in ("x", "t", "softplus", "weight", "pos_weight"))
    reduction, count = cache["reduction"], cache["count"]
    p = _sigmoid(x)
    if pos_weight is None:
        dinput, dtarget = p - t, -x
    else:
        dinput = (pos_weight * t + 1 - t) * p - pos_weight * t
        dtarget = -x + (pos_weight - 1) * softplus
    if weight is not None:
        dinput, dtarget = dinput * weight, dtarget * weight
    dy = upstream(dy, reduction, x.dtype)
    return _finish(dinput, dy, reduction, count), _finish(dtarget, dy, reduction, count)
