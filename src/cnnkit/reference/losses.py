"""The math of the classification losses: softmax cross-entropy, the multiclass SVM (hinge) loss, and the
squared error of the notes; PyTorch's cross_entropy, nll_loss and multi_margin_loss with all their options.

The notes' losses are pairs of plain functions: ``loss, cache = f(scores, targets)`` gives the loss
averaged over the batch (a Python float), and ``f_backward(cache)`` its gradient with respect to the
scores (same shape and dtype as the scores). A loss ends the chain, so their backward takes no upstream
gradient (it is 1).

PyTorch's losses (the second half of this file) follow the contract of every op instead, with
``reduction`` as in :mod:`cnnkit.reference.elementwise_losses`: ``y, cache = f(input, target, ...)`` (y a
0-d array for "mean"/"sum", the per-example losses for "none") and ``f_backward(dy, cache)``.

The arguments are assumed valid: the classes of :mod:`cnnkit.losses` check scores and targets first.

Normalisation, precisely (N examples, C classes):
    softmax_cross_entropy  L = 1/N sum_i -log softmax(s_i)[y_i]                 torch.nn.CrossEntropyLoss()
    multiclass_svm         L = 1/N sum_i 1/C sum_{j != y_i} max(0, s_ij - s_iy_i + margin)
                                                                                torch.nn.MultiMarginLoss()
                           (``divide_by_classes=False``: the notes' L_i, C times larger)
    mse                    L = 1/(N*D) sum_i ||s_i - t_i||^2                     torch.nn.MSELoss()
"""

import numpy as np

from cnnkit.reference.activation import log_softmax
from cnnkit.reference.elementwise_losses import _finish, reduce, upstream


def softmax_cross_entropy(scores, targets):
    """Softmax, then the negative log-likelihood of the correct class, averaged over the batch.

    ``L = 1/N sum_i -log(exp(s_{i,y_i}) / sum_j exp(s_ij))``, computed with log-sum-exp: subtracting the
    row's maximum first leaves every probability unchanged and keeps exp from overflowing.

    Shape: scores (N, C) float, targets (N,) integer class indices in [0, C) -> a float.

    Returns:
        ``(loss, cache)``; ``cache["probabilities"]`` is softmax(scores) (N, C).

    >>> loss, _ = softmax_cross_entropy(np.array([[-2.85, 0.86, 0.28]]), np.array([2]))  # the notes' example
    >>> round(loss, 2)
    1.04
    """
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(targets))
    loss = float(-log_probs[rows, targets].mean())
    return loss, dict(probabilities=np.exp(log_probs), targets=targets)


def softmax_cross_entropy_backward(cache):
    """The gradient of :func:`softmax_cross_entropy`: ``(softmax(s) - onehot(y)) / N``, shape (N, C)."""
    probs, targets = cache["probabilities"], cache["targets"]
    d = probs.copy()
    d[np.arange(len(targets)), targets] -= 1  # the correct class is pulled up, every other pushed down
    return d / probs.dtype.type(len(targets))


def multiclass_svm(scores, targets, margin=1.0, *, divide_by_classes=True):
    """The hinge loss: the correct class should score at least ``margin`` above every other one.

    ``L = 1/N sum_i 1/C sum_{j != y_i} max(0, s_ij - s_{i,y_i} + margin)`` (PyTorch's MultiMarginLoss);
    ``divide_by_classes=False`` drops the 1/C (the notes' per-example loss).

    Shape: scores (N, C) float, targets (N,) integer class indices in [0, C) -> a float.

    Returns:
        ``(loss, cache)``.

    >>> scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])  # the notes' cat/car/frog
    >>> round(multiclass_svm(scores, np.array([0, 1, 2]), divide_by_classes=False)[0], 2)
    5.27
    """
    N, C = scores.shape
    rows = np.arange(N)
    margins = scores - scores[rows, targets][:, None] + scores.dtype.type(margin)
    margins[rows, targets] = 0  # the correct class is not compared with itself
    active = margins > 0  # the terms that count; the (sub)gradient at exactly 0 is 0, as in PyTorch
    scale = N * C if divide_by_classes else N
    loss = float(np.where(active, margins, 0).sum() / scale)
    return loss, dict(active=active, targets=targets, scale=scores.dtype.type(1 / scale))


