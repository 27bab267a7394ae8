"""CrossEntropyLoss, NLLLoss, MultiMarginLoss (and the notes' aliases): parity with the torch.nn modules
of the same names and options, the reduction contract of backward, numeric gradients, and an error per bad
argument or input."""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.losses import (
    CrossEntropyLoss,
    Loss,
    MulticlassSVM,
    MultiMarginLoss,
    NLLLoss,
    SoftmaxCrossEntropy,
)


def _torch_module(torch, loss, dtype):
    """The torch.nn loss with the same options (weights in the scores' dtype, as torch requires)."""
    kw = {k: (torch.tensor(v.astype(dtype)) if isinstance(v, np.ndarray) else v)
          for k, v in loss._options().items()}
    name = next(c.__name__ for c in type(loss).__mro__ if hasattr(torch.nn, c.__name__))
    return getattr(torch.nn, name)(**kw)


def _check(torch, loss, scores, targets, tol):
    value = loss.forward(scores, targets)
    grad = None if loss.reduction != "none" else np.random.default_rng(0).standard_normal(value.shape)
    dscores, dtargets = loss.backward(grad, with_targets=True)
    soft = np.issubdtype(targets.dtype, np.floating)
    ts, tt = torch.tensor(scores, requires_grad=True), torch.tensor(targets, requires_grad=soft)
    tv = _torch_module(torch, loss, scores.dtype)(ts, tt)
    tv.backward(None if grad is None else torch.tensor(grad, dtype=tv.dtype))
    if loss.reduction == "none":
        assert isinstance(value, np.ndarray) and value.dtype == scores.dtype
        np.testing.assert_allclose(value, tv.detach().numpy(), rtol=tol, atol=tol)
    else:
        assert isinstance(value, float) and value == pytest.approx(tv.item(), rel=tol, abs=tol)
    assert dscores.dtype == scores.dtype and dscores.shape == scores.shape
    np.testing.assert_allclose(dscores, ts.grad.numpy(), rtol=tol, atol=tol)
    if soft:
        np.testing.assert_allclose(dtargets, tt.grad.numpy(), rtol=tol, atol=tol)
    else:
        assert dtargets is None


