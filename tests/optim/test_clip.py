"""clip_grad_norm equals torch.nn.utils.clip_grad_norm_ (the returned norm and the clipped gradients)."""

import math

import numpy as np
import pytest

from cnnkit.layers import Parameter
from cnnkit.optim import clip_grad_norm
from conftest import assert_parity

CASES = [(1.0, 2.0), (100.0, 2.0), (0.5, 1.0), (0.3, math.inf), (2.0, 3.0)]


@pytest.mark.parametrize("max_norm,norm_type", CASES)
def test_matches_torch(max_norm, norm_type, torch):
    r = np.random.default_rng(0)
    ours = [Parameter(np.zeros(s, np.float32)) for s in ((5, 3, 3, 3), (5,), (7, 4))]
    theirs = []
    for p in ours:
        p.grad[...] = r.standard_normal(p.shape)
        t = torch.zeros(p.shape, requires_grad=True)
        t.grad = torch.tensor(p.grad.copy())
        theirs.append(t)
    total = clip_grad_norm(ours, max_norm, norm_type)
    total_t = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert total == pytest.approx(float(total_t), rel=1e-6)
    for p, t in zip(ours, theirs, strict=True):
        assert p.grad.dtype == np.float32
        assert_parity(p.grad, t.grad, tol=1e-6, what="clipped grad")


def test_frozen_parameters_neither_count_nor_change():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(1), trainable=False)
    a.grad[...], b.grad[...] = [3.0, 4.0], [100.0]
    assert clip_grad_norm([a, b], 1.0) == 5.0
    np.testing.assert_allclose(a.grad, [0.6, 0.8], rtol=1e-6)
    assert b.grad[0] == 100.0


def test_errors():
    with pytest.raises(ValueError, match="expected max_norm >= 0 and norm_type >= 1"):
        clip_grad_norm([Parameter(np.zeros(1))], -1.0)
