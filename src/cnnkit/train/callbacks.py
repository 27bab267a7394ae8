"""Callbacks for ``fit``: the hook points, and EarlyStopping (stop when a metric stops improving)."""

from __future__ import annotations

import math

import numpy as np


class Callback:
    """Override any of these; ``on_epoch_end`` returning True stops training after that epoch."""

    def on_train_begin(self, model, optimizer):
        pass

    def on_epoch_begin(self, epoch: int):
        pass

    def on_batch_end(self, epoch: int, step: int, loss: float):
        pass

    def on_epoch_end(self, epoch: int, record: dict) -> bool | None:
        return None


MODES = ("auto", "min", "max")


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    Args:
        monitor: a History key; default "val_loss" (falls back to "train_loss" without validation data).
        patience=3: epochs without improvement before stopping.
        min_delta=0.0: the smallest change that counts as an improvement.
        mode: "min", "max", or "auto" (max for keys containing "accuracy" or "top5", else min).
        restore_best=True: when training ends, put back the weights of the best epoch.

    >>> stop = EarlyStopping(patience=2)
    >>> [stop.on_epoch_end(e, {"val_loss": v}) for e, v in enumerate([1.0, 0.5, 0.6, 0.55])]
    [False, False, False, True]
    >>> stop.best, stop.best_epoch
    (0.5, 2)
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0,
                 mode: str = "auto", restore_best: bool = True):
        if mode not in MODES:
            raise ValueError(f"Invalid mode {mode!r}, should be one of {', '.join(map(repr, MODES))}.")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping: Received patience={patience!r}; expected a positive int.")
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.restore_best = restore_best
        if mode == "auto":
            mode = "max" if ("accuracy" in monitor or "top5" in monitor) else "min"
        self.mode = mode
        self.best, self.best_epoch, self.wait, self.best_state = None, None, 0, None
        self.model = None

    def on_train_begin(self, model, optimizer):
        self.model = model

    def _value(self, record):
        key = self.monitor
        if record.get(key) is None and key.startswith("val_"):
            key = "train_" + key[4:]
        if record.get(key) is None:
            raise KeyError(f"EarlyStopping: the epoch record has no {self.monitor!r}; "
                           f"available: {', '.join(sorted(record))}.")
        return float(record[key])

    def on_epoch_end(self, epoch, record):
        value = self._value(record)
        better = self.best is None or (value < self.best - self.min_delta if self.mode == "min"
                                       else value > self.best + self.min_delta)
        if better and math.isfinite(value):
            self.best, self.best_epoch, self.wait = value, record.get("epoch", epoch + 1), 0
            if self.restore_best and self.model is not None:
                self.best_state = {k: np.array(v, copy=True) for k, v in self.model.state_dict().items()}
            return False
        self.wait += 1
        return self.wait >= self.patience

    def restore(self, model):
        """Load the best epoch's weights into ``model`` (if restore_best and there was a best epoch)."""
        if self.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "best_state": self.best_state}

    def load_state_dict(self, state: dict):
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_state = state.get("best_state")
        return self

    def __repr__(self):
        return f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, mode={self.mode!r})"