CASES = [
    (lambda: CrossEntropyLoss(), (6, 4), "hard"),
    (lambda: CrossEntropyLoss(reduction="sum", label_smoothing=0.1), (6, 4), "hard"),
    (lambda: CrossEntropyLoss(weight=[1.0, 2.0, 0.5, 1.0], ignore_index=3, reduction="none"), (6, 4), "hard"),
    (lambda: CrossEntropyLoss(weight=np.array([1.0, 2.0, 0.5]), label_smoothing=0.3), (2, 3, 5, 4), "hard"),
    (lambda: CrossEntropyLoss(label_smoothing=0.2), (3, 4, 6), "soft"),
    (lambda: CrossEntropyLoss(reduction="none"), (2, 3, 4, 4), "soft"),
    (lambda: CrossEntropyLoss(reduction="none"), (5,), "hard"),
    (lambda: SoftmaxCrossEntropy(label_smoothing=0.1), (6, 4), "hard"),
    (lambda: NLLLoss(), (6, 4), "hard"),
    (lambda: NLLLoss(weight=[0.5, 1.0, 2.0], ignore_index=0, reduction="none"), (2, 3, 3, 2), "hard"),
    (lambda: NLLLoss(reduction="sum"), (4,), "hard"),
    (lambda: MultiMarginLoss(), (6, 4), "hard"),
    (lambda: MultiMarginLoss(p=2, margin=0.5, weight=[1.0, 3.0, 0.5, 2.0], reduction="none"), (6, 4), "hard"),
    (lambda: MultiMarginLoss(margin=2.0, reduction="sum"), (4,), "hard"),
]


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("make, shape, kind", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_parity_with_torch_nn(make, shape, kind, dtype, tol, torch):
    loss = make()
    rng = np.random.default_rng(len(shape))
    scores = (rng.standard_normal(shape) * 3).astype(dtype)
    C = shape[0] if len(shape) == 1 else shape[1]
    positions = () if len(shape) == 1 else shape[:1] + shape[2:]
    if kind == "hard":
        targets = rng.integers(0, C, positions)
        if getattr(loss, "ignore_index", -100) >= 0 and targets.ndim:
            targets.flat[0] = loss.ignore_index
    else:
        targets = np.moveaxis(rng.dirichlet(np.ones(C), positions), -1, 1).astype(dtype)
    if isinstance(loss, NLLLoss):
        scores = scores - np.log(np.exp(scores).sum(axis=0 if len(shape) == 1 else 1, keepdims=True))
    _check(torch, loss, scores, targets, tol)


@pytest.mark.parametrize("loss, targets", [
    (CrossEntropyLoss(label_smoothing=0.2, weight=[1.0, 2.0, 0.5]), np.array([0, 2, 1, 2])),
    (CrossEntropyLoss(), np.random.default_rng(1).dirichlet(np.ones(3), 4)),
    (NLLLoss(weight=[1.0, 2.0, 0.5]), np.array([0, 2, 1, 2])),
    (MultiMarginLoss(p=2, margin=2.0), np.array([0, 2, 1, 2])),
])
def test_numeric_gradients(loss, targets):
    scores = np.random.default_rng(4).standard_normal((4, 3)) * 2
    assert ck.gradcheck(loss, scores, targets=targets)["input"] < 1e-7


def test_segmentation_scores_per_pixel():
    """(N, C, H, W) scores and (N, H, W) classes: the mean over all pixels, the notes' loss per pixel."""
    rng = np.random.default_rng(0)
    scores, targets = rng.standard_normal((2, 3, 4, 5)), rng.integers(0, 3, (2, 4, 5))
    per_pixel = CrossEntropyLoss(reduction="none")(scores, targets)
    assert per_pixel.shape == (2, 4, 5)
    flat = scores.transpose(0, 2, 3, 1).reshape(-1, 3)
    assert CrossEntropyLoss()(scores, targets) == pytest.approx(SoftmaxCrossEntropy()(flat, targets.ravel()))


def test_reduction_none_backward_needs_the_upstream_gradient():
    loss = CrossEntropyLoss(reduction="none")
    losses = loss(np.zeros((3, 4)), np.array([0, 1, 2]))
    np.testing.assert_allclose(losses, np.log(4))
    with pytest.raises(ValueError, match=r"backward needs grad.*shape \(3,\).*reduction='none'"):
        loss.backward()
    loss(np.zeros((3, 4)), np.array([0, 1, 2]))
    with pytest.raises(ck.ShapeError, match=r"expected grad of the per-example losses' shape \(3,\)"):
        loss.backward(np.ones(4))
    loss(np.zeros((3, 4)), np.array([0, 1, 2]))
    d_sum = loss.backward(np.ones(3))
    total = CrossEntropyLoss(reduction="sum")
    total(np.zeros((3, 4)), np.array([0, 1, 2]))
    np.testing.assert_array_equal(d_sum, total.backward())


def test_backward_scales_by_the_upstream_gradient():
    loss = CrossEntropyLoss()
    scores, targets = np.random.default_rng(2).standard_normal((3, 4)), np.array([0, 1, 3])
    loss(scores, targets)
    d1 = loss.backward()
    loss(scores, targets)
    np.testing.assert_allclose(loss.backward(2.5), 2.5 * d1, rtol=1e-15)
    loss(scores, targets)
    with pytest.raises(ck.ShapeError, match="expected a number as grad of the mean"):
        loss.backward(np.ones(3))
    loss(scores, targets)
    with pytest.raises(TypeError, match="Received grad of dtype <U1"):
        loss.backward("a")


def test_the_notes_names_are_the_pytorch_losses():
    assert isinstance(SoftmaxCrossEntropy(), CrossEntropyLoss)
    assert isinstance(MulticlassSVM(), MultiMarginLoss)
    scores, targets = np.random.default_rng(3).standard_normal((5, 4)), np.array([0, 1, 2, 3, 0])
    assert SoftmaxCrossEntropy()(scores, targets) == CrossEntropyLoss()(scores, targets)
    assert MulticlassSVM(0.5)(scores, targets) == pytest.approx(MultiMarginLoss(margin=0.5)(scores, targets),
                                                                rel=1e-15)
    assert isinstance(CrossEntropyLoss(), Loss)


def test_probabilities_and_ignored_targets():
    loss = CrossEntropyLoss()
    value = loss(np.array([[0.0, 0.0], [5.0, 0.0]]), np.array([-100, 1]))  # the first example is skipped
    assert value == pytest.approx(5 + np.log1p(np.exp(-5)))
    np.testing.assert_allclose(loss.probabilities.sum(axis=1), 1)
    assert loss.backward()[0].tolist() == [0.0, 0.0]


def test_mixes_examples_when_the_mean_is_weighted():
    """Batch slices, each weighted by its share of examples, give the batch's gradient for a plain mean."""
    assert not CrossEntropyLoss().mixes_examples and not MultiMarginLoss(p=2).mixes_examples
    assert CrossEntropyLoss(weight=[1.0, 2.0]).mixes_examples and NLLLoss(reduction="sum").mixes_examples


def test_repr_shows_the_options_that_differ():
    assert repr(CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(CrossEntropyLoss(reduction="sum", label_smoothing=0.1)) == \
        "CrossEntropyLoss(reduction='sum', label_smoothing=0.1)"
    assert repr(MultiMarginLoss(p=2)) == "MultiMarginLoss(p=2)"
    assert repr(NLLLoss(weight=[1, 2])) == "NLLLoss(weight=array([1, 2]))"
    assert repr(SoftmaxCrossEntropy()) == "SoftmaxCrossEntropy()"


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: CrossEntropyLoss(reduction="avg"), ValueError,
     r"CrossEntropyLoss: Received reduction='avg'; expected one of 'mean', 'sum', 'none'"),
    (lambda: CrossEntropyLoss(label_smoothing=1.5), ValueError,
     r"CrossEntropyLoss: Received label_smoothing=1.5; expected a finite number in \[0, 1\]"),
    (lambda: CrossEntropyLoss(label_smoothing="0.1"), TypeError,
     r"Received label_smoothing='0.1'; expected a number"),
    (lambda: CrossEntropyLoss(ignore_index=1.0), TypeError, r"Received ignore_index=1.0; expected an int"),
    (lambda: CrossEntropyLoss(weight=[[1.0, 2.0]]), ck.ShapeError,
     r"Received weight of shape \(1, 2\); expected a 1-D array \(one value per class\)"),
    (lambda: CrossEntropyLoss(weight=["a"]), TypeError,
     r"Received weight of dtype <U1; expected real numbers"),
    (lambda: NLLLoss(weight=[1.0, np.nan]), ValueError,
     r"NLLLoss: Received weight with NaN or infinite values"),
    (lambda: NLLLoss(reduction=None), ValueError, r"NLLLoss: Received reduction=None"),
    (lambda: MultiMarginLoss(p=3), ValueError,
     r"MultiMarginLoss: Received p=3; expected 1 \(the hinge\) or 2"),
    (lambda: MultiMarginLoss(p=True), ValueError, r"Received p=True"),
    (lambda: MultiMarginLoss(margin=np.inf), ValueError, r"Received margin=inf; expected a finite number"),
    (lambda: MultiMarginLoss(reduction="max"), ValueError, r"Received reduction='max'"),
])
def test_bad_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


