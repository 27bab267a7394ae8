"""cnnkit.reference.losses: numeric gradients, equality with the loss classes of cnnkit.losses, PyTorch
parity."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_checks import assert_gradients, assert_same

from cnnkit import losses
from cnnkit.reference import losses as R

DTYPES = st.sampled_from([np.float32, np.float64])
CASES = st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(0, 99), DTYPES)  # N, C, seed, dtype


def _scores(N, C, seed, dtype=np.float64):
    r = np.random.default_rng(seed)
    return (3 * r.standard_normal((N, C))).astype(dtype), r.integers(0, C, N)


def _as_pair(loss, backward):
    """A loss as a (forward, backward) pair for the gradient check: y is the scalar loss, and backward
    scales the loss's gradient by dy (the chain rule's upstream factor)."""
    def forward(scores):
        value, cache = loss(scores)
        return np.array(value), cache

    return forward, lambda dy, cache: dy * backward(cache)


@settings(max_examples=40, deadline=None)
@given(CASES)
def test_softmax_cross_entropy_matches_the_loss_class(case):
    N, C, seed, dtype = case
    scores, targets = _scores(N, C, seed, dtype)
    value, cache = R.softmax_cross_entropy(scores, targets)
    loss = losses.SoftmaxCrossEntropy()
    assert value == loss.forward(scores, targets)
    assert_same(cache["probabilities"], loss.probabilities, "probabilities", tol=0)
    assert_same(R.softmax_cross_entropy_backward(cache), loss.backward(), "dscores", tol=0)


@settings(max_examples=40, deadline=None)
@given(CASES, st.sampled_from([1.0, 0.5, 2.0, 0.0]), st.booleans())
def test_multiclass_svm_matches_the_loss_class(case, margin, divide_by_classes):
    N, C, seed, dtype = case
    scores, targets = _scores(N, C, seed, dtype)
    value, cache = R.multiclass_svm(scores, targets, margin, divide_by_classes=divide_by_classes)
    loss = losses.MulticlassSVM(margin, divide_by_classes=divide_by_classes)
    assert value == loss.forward(scores, targets)
    assert_same(R.multiclass_svm_backward(cache), loss.backward(), "dscores", tol=0)


@settings(max_examples=40, deadline=None)
@given(CASES)
def test_mse_matches_the_loss_class(case):
    N, C, seed, dtype = case
    scores, _ = _scores(N, C, seed, dtype)
    targets = np.random.default_rng(seed + 1).standard_normal((N, C))
    value, cache = R.mse(scores, targets)
    loss = losses.MSE()
    assert value == loss.forward(scores, targets)
    assert_same(R.mse_backward(cache), loss.backward(), "dscores", tol=0)


@pytest.mark.parametrize("N, C", [(1, 3), (4, 5), (3, 1)])
def test_numeric_gradients(N, C):
    scores, targets = _scores(N, C, seed=3)
    t = np.random.default_rng(4).standard_normal((N, C))
    pairs = [_as_pair(lambda s: R.softmax_cross_entropy(s, targets), R.softmax_cross_entropy_backward),
             _as_pair(lambda s: R.multiclass_svm(s, targets), R.multiclass_svm_backward),
             _as_pair(lambda s: R.multiclass_svm(s, targets, 2.0, divide_by_classes=False),
                      R.multiclass_svm_backward),
             _as_pair(lambda s: R.mse(s, t), R.mse_backward)]
    for forward, backward in pairs:
        assert_gradients(forward, backward, dict(scores=scores))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_keep_the_dtype(dtype):
    scores, targets = _scores(3, 4, 0, dtype)
    assert R.softmax_cross_entropy_backward(R.softmax_cross_entropy(scores, targets)[1]).dtype == dtype
    assert R.multiclass_svm_backward(R.multiclass_svm(scores, targets)[1]).dtype == dtype
    assert R.mse_backward(R.mse(scores, np.zeros((3, 4), int))[1]).dtype == dtype


def test_the_notes_examples():
    assert round(R.softmax_cross_entropy(np.array([[-2.85, 0.86, 0.28]]), np.array([2]))[0], 2) == 1.04
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    assert round(R.multiclass_svm(scores, np.array([0, 1, 2]), divide_by_classes=False)[0], 2) == 5.27


@pytest.mark.parametrize("N, C", [(1, 3), (5, 4), (2, 1)])
def test_parity_with_pytorch(N, C):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as tF

    scores, targets = _scores(N, C, seed=5)
    t = np.random.default_rng(6).standard_normal((N, C))
    runs = [(R.softmax_cross_entropy(scores, targets), R.softmax_cross_entropy_backward,
             lambda s: tF.cross_entropy(s, torch.tensor(targets))),
            (R.multiclass_svm(scores, targets, 0.7), R.multiclass_svm_backward,
             lambda s: tF.multi_margin_loss(s, torch.tensor(targets), margin=0.7)),
            (R.mse(scores, t), R.mse_backward, lambda s: tF.mse_loss(s, torch.tensor(t)))]
    for (value, cache), backward, theirs in runs:
        ts = torch.tensor(scores, requires_grad=True)
        tloss = theirs(ts)
        tloss.backward()
        assert value == pytest.approx(tloss.item(), rel=1e-12)
        assert_same(backward(cache), ts.grad.numpy(), "dscores", tol=1e-12)
