"""RMSprop: divide the gradient by a running root-mean-square of its recent values (torch.optim.RMSprop)."""

from __future__ import annotations

import numpy as np

from cnnkit.optim.base import Optimizer


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), optionally centered and with momentum.

    The update, as ``torch.optim.RMSprop``::

        g = grad + weight_decay * p
        s = alpha * s + (1 - alpha) * g * g
        a = sqrt(s - mean_g**2) if centered else sqrt(s)     (mean_g: running mean of g, same alpha)
        buf = momentum * buf + g / (a + eps);  p = p - lr * buf       (momentum > 0)
        p = p - lr * g / (a + eps)                                    (momentum = 0)

    Args:
        params: a model, its ``parameters()``, or param-group dicts. lr=0.01, alpha=0.99, eps=1e-8,
        weight_decay=0.0, momentum=0.0, centered=False.

    >>> import numpy as np
    >>> from cnnkit.layers import Parameter
    >>> p = Parameter(np.zeros(1, np.float32)); p.grad[...] = 2.0
    >>> RMSprop([p], lr=0.01, alpha=0.75).step(); p.data   # g / sqrt(0.25 g^2) = 2: the step is 2 lr
    array([-0.02], dtype=float32)
    """

    def __init__(self, params, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def update(self, p, grad, state, group):
        alpha, momentum = group["alpha"], group["momentum"]
        if "step" not in state:
            state["step"] = np.array(0, dtype=np.int64)
            state["square_avg"] = np.zeros_like(p.data)
            if momentum:
                state["momentum_buffer"] = np.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p.data)
        state["step"] += 1
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        s = state["square_avg"]
        s *= alpha
        s += (1 - alpha) * grad * grad
        if group["centered"]:
            mean = state["grad_avg"]
            mean += (grad - mean) * (1 - alpha)
            avg = np.sqrt(s - mean * mean)
        else:
            avg = np.sqrt(s)
        avg += group["eps"]
        if momentum:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad / avg
            p.data -= group["lr"] * buf
        else:
            p.data -= group["lr"] * (grad / avg)