@pytest.mark.parametrize("loss, scores, targets, error, pattern", [
    (CrossEntropyLoss(weight=[1.0, 2.0]), np.zeros((2, 3)), np.array([0, 1]), ck.ShapeError,
     r"weight has 2 entries, one per class; the scores \(2, 3\) have C = 3 classes"),
    (CrossEntropyLoss(), np.zeros((2, 3, 4)), np.array([0, 1]), ck.ShapeError,
     r"expected scores of shape \(N, C\) for targets of shape \(N,\); received shape \(2, 3, 4\).*give "
     r"targets \(2, 4\)"),
    (CrossEntropyLoss(), np.zeros((2, 3, 4)), np.zeros((2, 5), int), ck.ShapeError,
     r"expected targets of shape \(2, 4\)"),
    (CrossEntropyLoss(), np.zeros((2, 3)), np.array([0.5, 0.5]), TypeError,
     r"expected integer class indices as targets \(int64, shape \(2,\)\) or probabilities of the scores' "
     r"shape \(2, 3\); received dtype float64 and shape \(2,\)"),
    (CrossEntropyLoss(), np.zeros((2, 3)), np.full((2, 3), np.nan), ValueError,
     r"probability targets contain NaN or infinite values"),
    (CrossEntropyLoss(ignore_index=0), np.zeros((2, 3)), np.full((2, 3), 1 / 3), ValueError,
     r"ignore_index=0 applies to class indices; probability targets have no class to skip"),
    (CrossEntropyLoss(), np.zeros((2, 3, 2)), np.array([[0, 3], [1, 1]]), ValueError,
     r"targets must be class indices in \[0, 2\] for 3 classes; received \[3\] at positions \[\(0, 1\)\] "
     r"\(or ignore_index=-100 to skip one\)"),
    (CrossEntropyLoss(), np.zeros(3), np.array([3]), ck.ShapeError, r"expected targets of shape \(\)"),
    (NLLLoss(), np.array([[0.0, np.nan]]), np.array([0]), ValueError, r"1 of 2 scores are NaN or infinite"),
    (NLLLoss(), np.array([[0.0, 1.0]]), np.array([0.0]), TypeError, r"expected integer class indices"),
    (MultiMarginLoss(), np.zeros((2, 3, 4)), np.array([0, 1]), ck.ShapeError,
     r"expected scores of shape \(N, C\).*received shape \(2, 3, 4\)"),
    (MultiMarginLoss(weight=[1.0]), np.zeros((2, 3)), np.array([0, 1]), ck.ShapeError,
     r"weight has 1 entries"),
])
def test_bad_input(loss, scores, targets, error, pattern):
    with pytest.raises(error, match=pattern):
        loss.forward(scores, targets)


def test_nll_accepts_log_of_zero():
    """-inf is a valid log-probability (log 0) unless it is the target's."""
    assert NLLLoss()(np.array([[0.0, -np.inf]]), np.array([0])) == 0.0
