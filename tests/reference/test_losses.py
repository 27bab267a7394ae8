"""cnnkit.reference.losses: numeric gradients, equality with the loss classes of cnnkit.losses, PyTorch
parity."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_checks import assert_all_same, assert_gradients, assert_same

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


# -- PyTorch's classification losses: cross_entropy, nll_loss, multi_margin_loss --------------------------

def _torch_loss(name, x, target, kwargs, dy):
    """torch.nn.functional.<name> in float64: (y, dinput, dtarget or None) for upstream dy."""
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    soft = np.issubdtype(np.asarray(target).dtype, np.floating)
    tt = torch.tensor(target, requires_grad=soft)
    kw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    y = getattr(torch.nn.functional, name)(tx, tt, **kw)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), tx.grad.numpy(), tt.grad.numpy() if soft else None


def _ours(name, x, target, kwargs, dy):
    forward, backward = getattr(R, name), getattr(R, f"{name}_backward")
    y, cache = forward(x, target, **kwargs)
    grads = backward(dy, cache)
    grads = grads if isinstance(grads, tuple) else (grads, None)
    return (y, *grads)


def _numpy_case(x, args, kwargs):
    target = args[0].detach().numpy()
    kwargs = {k: v.detach().numpy() if hasattr(v, "detach") else v for k, v in kwargs.items()}
    return x.detach().numpy(), target, kwargs


def _opinfo(name):
    from opinfo_samples import samples

    return [(name, *_numpy_case(*case)) for case in samples(f"nn.functional.{name}")]


def _opinfo_cases():
    try:
        return [c for name in ("cross_entropy", "nll_loss", "multi_margin_loss") for c in _opinfo(name)]
    except pytest.skip.Exception:  # no torch or expecttest: the parity test below skips on its own
        return []


@pytest.mark.parametrize("case", _opinfo_cases() or [None],
                         ids=lambda c: "none" if c is None else
                         f"{c[0]}-{c[1].shape}-{c[2].shape}-{sorted(c[3])}")
def test_classification_losses_match_pytorch_on_its_opinfo_samples(case):
    """Forward and the input's (and soft targets') gradients for each OpInfo sample of PyTorch, float64."""
    if case is None:
        pytest.skip("needs torch and expecttest for PyTorch's OpInfo samples")
    name, x, target, kwargs = case
    y, _ = getattr(R, name)(x, target, **kwargs)
    dy = np.random.default_rng(0).standard_normal(np.shape(y))
    assert_all_same(_ours(name, x, target, kwargs, dy), _torch_loss(name, x, target, kwargs, dy),
                    ("y", "dinput", "dtarget"), tol=1e-10)


def _cross_entropy_cases():
    """Beyond the OpInfo samples: label smoothing with weights, ignored targets, soft targets and
    positions; each reduction."""
    rng = np.random.default_rng(7)
    out = []
    for shape in [(4, 5), (2, 3, 4), (2, 4, 3, 2), (5,)]:
        C = shape[0] if len(shape) == 1 else shape[1]
        positions = () if len(shape) == 1 else shape[:1] + shape[2:]
        for smoothing in (0.0, 0.2, 1.0):
            for reduction in ("mean", "sum", "none"):
                for weighted in (False, True):
                    kw = dict(reduction=reduction, label_smoothing=smoothing)
                    if weighted:
                        kw["weight"] = rng.uniform(0.2, 2.0, C)
                    hard = rng.integers(0, C, positions)
                    out.append((shape, hard, dict(kw)))
                    if len(shape) > 1 and np.size(hard) > 1:
                        ignored = hard.copy()
                        ignored.flat[0] = -100
                        out.append((shape, ignored, dict(kw)))
                        out.append((shape, hard, dict(kw, ignore_index=int(hard.flat[1]))))
                    soft = rng.dirichlet(np.ones(C), positions)
                    out.append((shape, np.moveaxis(soft, -1, 1) if len(shape) > 1 else soft, dict(kw)))
    return out


@pytest.mark.parametrize("shape, target, kwargs", _cross_entropy_cases())
def test_cross_entropy_options_match_pytorch(shape, target, kwargs):
    x = np.random.default_rng(sum(shape)).standard_normal(shape) * 3
    y, _ = R.cross_entropy(x, target, **kwargs)
    dy = np.random.default_rng(1).standard_normal(np.shape(y))
    assert_all_same(_ours("cross_entropy", x, target, kwargs, dy),
                    _torch_loss("cross_entropy", x, target, kwargs, dy), ("y", "dinput", "dtarget"),
                    tol=1e-10)


def _loss_pair(name, target, kwargs, *, soft):
    """(forward, backward) over the input (and a float target) for the numeric gradient check."""
    forward, backward = getattr(R, name), getattr(R, f"{name}_backward")
    if soft:
        return (lambda x, t: forward(x, t, **kwargs)), backward
    return (lambda x: forward(x, target, **kwargs)), (lambda dy, cache: backward(dy, cache))


@pytest.mark.parametrize("kwargs", [
    dict(), dict(reduction="sum"), dict(reduction="none"), dict(label_smoothing=0.3),
    dict(weight=np.array([0.5, 2.0, 1.0, 3.0]), ignore_index=2, label_smoothing=0.1),
])
def test_cross_entropy_numeric_gradients(kwargs):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 2)) * 2
    hard = rng.integers(0, 4, (3, 2))
    forward, backward = _loss_pair("cross_entropy", hard, kwargs, soft=False)
    assert_gradients(forward, lambda dy, cache: backward(dy, cache)[0], dict(x=x))
    soft = np.moveaxis(rng.dirichlet(np.ones(4), (3, 2)), -1, 1)
    kwargs = {k: v for k, v in kwargs.items() if k != "ignore_index"}
    forward, backward = _loss_pair("cross_entropy", None, kwargs, soft=True)
    assert_gradients(forward, backward, dict(x=x, t=soft))


@pytest.mark.parametrize("kwargs", [dict(), dict(reduction="none", weight=np.array([1.0, 0.5, 2.0])),
                                    dict(ignore_index=0, reduction="sum")])
def test_nll_loss_numeric_gradients(kwargs):
    x = np.random.default_rng(3).standard_normal((4, 3, 2))
    target = np.array([[0, 1], [2, 2], [1, 0], [0, 2]])
    forward, backward = _loss_pair("nll_loss", target, kwargs, soft=False)
    assert_gradients(forward, backward, dict(x=x))


@pytest.mark.parametrize("kwargs", [dict(), dict(p=2, margin=0.5),
                                    dict(weight=np.array([1.0, 0.5, 2.0, 1.5])), dict(reduction="none", p=2),
                                    dict(reduction="sum", margin=2.0)])
def test_multi_margin_loss_numeric_gradients(kwargs):
    x = np.random.default_rng(4).standard_normal((5, 4))
    target = np.array([0, 3, 1, 1, 2])
    forward, backward = _loss_pair("multi_margin_loss", target, kwargs, soft=False)
    assert_gradients(forward, backward, dict(x=x))


def test_cross_entropy_default_is_the_notes_softmax_cross_entropy_bit_for_bit():
    """The loss classes moved from softmax_cross_entropy to cross_entropy: not one bit changed."""
    for seed in range(20):
        scores, targets = _scores(1 + seed % 7, 1 + seed % 5, seed, (np.float32, np.float64)[seed % 2])
        old, old_cache = R.softmax_cross_entropy(scores, targets)
        new, new_cache = R.cross_entropy(scores, targets)
        assert old == float(new) and new.dtype == scores.dtype
        dscores, dtarget = R.cross_entropy_backward(scores.dtype.type(1), new_cache)
        assert_same(dscores, R.softmax_cross_entropy_backward(old_cache), "dscores", tol=0)
        assert dtarget is None


def test_every_target_ignored_gives_nan_like_pytorch():
    y, cache = R.cross_entropy(np.zeros((2, 3)), np.array([-100, -100]))
    assert np.isnan(y)
    assert np.isnan(R.cross_entropy_backward(1.0, cache)[0]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_style_losses_keep_the_dtype(dtype):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    t = np.array([0, 3, 1])
    soft = np.full((3, 4), 0.25)
    for name, target, kw in [("cross_entropy", t, dict(label_smoothing=0.1, weight=np.ones(4))),
                             ("cross_entropy", soft, {}), ("nll_loss", t, dict(weight=np.ones(4))),
                             ("multi_margin_loss", t, dict(p=2, weight=np.ones(4)))]:
        y, dx, dt = _ours(name, x, target, kw, dtype(1))
        assert y.dtype == dx.dtype == dtype and (dt is None or dt.dtype == dtype), name
