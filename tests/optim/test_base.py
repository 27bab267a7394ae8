"""Parameter groups (lr multipliers), frozen parameters, and state_dict round trips for every optimizer."""

import numpy as np
import pytest
from optim_helpers import run_parity

from cnnkit.layers import Conv2d, Parameter, Sequential
from cnnkit.optim import OPTIMIZERS, SGD, Adam


def test_groups_with_lr_mult_match_torch_groups(torch):
    """{"lr_mult": 0.1} is torch's group {"lr": 0.1 * lr}; other group overrides pass through."""
    def ours(ps):
        groups = [{"params": ps[:1], "lr_mult": 0.1}, {"params": ps[1:], "momentum": 0.5}]
        return SGD(groups, lr=0.2, momentum=0.9)

    def theirs(ts):
        return torch.optim.SGD([{"params": ts[:1], "lr": 0.02}, {"params": ts[1:], "momentum": 0.5}],
                               lr=0.2, momentum=0.9)

    opt, *_ = run_parity(ours, theirs, steps=4)
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(0.02), 0.2]


def test_frozen_parameters_are_skipped():
    r = np.random.default_rng(0)
    net = Sequential(Conv2d(1, 2, 3, rng=r), Conv2d(2, 2, 1, rng=r))
    net[0].weight.trainable = False           # freezing after the optimizer exists works too
    opt = Adam(net, lr=0.1)
    before = {k: v.copy() for k, v in net.state_dict().items()}
    for p in net.parameters():
        p.grad[...] = 1.0
    opt.step()
    after = net.state_dict()
    assert np.array_equal(after["0.weight"], before["0.weight"])
    for key in ("0.bias", "1.weight", "1.bias"):
        assert not np.array_equal(after[key], before[key])
    assert 0 not in opt.state and len(opt.state) == 3


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_dict_round_trip_continues_identically(name):
    """3 steps, save, 3 more == 3 steps, load the state into a fresh optimizer on copied weights, 3 more."""
    extra = {"sgd": dict(momentum=0.9, nesterov=True), "rmsprop": dict(momentum=0.5, centered=True)}
    kw = extra.get(name, {})
    r = np.random.default_rng(0)
    grads = [[r.standard_normal(s).astype(np.float32) for s in ((3, 2), (2,))] for _ in range(6)]
    a = [Parameter(r.standard_normal(s).astype(np.float32)) for s in ((3, 2), (2,))]
    opt = OPTIMIZERS[name]([{"params": a[:1]}, {"params": a[1:], "lr_mult": 0.5}], lr=0.01, **kw)

    def steps(opt, params, gs):
        for g in gs:
            for p, gi in zip(params, g, strict=True):
                p.grad[...] = gi
            opt.step()

    steps(opt, a, grads[:3])
    saved, weights = opt.state_dict(), [p.data.copy() for p in a]
    steps(opt, a, grads[3:])

    b = [Parameter(w) for w in weights]
    opt_b = OPTIMIZERS[name]([{"params": b[:1]}, {"params": b[1:]}], lr=0.5, **kw)  # lr comes back
    opt_b.load_state_dict(saved)
    assert opt_b.param_groups[1]["lr"] == pytest.approx(0.005)
    steps(opt_b, b, grads[3:])
    for pa, pb in zip(a, b, strict=True):
        assert np.array_equal(pa.data, pb.data)
    assert all(isinstance(v, np.ndarray) for v in saved["state"].values())


def test_state_dict_errors():
    p, q = Parameter(np.ones(2)), Parameter(np.ones(3))
    opt = SGD([p, q], momentum=0.9)
    p.grad[...] = q.grad[...] = 1.0
    opt.step()
    with pytest.raises(ValueError, match="saved by SGD; build a SGD"):
        Adam([p, q]).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match=r"hold \[2\] parameters in the state but \[1\]"):
        SGD([p], momentum=0.9).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match=r"'1.momentum_buffer' has shape \(3,\) but the parameter"):
        SGD([p, Parameter(np.ones(4))], momentum=0.9).load_state_dict(opt.state_dict())


def test_group_errors():
    p = Parameter(np.ones(1))
    with pytest.raises(ValueError, match=r"unknown keys \['momentun'\]"):
        SGD([{"params": [p], "momentun": 0.9}])
    with pytest.raises(TypeError, match="holds ndarray, expected cnnkit Parameters"):
        SGD([np.ones(1)])
    with pytest.raises(ValueError, match="more than one group"):
        SGD([{"params": [p]}, {"params": [p]}])
