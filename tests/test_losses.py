"""Losses: numeric gradients, PyTorch parity (value and dscores), the notes' worked examples, stability,
and clear errors for bad scores and targets."""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.losses import MSE, MulticlassSVM, SoftmaxCrossEntropy
from conftest import rel_err

SHAPES = [(1, 2), (4, 3), (16, 10), (7, 1000)]


def _compare(torch, loss, torch_loss, scores, targets, torch_targets):
    value = loss.forward(scores, targets)
    d = loss.backward()
    ts = torch.tensor(scores, requires_grad=True)
    tv = torch_loss(ts, torch_targets)
    tv.backward()
    assert isinstance(value, float) and d.dtype == scores.dtype and d.shape == scores.shape
    assert rel_err(value, tv.item()) <= 1e-4, (value, tv.item())
    assert rel_err(d, ts.grad.numpy()) <= 1e-4


@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_cross_entropy_parity(shape, tF, torch):
    rng = np.random.default_rng(shape[1])
    scores = (rng.standard_normal(shape) * 5).astype(np.float32)
    y = rng.integers(0, shape[1], shape[0])
    _compare(torch, SoftmaxCrossEntropy(), tF.cross_entropy, scores, y, torch.tensor(y))


@pytest.mark.parametrize("margin", [1.0, 0.5, 3.0])
@pytest.mark.parametrize("shape", SHAPES)
def test_multiclass_svm_parity(shape, margin, tF, torch):
    """cnnkit's default normalisation is torch.nn.MultiMarginLoss's: the sum over classes divided by C."""
    rng = np.random.default_rng(shape[1])
    scores = (rng.standard_normal(shape) * 2).astype(np.float32)
    y = rng.integers(0, shape[1], shape[0])
    _compare(torch, MulticlassSVM(margin), lambda s, t: tF.multi_margin_loss(s, t, margin=margin), scores,
             y, torch.tensor(y))


@pytest.mark.parametrize("shape", [(4, 3), (8, 1), (2, 3, 4, 4), (5,)])
def test_mse_parity(shape, tF, torch):
    rng = np.random.default_rng(len(shape))
    scores = rng.standard_normal(shape).astype(np.float32)
    targets = rng.standard_normal(shape).astype(np.float32)
    _compare(torch, MSE(), tF.mse_loss, scores, targets, torch.tensor(targets))


@pytest.mark.parametrize("loss, targets", [
    (SoftmaxCrossEntropy(), np.array([0, 2, 1, 2])),
    (MulticlassSVM(), np.array([0, 2, 1, 2])),
    (MulticlassSVM(0.3, divide_by_classes=False), np.array([1, 1, 0, 2])),
    (MSE(), np.random.default_rng(9).standard_normal((4, 3))),
])
def test_numeric_gradients(loss, targets):
    scores = np.random.default_rng(4).standard_normal((4, 3)) * 2
    assert ck.gradcheck(loss, scores, targets=targets)["input"] < 1e-6


def test_notes_svm_example():
    """The notes' three images (cat, car, frog): per-example hinge losses 2.9, 0 and 12.9."""
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    y = np.array([0, 1, 2])
    notes = MulticlassSVM(divide_by_classes=False)
    assert notes.forward(scores[:1], y[:1]) == pytest.approx(2.9)
    assert notes.forward(scores[1:2], y[1:2]) == pytest.approx(0.0)
    assert notes.forward(scores[2:], y[2:]) == pytest.approx(12.9)
    assert notes.forward(scores, y) == pytest.approx((2.9 + 0 + 12.9) / 3)
    assert MulticlassSVM().forward(scores, y) == pytest.approx((2.9 + 0 + 12.9) / 3 / 3)  # PyTorch's
    # the gradient of the first example: +1 for the violating class (car), -1 for the correct one (cat)
    notes.forward(scores[:1], y[:1])
    assert notes.backward().tolist() == [[-1.0, 1.0, 0.0]]


def test_notes_softmax_example():
    """Scores -2.85, 0.86, 0.28 with the third class correct: probabilities 0.016, 0.631, 0.353, loss 1.04."""
    loss = SoftmaxCrossEntropy()
    assert round(loss.forward(np.array([[-2.85, 0.86, 0.28]]), np.array([2])), 2) == 1.04
    np.testing.assert_allclose(loss.probabilities, [[0.016, 0.631, 0.353]], atol=1e-3)
    np.testing.assert_allclose(loss.backward(), loss.probabilities - [[0, 0, 1]], rtol=1e-12)
    # uniform scores give log(C): the loss of an untrained classifier, a sanity check the notes recommend
    assert loss.forward(np.zeros((5, 10)), np.arange(5)) == pytest.approx(np.log(10))


def test_mse_worked_example():
    loss = MSE()
    assert loss.forward(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1, 0], [3, 6]])) == 2.0
    assert loss.backward().tolist() == [[0.0, 1.0], [0.0, -1.0]]


