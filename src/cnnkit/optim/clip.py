"""Gradient clipping by the global norm over all parameters (torch.nn.utils.clip_grad_norm_)."""

from __future__ import annotations

import math

import numpy as np

from cnnkit.layers.base import Layer


def clip_grad_norm(params, max_norm: float, norm_type: float = 2.0) -> float:
    """Scale every gradient by ``min(1, max_norm / (total_norm + 1e-6))`` and return the total norm.

    The total norm is the norm of the vector of all trainable gradients joined together, so the direction
    of the whole update is kept. Frozen parameters (``trainable`` False) neither count nor change.

    Args:
        params: a model or an iterable of Parameters. max_norm: the largest allowed norm.
        norm_type: 2.0 (default), any p >= 1, or ``inf`` for the largest absolute entry.

    Returns:
        The total norm before clipping (a Python float); inf or nan says the gradients blew up.

    >>> import numpy as np
    >>> from cnnkit.layers import Parameter
    >>> p = Parameter(np.zeros(2, np.float32)); p.grad[...] = [3.0, 4.0]
    >>> clip_grad_norm([p], max_norm=1.0), p.grad.round(4)
    (5.0, array([0.6, 0.8], dtype=float32))
    """
    if max_norm < 0 or not norm_type >= 1:
        raise ValueError(f"clip_grad_norm: Received max_norm={max_norm}, norm_type={norm_type}; "
                         f"expected max_norm >= 0 and norm_type >= 1.")
    params = params.parameters() if isinstance(params, Layer) else list(params)
    grads = [p.grad for p in params if p.trainable]
    if not grads:
        return 0.0
    if math.isinf(norm_type):
        total = max(float(np.abs(g).max(initial=0.0)) for g in grads)
    else:
        # Accumulate in float64: summing squares of a million float32 entries loses digits otherwise.
        total = sum(float(np.sum(np.abs(g.astype(np.float64)) ** norm_type)) for g in grads)
        total = total ** (1 / norm_type)
    coef = min(1.0, max_norm / (total + 1e-6))
    for g in grads:
        g *= coef
    return total
