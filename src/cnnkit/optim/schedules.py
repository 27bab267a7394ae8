"""Learning-rate schedules: step decay, cosine annealing, linear warm-up (torch.optim.lr_scheduler's curves).

A schedule multiplies each group's initial learning rate by ``factor(t)``, where t counts calls to
``step()``. ``fit`` calls ``step()`` once per epoch, or once per batch when the schedule was built with
``interval="step"``. Because every group is scaled by the same factor, per-group ``lr_mult`` ratios hold.
Closed forms are used (torch's chainable recurrences compute the same curves up to rounding).
"""

from __future__ import annotations

import math

INTERVALS = ("epoch", "step")


class Schedule:
    """Base class: subclasses implement ``factor(t)``; ``step()`` advances t and sets every group's lr."""

    def __init__(self, optimizer, *, interval: str = "epoch"):
        if interval not in INTERVALS:
            allowed = ", ".join(map(repr, INTERVALS))
            raise ValueError(f"Invalid interval {interval!r}, should be one of {allowed}.")
        self.optimizer, self.interval, self.t = optimizer, interval, 0
        self.base_lrs = [g.setdefault("initial_lr", g["lr"]) for g in optimizer.param_groups]
        self._apply()

    def factor(self, t: int) -> float:
        raise NotImplementedError

    def _apply(self):
        f = self.factor(self.t)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * f

    def step(self):
        self.t += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"type": type(self).__name__, "t": self.t, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict):
        if state.get("type", type(self).__name__) != type(self).__name__:
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state was saved by "
                             f"{state['type']}.")
        self.t, self.base_lrs = int(state["t"]), list(state["base_lrs"])
        self._apply()
        return self


def _positive(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: Received {name}={value!r}; expected a positive int.")
    return value


class StepLR(Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` steps: ``lr = lr0 * gamma**(t // step_size)``.

    >>> import numpy as np
    >>> from cnnkit.layers import Parameter
    >>> from cnnkit.optim import SGD
    >>> s = StepLR(SGD([Parameter(np.zeros(1))], lr=1.0), step_size=2, gamma=0.5)
    >>> [s.factor(t) for t in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, *, interval: str = "epoch"):
        self.step_size, self.gamma = _positive("StepLR", "step_size", step_size), gamma
        super().__init__(optimizer, interval=interval)

    def factor(self, t):
        return self.gamma ** (t // self.step_size)


class CosineAnnealing(Schedule):
    """Half a cosine from lr0 down to ``eta_min`` over ``T_max`` steps (torch's CosineAnnealingLR).

    ``lr = eta_min + (lr0 - eta_min) * (1 + cos(pi * t / T_max)) / 2``. With several groups, ``eta_min`` is
    the same absolute floor for each, as in PyTorch.

    >>> import numpy as np
    >>> from cnnkit.layers import Parameter
    >>> from cnnkit.optim import SGD
    >>> s = CosineAnnealing(SGD([Parameter(np.zeros(1))], lr=1.0), T_max=4)
    >>> [round(s.factor(t), 4) for t in range(5)]
    [1.0, 0.8536, 0.5, 0.1464, 0.0]
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, *, interval: str = "epoch"):
        self.T_max, self.eta_min = _positive("CosineAnnealing", "T_max", T_max), eta_min
        super().__init__(optimizer, interval=interval)

    def factor(self, t):
        return (1 + math.cos(math.pi * t / self.T_max)) / 2

    def _apply(self):
        f = self.factor(self.t)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = self.eta_min + (base - self.eta_min) * f


class LinearWarmup(Schedule):
    """Ramp the factor linearly from ``start_factor`` to 1 over ``warmup`` steps, then hand over to ``then``.

    Alone it is torch's ``LinearLR(start_factor, 1.0, total_iters=warmup)``; with ``then`` (another schedule
    on the same optimizer) it is ``SequentialLR([LinearLR, then], milestones=[warmup])``: after the warm-up,
    ``then`` runs from its own t = 0.

    >>> import numpy as np
    >>> from cnnkit.layers import Parameter
    >>> from cnnkit.optim import SGD
    >>> s = LinearWarmup(SGD([Parameter(np.zeros(1))], lr=1.0), warmup=4, start_factor=0.2)
    >>> [round(s.factor(t), 2) for t in range(6)]
    [0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
    """

    def __init__(self, optimizer, warmup: int, start_factor: float = 0.1, *, then: Schedule | None = None,
                 interval: str = "epoch"):
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearWarmup: Received start_factor={start_factor}; "
                             f"expected a value in (0, 1].")
        if then is not None and then.optimizer is not optimizer:
            raise ValueError("LinearWarmup: `then` must schedule the same optimizer.")
        self.warmup, self.start_factor = _positive("LinearWarmup", "warmup", warmup), start_factor
        self.then = then
        super().__init__(optimizer, interval=then.interval if then is not None else interval)

    def factor(self, t):
        return self.start_factor + (1 - self.start_factor) * min(t, self.warmup) / self.warmup

    def _apply(self):
        if self.then is not None and self.t >= self.warmup:
            self.then.t = self.t - self.warmup
            self.then._apply()
        else:
            super()._apply()
