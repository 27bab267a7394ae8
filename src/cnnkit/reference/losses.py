"""The math of the losses: softmax cross-entropy, the multiclass SVM (hinge) loss and the squared error.

Each loss is a pair of plain functions: ``loss, cache = f(scores, targets)`` gives the loss averaged over
the batch (a Python float), and ``f_backward(cache)`` its gradient with respect to the scores (same shape
and dtype as the scores). A loss ends the chain, so its backward takes no upstream gradient (it is 1).

The arguments are assumed valid: the classes of :mod:`cnnkit.losses` check scores and targets first.

Normalisation, precisely (N examples, C classes):
    softmax_cross_entropy  L = 1/N sum_i -log softmax(s_i)[y_i]                 torch.nn.CrossEntropyLoss()
    multiclass_svm         L = 1/N sum_i 1/C sum_{j != y_i} max(0, s_ij - s_iy_i + margin)
                                                                                torch.nn.MultiMarginLoss()
                           (``divide_by_classes=False``: the notes' L_i, C times larger)
    mse                    L = 1/(N*D) sum_i ||s_i - t_i||^2                     torch.nn.MSELoss()
"""

import numpy as np


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
