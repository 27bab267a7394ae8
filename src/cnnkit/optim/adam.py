"""Adam and AdamW: per-parameter step sizes from running moments of the gradient (torch.optim's rules)."""

from __future__ import annotations

import math

import numpy as np

from cnnkit.optim.base import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with optional L2 weight decay added to the gradient, and AMSGrad.

    The update, as ``torch.optim.Adam``::

        g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g                  (torch writes m.lerp_(g, 1 - beta1))
        v = beta2 * v + (1 - beta2) * g * g              (amsgrad: v_max = max(v_max, v), used below)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Args:
        params: a model, its ``parameters()``, or param-group dicts. lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0.0, amsgrad=False.

    Raises:
        ValueError for negative hyperparameters or betas outside [0, 1).

    >>> import numpy as np
    >>> from cnnkit.layers import Parameter
    >>> p = Parameter(np.zeros(2, np.float32)); p.grad[...] = [1.0, -3.0]
    >>> Adam([p], lr=0.1).step(); p.data.round(6)   # the first step moves every weight by lr
    array([-0.1,  0.1], dtype=float32)
    """

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        betas = tuple(float(b) for b in betas)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{type(self).__name__}: Received betas={betas}; expected two values in [0, 1).")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def update(self, p, grad, state, group):
        lr, wd = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if "step" not in state:
            state["step"] = np.array(0, dtype=np.int64)
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = int(state["step"])
        if wd and self.decoupled:
            p.data *= 1 - lr * wd            # AdamW: shrink the weights, outside the adaptive scaling
        elif wd:
            grad = grad + wd * p.data        # Adam: L2 penalty inside the gradient
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (grad - m) * (1 - beta1)
        v *= beta2
        v += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        step_size = lr / (1 - beta1**t)
        denom = np.sqrt(v) / math.sqrt(1 - beta2**t) + group["eps"]
        p.data -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): ``p *= 1 - lr * weight_decay`` first.

    Same arguments as :class:`Adam`, but weight_decay defaults to 0.01 as in ``torch.optim.AdamW``.

    >>> import numpy as np
    >>> from cnnkit.layers import Parameter
    >>> p = Parameter(np.ones(1, np.float32))   # zero gradient: only the decay acts
    >>> AdamW([p], lr=0.1, weight_decay=0.5).step(); p.data
    array([0.95], dtype=float32)
    """

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
