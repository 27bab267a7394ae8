"""Stochastic gradient descent with momentum, Nesterov and weight decay (torch.optim.SGD's rule)."""

from __future__ import annotations

from cnnkit.optim.base import Optimizer


class SGD(Optimizer):
    """``p -= lr * d`` where d is the gradient, optionally with momentum, Nesterov and weight decay.

    The update, exactly as ``torch.optim.SGD`` (so the same gradients give the same weights)::

        g = grad + weight_decay * p
        buf = g                                          (first step)
        buf = momentum * buf + (1 - dampening) * g       (later steps)
        d = g + momentum * buf if nesterov else buf      (d = g without momentum)
        p = p - lr * d

    Args:
        params: a model, its ``parameters()``, or a list of param-group dicts (see :mod:`cnnkit.optim.base`).
        lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False.

    Raises:
        ValueError for negative hyperparameters, or nesterov without momentum / with dampening.

    >>> import numpy as np
    >>> from cnnkit.layers import Parameter
    >>> p = Parameter(np.ones(2, np.float32)); p.grad[...] = 1.0
    >>> SGD([p], lr=0.1).step(); p.data
    array([0.9, 0.9], dtype=float32)
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"SGD: Received nesterov=True with momentum={momentum}, dampening={dampening}; "
                             f"Nesterov momentum needs momentum > 0 and dampening = 0.")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def update(self, p, grad, state, group):
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        momentum = group["momentum"]
        if momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.copy()
            else:
                buf = state["momentum_buffer"]
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            buf = state["momentum_buffer"]
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.data -= group["lr"] * grad
