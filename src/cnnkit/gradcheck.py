"""Numeric gradient checking: the proof that a backward pass is the derivative of its forward.

Centered differences in float64, ``(f(x + h) - f(x - h)) / 2h`` with h = 1e-6, compared with the analytic
gradient. The scalar being differentiated is ``sum(forward(x) * r)`` for a fixed random ``r``, so every
output element and every path through the layer is exercised.
"""

from __future__ import annotations

import copy

import numpy as np

from cnnkit.layers.base import Layer


def relative_error(analytic, numeric) -> float:
    """max |a - n| / max(max |a|, max |n|): a norm-wise relative error that stays meaningful where single
    entries are near zero (an element-wise ratio there would only measure rounding noise)."""
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0))
    return 0.0 if scale == 0 else float(np.abs(analytic - numeric).max() / scale)


def gradcheck(target, x, *, targets=None, eps: float = 1e-6, seed: int = 0) -> dict[str, float]:
    """Max relative error of the input gradient and of every parameter gradient.

    Args:
        target: a Layer (its ``forward``/``backward``), or a loss with ``forward(scores, targets)`` and
            ``backward()`` (then pass ``targets``). The target is copied and converted to float64; the
            caller's object is left as it was.
        x: an input array (converted to float64).

    Returns:
        ``{"input": err, "<param name>": err, ...}``; a correct backward gives errors around 1e-9.

    >>> from cnnkit.layers import Conv2d
    >>> errors = gradcheck(Conv2d(2, 3, 3, padding=1), np.random.default_rng(0).normal(size=(2, 2, 5, 5)))
    >>> max(errors.values()) < 1e-6
    True
    """
    x = np.array(x, dtype=np.float64)
    if isinstance(target, Layer):
        layer = copy.deepcopy(target).astype(np.float64)
        layer.zero_grad()
        r = np.random.default_rng(seed).standard_normal(layer.output_shape(x.shape))

        def scalar():
            return float(np.sum(layer.forward(x) * r))

        layer.forward(x)
        analytic = {"input": layer.backward(r.copy())}
        analytic.update({name: p.grad.copy() for name, p in layer.named_parameters()})
        arrays = {"input": x, **{name: p.data for name, p in layer.named_parameters()}}
    else:
        loss = copy.deepcopy(target)

        def scalar():
            return float(loss.forward(x, targets))

        loss.forward(x, targets)
        analytic, arrays = {"input": loss.backward()}, {"input": x}

    errors = {}
    for name, array in arrays.items():
        numeric = np.zeros_like(array)
        for i in np.ndindex(array.shape):  # indexing, not a flat reshape: x may be channels-last memory
            original = array[i]
            array[i] = original + eps
            plus = scalar()
            array[i] = original - eps
            minus = scalar()
            array[i] = original
            numeric[i] = (plus - minus) / (2 * eps)
        errors[name] = relative_error(analytic[name], numeric)
    return errors