def test_cross_entropy_is_stable_for_huge_scores():
    """log-sum-exp: scores of 1e4 neither overflow nor warn (pytest makes RuntimeWarning an error)."""
    loss = SoftmaxCrossEntropy()
    scores = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 0.0]], np.float32)
    value = loss.forward(scores, np.array([1, 0]))
    assert value == pytest.approx((1e4 + np.log(2)) / 2, rel=1e-6)
    d = loss.backward()
    assert np.isfinite(d).all() and d.dtype == np.float32
    np.testing.assert_allclose(d, [[0.5, -0.5, 0], [-0.25, 0.25, 0]], atol=1e-7)


def test_hinge_gradient_at_the_kink_is_zero_like_torch(tF, torch):
    """A margin of exactly 0 is not a violation: (sub)gradient 0, as torch.nn.MultiMarginLoss uses."""
    loss = MulticlassSVM()
    assert loss.forward(np.array([[2.0, 1.0]]), np.array([0])) == 0.0
    assert loss.backward().tolist() == [[0.0, 0.0]]
    ts = torch.tensor([[2.0, 1.0]], requires_grad=True)
    tF.multi_margin_loss(ts, torch.tensor([0])).backward()
    assert ts.grad.tolist() == [[0.0, 0.0]]


def test_backward_twice_and_before_forward():
    loss = SoftmaxCrossEntropy()
    with pytest.raises(RuntimeError, match=r"SoftmaxCrossEntropy\(\): backward was called before forward"):
        loss.backward()
    loss.forward(np.zeros((2, 3)), np.array([0, 1]))
    loss.backward()
    with pytest.raises(RuntimeError, match="or twice for one forward"):
        loss.backward()


@pytest.mark.parametrize("loss", [SoftmaxCrossEntropy(), MulticlassSVM()], ids=["xent", "svm"])
@pytest.mark.parametrize("scores, targets, error, pattern", [
    (np.array([[0.0, np.nan], [1.0, 2.0]]), np.array([0, 1]), ValueError,
     r"1 of 4 scores are NaN or infinite; training has probably diverged"),
    (np.array([[0.0, np.inf], [-np.inf, 2.0]]), np.array([0, 1]), ValueError, r"2 of 4 scores are NaN"),
    (np.zeros((2, 3), np.int64), np.array([0, 1]), TypeError, r"expected floating-point scores"),
    ([[0.0, 1.0]], np.array([0]), TypeError, r"expected scores as a NumPy array, received list"),
    (np.zeros((2, 3, 4)), np.array([0, 1]), ck.ShapeError,
     r"expected scores of shape \(N, C\).*received shape \(2, 3, 4\).*Flatten"),
    (np.zeros((2, 3)), np.array([0, 3]), ValueError,
     r"targets must be class indices in \[0, 2\] for 3 classes; received \[3\] at rows \[1\]"),
    (np.zeros((2, 3)), np.array([-1, 0]), ValueError, r"received \[-1\] at rows \[0\]"),
    (np.zeros((2, 3)), np.array([0, 1, 2]), ck.ShapeError,
     r"expected targets of shape \(2,\).*received shape \(3,\)"),
    (np.zeros((2, 3)), np.array([[0], [1]]), ck.ShapeError, r"received shape \(2, 1\)"),
    (np.zeros((2, 3)), np.array([0.0, 1.0]), TypeError, r"expected integer class indices.*float64"),
    (np.zeros((0, 3)), np.zeros(0, np.int64), ck.ShapeError, r"received empty scores"),
])
def test_classification_errors(loss, scores, targets, error, pattern):
    with pytest.raises(error, match=pattern):
        loss.forward(scores, targets)


@pytest.mark.parametrize("scores, targets, error, pattern", [
    (np.zeros((2, 3)), np.zeros((3, 2)), ck.ShapeError,
     r"MSE\(\): targets must have the scores' shape \(2, 3\)"),
    (np.zeros((2, 3)), np.full((2, 3), np.nan), ValueError, r"targets contain NaN or infinite"),
    (np.full((2, 3), np.inf), np.zeros((2, 3)), ValueError, r"6 of 6 scores are NaN or infinite"),
    (np.zeros((2, 3)), np.array([["a"] * 3] * 2), TypeError, r"expected numeric targets"),
])
def test_mse_errors(scores, targets, error, pattern):
    with pytest.raises(error, match=pattern):
        MSE().forward(scores, targets)


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: MulticlassSVM("1"), TypeError, r"MulticlassSVM: Received margin='1'; expected a number"),
    (lambda: MulticlassSVM(float("inf")), ValueError, r"Received margin=inf; expected a finite number"),
])
def test_bad_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_repr():
    assert repr(MulticlassSVM()) == "MulticlassSVM(margin=1.0)"
    notes = MulticlassSVM(2, divide_by_classes=False)
    assert repr(notes) == "MulticlassSVM(margin=2.0, divide_by_classes=False)"
    assert repr(SoftmaxCrossEntropy()) == "SoftmaxCrossEntropy()" and repr(MSE()) == "MSE()"
