"""MSELoss, L1Loss, SmoothL1Loss, BCEWithLogitsLoss (and the notes' MSE): parity with the torch.nn modules
for both arguments' gradients, reductions, numeric gradients, and an error per bad argument or input."""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.losses import MSE, BCEWithLogitsLoss, L1Loss, MSELoss, SmoothL1Loss

CASES = [
    (lambda: MSELoss(), None), (lambda: MSELoss(reduction="sum"), None),
    (lambda: MSELoss(reduction="none"), None),
    (lambda: MSE(), None), (lambda: L1Loss(), None), (lambda: L1Loss(reduction="none"), None),
    (lambda: SmoothL1Loss(), None), (lambda: SmoothL1Loss(reduction="sum", beta=0.5), None),
    (lambda: SmoothL1Loss(beta=0.0), None),
    (lambda: BCEWithLogitsLoss(), "probabilities"),
    (lambda: BCEWithLogitsLoss(reduction="none"), "probabilities"),
    (lambda: BCEWithLogitsLoss(weight=np.array([0.5, 1.0, 2.0]), pos_weight=[2.0, 1.0, 0.5], reduction="sum"),
     "probabilities"),
]


def _torch_module(torch, loss, dtype):
    kw = {k: (torch.tensor(np.asarray(v, dtype)) if isinstance(v, np.ndarray) else v)
          for k, v in loss._options().items()}
    name = next(c.__name__ for c in type(loss).__mro__ if hasattr(torch.nn, c.__name__))
    return getattr(torch.nn, name)(**kw)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5, 3)])
@pytest.mark.parametrize("make, kind", CASES)
def test_parity_with_torch_nn_for_both_arguments(make, kind, shape, dtype, tol, torch):
    loss = make()
    rng = np.random.default_rng(len(shape))
    scores = (rng.standard_normal(shape) * 3).astype(dtype)
    targets = rng.uniform(0, 1, shape) if kind else rng.standard_normal(shape) * 3
    targets = targets.astype(dtype)
    value = loss.forward(scores, targets)
    grad = None if loss.reduction != "none" else rng.standard_normal(shape).astype(dtype)
    dscores, dtargets = loss.backward(grad, with_targets=True)
    ts, tt = torch.tensor(scores, requires_grad=True), torch.tensor(targets, requires_grad=True)
    tv = _torch_module(torch, loss, dtype)(ts, tt)
    tv.backward(None if grad is None else torch.tensor(grad))
    np.testing.assert_allclose(value, tv.detach().numpy(), rtol=tol, atol=tol)
    assert isinstance(value, float) or value.dtype == dtype
    for ours, theirs in ((dscores, ts.grad), (dtargets, tt.grad)):
        assert ours.dtype == dtype and ours.shape == shape
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("loss", [MSELoss(), L1Loss(reduction="sum"), SmoothL1Loss(beta=0.7),
                                  BCEWithLogitsLoss(pos_weight=[2.0, 0.5, 1.0])], ids=repr)
def test_numeric_gradients(loss):
    rng = np.random.default_rng(5)
    targets = rng.uniform(0, 1, (4, 3))
    scores = targets + rng.choice([-1, 1], (4, 3)) * rng.uniform(0.2, 2, (4, 3))  # away from |d|'s kink
    assert ck.gradcheck(loss, scores, targets=targets)["input"] < 1e-7


def test_targets_of_integers_and_worked_values():
    loss = MSELoss(reduction="none")
    assert loss(np.array([1.0, 2.0]), np.array([0, 0])).tolist() == [1.0, 4.0]
    assert loss.backward(np.ones(2)).tolist() == [2.0, 4.0]
    assert SmoothL1Loss()(np.array([0.5, 3.0]), np.zeros(2)) == pytest.approx((0.125 + 2.5) / 2)
    bce = BCEWithLogitsLoss(reduction="none")
    assert bce(np.array([1e4, -1e4], np.float32), np.array([1.0, 0.0])).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: MSELoss(reduction="avg"), ValueError, r"MSELoss: Received reduction='avg'; expected one of"),
    (lambda: L1Loss(reduction=1), ValueError, r"L1Loss: Received reduction=1"),
    (lambda: SmoothL1Loss(beta=-1.0), ValueError,
     r"SmoothL1Loss: Received beta=-1.0; expected a finite number >= 0"),
    (lambda: SmoothL1Loss(beta="1"), TypeError, r"SmoothL1Loss: Received beta='1'; expected a number"),
    (lambda: BCEWithLogitsLoss(pos_weight=["x"]), TypeError, r"Received pos_weight of dtype <U1"),
    (lambda: BCEWithLogitsLoss(weight=[np.inf]), ValueError, r"Received weight with NaN or infinite values"),
    (lambda: BCEWithLogitsLoss(reduction="mean_per_class"), ValueError,
     r"Received reduction='mean_per_class'"),
])
def test_bad_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


@pytest.mark.parametrize("loss, scores, targets, error, pattern", [
    (L1Loss(), np.zeros((2, 3)), np.zeros((3, 2)), ck.ShapeError,
     r"L1Loss\(\): targets must have the scores' shape"),
    (SmoothL1Loss(), np.zeros((2, 3)), np.full((2, 3), np.inf), ValueError,
     r"targets contain NaN or infinite"),
    (MSELoss(), np.zeros((2, 3), np.int32), np.zeros((2, 3)), TypeError, r"expected floating-point scores"),
    (BCEWithLogitsLoss(pos_weight=[1.0, 2.0]), np.zeros((2, 3)), np.zeros((2, 3)), ck.ShapeError,
     r"pos_weight of shape \(2,\) does not broadcast against the scores \(2, 3\) "
     r"\(one per class: the last axis\)"),
    (BCEWithLogitsLoss(weight=np.ones((4, 3))), np.zeros((2, 3)), np.zeros((2, 3)), ck.ShapeError,
     r"weight of shape \(4, 3\) does not broadcast against the scores \(2, 3\)\."),
    (BCEWithLogitsLoss(), np.zeros((2, 3)), np.array([["a"] * 3] * 2), TypeError,
     r"expected numeric targets"),
])
def test_bad_input(loss, scores, targets, error, pattern):
    with pytest.raises(error, match=pattern):
        loss.forward(scores, targets)


def test_repr():
    assert repr(MSELoss()) == "MSELoss()" and repr(MSE()) == "MSE()"
    assert repr(SmoothL1Loss(beta=0.5)) == "SmoothL1Loss(beta=0.5)"
    assert repr(BCEWithLogitsLoss(reduction="sum")) == "BCEWithLogitsLoss(reduction='sum')"