def multiclass_svm_backward(cache):
    """The gradient of :func:`multiclass_svm`: +1 for every active wrong class j, -(number of active terms)
    for the correct class, times 1/(N*C) (or 1/N), shape (N, C)."""
    active, targets, scale = cache["active"], cache["targets"], cache["scale"]
    d = active * scale
    d[np.arange(len(targets)), targets] = -active.sum(axis=1) * scale
    return d


def mse(scores, targets):
    """Mean squared error over every entry: ``L = mean((scores - targets)^2)``.

    Shape: scores (N, *) float, targets of the same shape (cast to the scores' dtype) -> a float.

    Returns:
        ``(loss, cache)``.

    >>> mse(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 0.0], [3.0, 6.0]]))[0]
    2.0
    """
    diff = scores - np.asarray(targets).astype(scores.dtype, copy=False)
    return float(np.mean(diff * diff)), dict(diff=diff)


def mse_backward(cache):
    """The gradient of :func:`mse`: ``2 (scores - targets) / (N * D)``, shape like the scores."""
    diff = cache["diff"]
    return diff * diff.dtype.type(2 / diff.size)


# -- PyTorch's classification losses: class indices or probabilities, weights, ignored targets ------------

def _batched(input, target):
    """(C,) scores with a () target are one example: (1, C) and (1,). Returns (input, target, unbatched)."""
    if input.ndim == 1:
        return input[None], np.asarray(target)[None], True
    return input, np.asarray(target), False


def _unbatch(y, unbatched, reduction):
    return y[0, ...] if unbatched and reduction == "none" else y  # [0, ...]: a 0-d array, not a scalar


def _class_axis(v, ndim):
    """(C,) -> (1, C, 1, ...): per-class values broadcast against (N, C, *d)."""
    return v.reshape(1, -1, *(1,) * (ndim - 2))


def _gather_weights(target, valid, weight, dtype):
    """Each example's weight: weight[target] (1 without weights), 0 where the target is ignored."""
    if weight is None:
        return valid.astype(dtype)
    return np.where(valid, np.asarray(weight).astype(dtype, copy=False)[target], dtype.type(0))


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """The negative log-likelihood of the target class, from log-probabilities (after a log_softmax).

    ``l_i = -weight[t_i] * input[i, t_i]``, 0 where ``t_i == ignore_index``; the mean is
    ``sum(l) / sum(weight[t_i])`` over the targets not ignored (NaN if all are), exactly
    torch.nn.functional.nll_loss.

    Shape: input (N, C) or (N, C, d1, ...) (one distribution per position) or (C,); target (N,) /
    (N, d1, ...) / () integer class indices -> y: () for "mean"/"sum", target's shape for "none".

    Returns:
        ``(y, cache)``.

    >>> nll_loss(np.log(np.array([[0.5, 0.25, 0.25]])), np.array([0]))[0].round(4).tolist()
    0.6931
    """
    x, t, unbatched = _batched(input, target)
    valid = t != ignore_index
    t = np.where(valid, t, 0)
    w = _gather_weights(t, valid, weight, x.dtype)
    picked = np.take_along_axis(x, t[:, None], axis=1)[:, 0]  # (N, *d): each position's target entry
    losses = np.where(valid, -(w * picked) if weight is not None else -picked, x.dtype.type(0))
    cache = dict(shape=x.shape, dtype=x.dtype, t=t, w=w, count=w.sum(), reduction=reduction,
                 unbatched=unbatched)
    return _unbatch(reduce(losses, reduction, cache["count"]), unbatched, reduction), cache


