"""SGD equals torch.optim.SGD step by step: plain, momentum, dampening, Nesterov, weight decay, groups."""

import numpy as np
import pytest
from optim_helpers import run_parity

from cnnkit.layers import Parameter
from cnnkit.optim import SGD

CASES = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.02, momentum=0.8, nesterov=True, weight_decay=5e-4),
]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_matches_torch(kw, torch):
    run_parity(lambda ps: SGD(ps, **kw), lambda ts: torch.optim.SGD(ts, **kw), steps=8)


def test_worked_example_with_momentum():
    """By hand: g = 1 each step, momentum 0.9, lr 0.1: buf = 1, 1.9, 2.71; p = 0.9, 0.71, 0.439."""
    p = Parameter(np.ones(1))
    opt = SGD([p], lr=0.1, momentum=0.9)
    values = []
    for _ in range(3):
        p.grad[...] = 1.0
        opt.step()
        values.append(float(p.data[0]))
    np.testing.assert_allclose(values, [0.9, 0.71, 0.439])
    np.testing.assert_allclose(opt.state[0]["momentum_buffer"], [2.71])


def test_errors():
    p = Parameter(np.ones(1))
    with pytest.raises(ValueError, match="Nesterov momentum needs momentum > 0"):
        SGD([p], nesterov=True)
    with pytest.raises(ValueError, match=r"SGD: Received lr=-1; expected a value >= 0"):
        SGD([p], lr=-1)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([])
