"""RMSprop equals torch.optim.RMSprop step by step: plain, centered, momentum, weight decay."""

import numpy as np
import pytest
from optim_helpers import run_parity

from cnnkit.layers import Parameter
from cnnkit.optim import RMSprop

CASES = [
    dict(lr=0.01),
    dict(lr=0.01, alpha=0.9, momentum=0.9),
    dict(lr=0.01, centered=True),
    dict(lr=0.005, centered=True, momentum=0.5, weight_decay=0.01, eps=1e-6),
]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_matches_torch(kw, torch):
    run_parity(lambda ps: RMSprop(ps, **kw), lambda ts: torch.optim.RMSprop(ts, **kw), steps=8)


def test_worked_example():
    """g = 2, alpha 0.75: s = 0.25 * 4 = 1, so the first step is lr * 2 / (1 + eps)."""
    p = Parameter(np.zeros(1))
    p.grad[...] = 2.0
    RMSprop([p], lr=0.01, alpha=0.75, eps=0.0).step()
    np.testing.assert_allclose(p.data, [-0.02])