def nll_loss_backward(dy, cache):
    """The gradient of :func:`nll_loss`: ``-weight[t_i] * dy`` at each target entry, 0 elsewhere (and
    over sum(weight[t_i]) for the mean).

    Shape: dy () or the loss's shape -> dinput like the input.
    """
    t, w, reduction = cache["t"], cache["w"], cache["reduction"]
    dy = upstream(dy, reduction, cache["dtype"])
    if cache["unbatched"] and reduction == "none":
        dy = dy[None]
    dx = np.zeros(cache["shape"], cache["dtype"])
    np.put_along_axis(dx, t[:, None], _finish(-w, dy, reduction, cache["count"])[:, None], axis=1)
    return dx[0] if cache["unbatched"] else dx


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Softmax and the cross-entropy with the target distribution, torch.nn.functional.cross_entropy.

    With log-probabilities ``log p = log_softmax(input)`` over the classes (axis 1), each example's loss
    is ``l_i = -sum_c q_ic log p_ic``, where the target distribution q is
    - for class indices t: ``(1 - eps) * weight[t_i] * onehot(t_i) + eps / C * weight``, and 0 for
      targets equal to ``ignore_index``; the mean divides by ``sum(weight[t_i])`` over the kept targets;
    - for probabilities t (a float array like the input): ``((1 - eps) t + eps / C) * weight``; the mean
      divides by the number of examples (N * d1 * ...),
    with eps = label_smoothing (Szegedy et al.: some of the target's mass spread evenly over the classes).

    Shape: input (N, C), (N, C, d1, ...) (segmentation: one distribution per pixel) or (C,); target
    (N,) / (N, d1, ...) / () integer class indices, or probabilities of the input's shape -> y: () for
    "mean"/"sum", the examples' shape (N, d1, ...) for "none".

    Returns:
        ``(y, cache)``; ``cache["probabilities"]`` is softmax(input).

    >>> y, _ = cross_entropy(np.array([[-2.85, 0.86, 0.28]]), np.array([2]))  # the notes' example
    >>> round(float(y), 2)
    1.04
    """
    x, t, unbatched = _batched(input, target)
    dtype, C = x.dtype, x.shape[1]
    eps = dtype.type(label_smoothing)
    log_probs, _ = log_softmax(x, 1)
    w = None if weight is None else _class_axis(np.asarray(weight).astype(dtype, copy=False), x.ndim)
    soft = np.issubdtype(t.dtype, np.floating)
    if soft:
        t = t.astype(dtype, copy=False)
        q = t if label_smoothing == 0 else t * (1 - eps) + eps / dtype.type(C)
        q = q if w is None else q * w
        count = q.size // C
    else:
        valid = t != ignore_index
        t = np.where(valid, t, 0)
        w_t = _gather_weights(t, valid, weight, dtype)  # (N, *d)
        classes = _class_axis(np.arange(C), x.ndim)
        q = (t[:, None] == classes) * w_t[:, None]  # each position's weighted one-hot target
        if label_smoothing:
            spread = (eps / dtype.type(C)) * (1 if w is None else w) * valid[:, None]
            q = q * (1 - eps) + spread
        count = w_t.sum()
    losses = -(q * log_probs).sum(axis=1)
    cache = dict(log_probs=log_probs, probabilities=np.exp(log_probs), q=q, soft=soft, w=w, eps=eps,
                 count=count, reduction=reduction, unbatched=unbatched)
    return _unbatch(reduce(losses.astype(dtype, copy=False), reduction, count), unbatched, reduction), cache


def cross_entropy_backward(dy, cache):
    """The gradients of :func:`cross_entropy`: (dinput, dtarget).

    ``dinput_ic = (p_ic * sum_c' q_ic' - q_ic) * dy_i``: for a one-hot target of weight 1, the notes'
    ``p - onehot(y)``. dtarget is ``-(1 - eps) * weight * log p * dy`` for probability targets and None
    for class indices (integers have no gradient). The mean divides both by its count.

    Shape: dy () or the loss's shape -> dinput like the input, dtarget like the target (or None).
    """
    p, q, reduction, count = cache["probabilities"], cache["q"], cache["reduction"], cache["count"]
    dy = upstream(dy, reduction, p.dtype)
    if reduction == "none":
        dy = (dy[None] if cache["unbatched"] else dy)[:, None]  # (N, 1, *d): the same for every class
    dinput = _finish(p * q.sum(axis=1, keepdims=True) - q, dy, reduction, count)
    dtarget = None
    if cache["soft"]:
        log_probs, w, eps = cache["log_probs"], cache["w"], cache["eps"]
        base = -log_probs if w is None else -log_probs * w
        dtarget = _finish(base if eps == 0 else base * (1 - eps), dy, reduction, count)
    if cache["unbatched"]:
        dinput, dtarget = dinput[0], None if dtarget is None else dtarget[0]
    return dinput, dtarget


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    """The multiclass hinge loss, torch.nn.functional.multi_margin_loss (the notes' SVM loss over C).

    ``l_i = 1/C sum_{j != y_i} weight[y_i] * max(0, margin - s_{i,y_i} + s_ij)^p`` with p 1 or 2 (the
    squared hinge); a term counts when strictly positive (the (sub)gradient at the kink is 0).

    Shape: input (N, C) or (C,) (or a lone score ()); target (N,) or () integer class indices -> y: () for
    "mean"/"sum", (N,) (() for one example with a () target) for "none".

    Returns:
        ``(y, cache)``.

    >>> scores = np.array([[3.2, 5.1, -1.7]])  # the notes' cat: 2.9 from the car class, divided by C = 3
    >>> round(float(multi_margin_loss(scores, np.array([0]))[0]), 4)
    0.9667
    """
    x = input.reshape(1, -1) if input.ndim < 2 else input  # one example: (C,), or a lone score ()
    t = np.asarray(target).reshape(len(x))
    unbatched = input.ndim < 2 and np.ndim(target) == 0
    N, C = x.shape
    rows = np.arange(N)
    z = x.dtype.type(margin) - x[rows, t][:, None] + x  # (N, C): how far each class is inside the margin
    active = z > 0
    active[rows, t] = False  # the correct class is not compared with itself
    h = z if p == 1 else z * z
    scale = np.full((N, 1), 1 / C, x.dtype) if weight is None else \
        np.asarray(weight).astype(x.dtype, copy=False)[t][:, None] / x.dtype.type(C)
    losses = np.where(active, h * scale, x.dtype.type(0)).sum(axis=1)
    cache = dict(z=z, active=active, t=t, p=p, scale=scale, reduction=reduction, unbatched=unbatched,
                 shape=input.shape)
    return _unbatch(reduce(losses, reduction), unbatched, reduction), cache


def multi_margin_loss_backward(dy, cache):
    """The gradient of :func:`multi_margin_loss`: for each active term j, ``+weight[y]/C * p z^(p-1)`` on
    class j and the same with a minus sign on the correct class, times dy (over N for the mean).

    Shape: dy () or the loss's shape -> dinput like the input.
    """
    z, active, t, p, scale, reduction = (cache[k] for k in ("z", "active", "t", "p", "scale", "reduction"))
    dy = upstream(dy, reduction, z.dtype)
    if reduction == "none":
        dy = (dy[None] if cache["unbatched"] else dy)[:, None]
    slope = scale if p == 1 else 2 * z * scale
    d = np.where(active, slope, z.dtype.type(0))
    d[np.arange(len(t)), t] = -d.sum(axis=1)  # the correct class's score is in every active term
    return _finish(d, dy, reduction, len(t)).reshape(cache["shape"])
