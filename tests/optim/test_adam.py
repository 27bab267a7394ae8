"""Adam and AdamW equal torch.optim.Adam/AdamW step by step (bias correction, weight decay, AMSGrad)."""

import numpy as np
import pytest
from optim_helpers import run_parity

from cnnkit.layers import Parameter
from cnnkit.optim import Adam, AdamW

CASES = [
    dict(lr=1e-3),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, amsgrad=True),
]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_adam_matches_torch(kw, torch):
    run_parity(lambda ps: Adam(ps, **kw), lambda ts: torch.optim.Adam(ts, **kw), steps=8)


@pytest.mark.parametrize("kw", [dict(lr=0.01), dict(lr=0.01, weight_decay=0.3, amsgrad=True)],
                         ids=["default-decay", "decay0.3-amsgrad"])
def test_adamw_matches_torch(kw, torch):
    run_parity(lambda ps: AdamW(ps, **kw), lambda ts: torch.optim.AdamW(ts, **kw), steps=8)


def test_adam_first_step_moves_by_lr():
    """After one step m/(sqrt(v)) = g/|g| exactly (bias corrected), so every weight moves by lr."""
    p = Parameter(np.zeros(3))
    p.grad[...] = [1e-3, -5.0, 2.0]
    Adam([p], lr=0.5, eps=0.0).step()
    np.testing.assert_allclose(p.data, [-0.5, 0.5, -0.5])


def test_adam_and_adamw_differ_only_with_decay():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt_a, opt_b = Adam([a], lr=0.1), AdamW([b], lr=0.1, weight_decay=0.0)
    for _ in range(3):
        a.grad[...] = b.grad[...] = [0.5, -1.0]
        opt_a.step()
        opt_b.step()
    np.testing.assert_array_equal(a.data, b.data)


def test_errors():
    with pytest.raises(ValueError, match=r"Adam: Received betas=\(0.9, 1.0\)"):
        Adam([Parameter(np.ones(1))], betas=(0.9, 1.0))
