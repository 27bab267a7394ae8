"""The Optimizer base: parameter groups, frozen parameters, per-parameter state, state dicts.

An optimizer reads ``param.grad`` (filled by ``model.backward``) and updates ``param.data`` in place. The
update rules themselves are in sgd.py, adam.py and rmsprop.py and follow ``torch.optim`` line for line, so
that the same gradients give the same weights.

Parameter groups (PyTorch's idea, used for fine-tuning): pass a list of dicts instead of parameters,
``[{"params": head.parameters()}, {"params": backbone.parameters(), "lr_mult": 0.1}]``. Each group may
override any hyperparameter; ``lr_mult`` scales the group's learning rate relative to ``lr``, and a
schedule later scales every group's rate by the same factor, so the ratio is kept. A parameter whose
``trainable`` is False is skipped at every step (freezing after construction works too).
"""

from __future__ import annotations

import numpy as np

from cnnkit.layers.base import Layer, Parameter


class Optimizer:
    """Base class: subclasses pass their ``defaults`` and implement ``update(p, grad, state, group)``.

    Attributes:
        param_groups: list of dicts, each with ``"params"`` (a list of Parameter) and every hyperparameter.
        state: per-parameter dict of arrays (momentum buffers, moment estimates, step counts), keyed by the
            parameter's position in the flattened list of all groups' parameters.
    """

    def __init__(self, params, defaults: dict):
        name = type(self).__name__
        for key, value in defaults.items():
            if isinstance(value, float | int) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"{name}: Received {key}={value}; expected a value >= 0.")
        self.defaults = dict(defaults)
        if isinstance(params, Layer):
            params = params.parameters()
        params = list(params)
        if not params:
            raise ValueError(f"{name}: received an empty parameter list; pass model.parameters() or a model.")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = [self._make_group(g, i) for i, g in enumerate(groups)]
        seen = [id(p) for g in self.param_groups for p in g["params"]]
        if len(seen) != len(set(seen)):
            raise ValueError(f"{name}: a parameter appears in more than one group (or twice in one group).")
        self.state: dict[int, dict[str, np.ndarray]] = {}

    def _make_group(self, group, index):
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: param group {index} must be a dict with a 'params' key, "
                            f"received {type(group).__name__}.")
        params = group["params"]
        params = params.parameters() if isinstance(params, Layer) else list(params)
        bad = [type(p).__name__ for p in params if not isinstance(p, Parameter)]
        if bad:
            raise TypeError(f"{name}: param group {index} holds {bad[0]}, expected cnnkit Parameters.")
        unknown = set(group) - set(self.defaults) - {"params", "lr_mult"}
        if unknown:
            raise ValueError(f"{name}: param group {index} has unknown keys {sorted(unknown)}; "
                             f"allowed: {sorted(self.defaults)} and 'lr_mult'.")
        full = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}, "params": params}
        full.setdefault("lr_mult", 1.0)
        if "lr" not in group:
            full["lr"] = self.defaults["lr"] * full["lr_mult"]
        return full

    @property
    def lr(self) -> float:
        """The first group's current learning rate (what a progress line shows)."""
        return self.param_groups[0]["lr"]

    def _indexed(self):
        """(index, parameter, group) over every parameter of every group, in a fixed order."""
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                yield i, p, group
                i += 1

    def zero_grad(self):
        for _, p, _ in self._indexed():
            p.grad[...] = 0

    def step(self):
        """Apply one update to every trainable parameter from its accumulated gradient."""
        for i, p, group in self._indexed():
            if p.trainable:
                self.update(p, p.grad, self.state.setdefault(i, {}), group)

    def update(self, p: Parameter, grad: np.ndarray, state: dict, group: dict):
        raise NotImplementedError

    # -- checkpoints --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"type", "param_groups": [hyperparameters + parameter indices], "state": {name: array}}``.

        The state is flat: ``"3.exp_avg"`` is parameter 3's first moment, ``"3.step"`` its step count as a
        0-d int64 array, so a checkpoint can store it as plain arrays.
        """
        groups, start = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            groups.append({**{k: v for k, v in group.items() if k != "params"},
                           "params": list(range(start, start + n))})
            start += n
        state = {f"{i}.{key}": np.array(value, copy=True) for i, s in sorted(self.state.items())
                 for key, value in s.items()}
        return {"type": type(self).__name__, "param_groups": groups, "state": state}

    def load_state_dict(self, state_dict: dict):
        """Restore hyperparameters and state saved by :meth:`state_dict`, checking that the layout matches."""
        name = type(self).__name__
        saved_type = state_dict.get("type", name)
        if saved_type != name:
            raise ValueError(f"{name}.load_state_dict: the state was saved by {saved_type}; "
                             f"build a {saved_type} to resume it.")
        groups = state_dict["param_groups"]
        ours = [len(g["params"]) for g in self.param_groups]
        theirs = [len(g["params"]) for g in groups]
        if ours != theirs:
            raise ValueError(f"{name}.load_state_dict: parameter groups hold {theirs} parameters in the "
                             f"state but {ours} in this optimizer; the model or grouping differs.")
        params = [p for _, p, _ in self._indexed()]
        new_state: dict[int, dict[str, np.ndarray]] = {}
        for key, value in state_dict["state"].items():
            index, field = key.split(".", 1)
            p = params[int(index)]
            value = np.asarray(value)
            if value.ndim and value.shape != p.shape:
                raise ValueError(f"{name}.load_state_dict: state {key!r} has shape {value.shape} but the "
                                 f"parameter has shape {p.shape}.")
            new_state.setdefault(int(index), {})[field] = np.array(value, copy=True)
        for group, saved in zip(self.param_groups, groups, strict=True):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = new_state
        return self

    def __repr__(self):
        hyper = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({hyper}, groups={len(self.param_groups)})"
