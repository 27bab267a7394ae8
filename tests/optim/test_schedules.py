"""StepLR, CosineAnnealing and LinearWarmup give torch.optim.lr_scheduler's learning rates step by step."""

import numpy as np
import pytest

from cnnkit.layers import Parameter
from cnnkit.optim import SGD, CosineAnnealing, LinearWarmup, StepLR


def _lrs(torch, make_ours, make_theirs, steps=25):
    """The learning rates of two groups (lr_mult 1 and 0.1) over `steps` schedule steps, ours and torch's."""
    p, q = Parameter(np.zeros(1)), Parameter(np.zeros(1))
    ours_opt = SGD([{"params": [p]}, {"params": [q], "lr_mult": 0.1}], lr=0.5)
    t = [torch.zeros(1, requires_grad=True) for _ in range(2)]
    torch_opt = torch.optim.SGD([{"params": t[:1]}, {"params": t[1:], "lr": 0.05}], lr=0.5)
    ours, theirs = make_ours(ours_opt), make_theirs(torch_opt, torch.optim.lr_scheduler)
    a, b = [], []
    for _ in range(steps):
        a.append([g["lr"] for g in ours_opt.param_groups])
        b.append([g["lr"] for g in torch_opt.param_groups])
        ours_opt.step()
        torch_opt.step()
        ours.step()
        theirs.step()
    return np.array(a), np.array(b)


CASES = {
    "step": (lambda o: StepLR(o, 3, gamma=0.5), lambda o, T: T.StepLR(o, 3, gamma=0.5)),
    "cosine": (lambda o: CosineAnnealing(o, T_max=10), lambda o, T: T.CosineAnnealingLR(o, T_max=10)),
    "cosine-eta-min": (lambda o: CosineAnnealing(o, T_max=7, eta_min=0.01),
                       lambda o, T: T.CosineAnnealingLR(o, T_max=7, eta_min=0.01)),
    "warmup": (lambda o: LinearWarmup(o, 5, start_factor=0.2),
               lambda o, T: T.LinearLR(o, start_factor=0.2, end_factor=1.0, total_iters=5)),
    "warmup-cosine": (lambda o: LinearWarmup(o, 4, start_factor=0.1, then=CosineAnnealing(o, T_max=12)),
                      lambda o, T: T.SequentialLR(o, [T.LinearLR(o, start_factor=0.1, total_iters=4),
                                                      T.CosineAnnealingLR(o, T_max=12)], milestones=[4])),
}


@pytest.mark.parametrize("name", CASES)
def test_matches_torch(name, torch):
    ours, theirs = _lrs(torch, *CASES[name], steps=25 if name != "warmup-cosine" else 16)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_state_dict_round_trip():
    opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    s = CosineAnnealing(opt, T_max=10)
    for _ in range(4):
        s.step()
    opt2 = SGD([Parameter(np.zeros(1))], lr=1.0)
    s2 = CosineAnnealing(opt2, T_max=10).load_state_dict(s.state_dict())
    assert opt2.lr == opt.lr == pytest.approx(0.5 * (1 + np.cos(np.pi * 0.4)))
    s.step()
    s2.step()
    assert opt2.lr == opt.lr


def test_errors():
    opt = SGD([Parameter(np.zeros(1))])
    with pytest.raises(ValueError, match="StepLR: Received step_size=0; expected a positive int"):
        StepLR(opt, 0)
    with pytest.raises(ValueError, match="Invalid interval 'batch', should be one of 'epoch', 'step'"):
        StepLR(opt, 1, interval="batch")
    with pytest.raises(ValueError, match=r"start_factor=0; expected a value in \(0, 1\]"):
        LinearWarmup(opt, 3, start_factor=0)
    with pytest.raises(ValueError, match="the state was saved by StepLR"):
        CosineAnnealing(opt, 3).load_state_dict(StepLR(opt, 2).state_dict())
