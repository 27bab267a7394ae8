"""cnnkit.reference.elementwise_losses: PyTorch parity on its OpInfo samples (value, the input's and the
target's gradients, float64), numeric gradients of both arguments, worked values, dtypes."""

import numpy as np
import pytest
from reference_checks import assert_all_same, assert_gradients

from cnnkit.reference import elementwise_losses as R

NAMES = ("mse_loss", "l1_loss", "smooth_l1_loss", "binary_cross_entropy_with_logits")


def _opinfo_cases():
    try:
        from opinfo_samples import samples

        out = []
        for name in NAMES:
            for x, args, kwargs in samples(f"nn.functional.{name}"):
                kwargs = {k: v.detach().numpy() if hasattr(v, "detach") else v for k, v in kwargs.items()}
                out.append((name, x.detach().numpy(), args[0].detach().numpy(), kwargs))
        return out
    except pytest.skip.Exception:
        return [None]


def _ours(name, x, target, kwargs, dy):
    y, cache = getattr(R, name)(x, target, **kwargs)
    return (y, *getattr(R, f"{name}_backward")(dy, cache))


def _theirs(name, x, target, kwargs, dy):
    torch = pytest.importorskip("torch")
    tx, tt = torch.tensor(x, requires_grad=True), torch.tensor(target, requires_grad=True)
    kw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    y = getattr(torch.nn.functional, name)(tx, tt, **kw)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), tx.grad.numpy(), tt.grad.numpy()


@pytest.mark.parametrize("case", _opinfo_cases(),
                         ids=lambda c: "none" if c is None else f"{c[0]}-{c[1].shape}-{sorted(c[3].items())}")
def test_match_pytorch_on_its_opinfo_samples(case):
    if case is None:
        pytest.skip("needs torch and expecttest for PyTorch's OpInfo samples")
    name, x, target, kwargs = case
    if name == "binary_cross_entropy_with_logits":
        target = np.random.default_rng(1).uniform(0, 1, target.shape)  # torch's samples are any reals
    y, _ = getattr(R, name)(x, target, **kwargs)
    dy = np.random.default_rng(0).standard_normal(np.shape(y))
    assert_all_same(_ours(name, x, target, kwargs, dy), _theirs(name, x, target, kwargs, dy),
                    ("y", "dinput", "dtarget"), tol=1e-10)


def _sweep():
    rng = np.random.default_rng(3)
    cases = []
    for shape in [(4, 3), (2, 3, 4, 4), (7,)]:
        for reduction in ("mean", "sum", "none"):
            cases += [("mse_loss", shape, dict(reduction=reduction)),
                      ("l1_loss", shape, dict(reduction=reduction))]
            for beta in (1.0, 0.3, 0.0, 5.0):
                cases.append(("smooth_l1_loss", shape, dict(reduction=reduction, beta=beta)))
            last = shape[-1]
            for kw in (dict(), dict(weight=rng.uniform(0, 2, shape)),
                       dict(pos_weight=rng.uniform(0.5, 3, last)),
                       dict(weight=rng.uniform(0, 2, (last,)), pos_weight=rng.uniform(0.5, 3, last))):
                cases.append(("binary_cross_entropy_with_logits", shape, dict(kw, reduction=reduction)))
    return cases


@pytest.mark.parametrize("name, shape, kwargs", _sweep(), ids=lambda v: str(v) if not isinstance(v, dict)
                         else "-".join(f"{k}" for k in sorted(v)))
def test_match_pytorch_over_shapes_and_options(name, shape, kwargs):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape) * 3
    target = rng.uniform(0, 1, shape) if name.startswith("binary") else rng.standard_normal(shape) * 3
    x.flat[0] = target.flat[0]  # a zero difference: sign 0, as in torch
    y, _ = getattr(R, name)(x, target, **kwargs)
    dy = rng.standard_normal(np.shape(y))
    assert_all_same(_ours(name, x, target, kwargs, dy), _theirs(name, x, target, kwargs, dy),
                    ("y", "dinput", "dtarget"), tol=1e-10)


@pytest.mark.parametrize("name, kwargs", [
    ("mse_loss", dict()), ("mse_loss", dict(reduction="none")), ("l1_loss", dict(reduction="sum")),
    ("smooth_l1_loss", dict(beta=0.5)), ("smooth_l1_loss", dict(beta=0.0, reduction="none")),
    ("binary_cross_entropy_with_logits", dict()),
    ("binary_cross_entropy_with_logits", dict(weight=np.array([0.5, 2.0, 1.0]),
                                              pos_weight=np.array([3.0, 1.0, 0.5]), reduction="none")),
])
def test_numeric_gradients_of_both_arguments(name, kwargs):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3)) * 2
    t = rng.uniform(0, 1, (4, 3)) if name.startswith("binary") else x + rng.choice([-1, 1], x.shape) * \
        rng.uniform(0.1, 2, x.shape)  # differences away from the kinks of |d| and of smooth L1
    assert_gradients(lambda x, t: getattr(R, name)(x, t, **kwargs), getattr(R, f"{name}_backward"),
                     dict(x=x, t=t))


def test_worked_values():
    assert R.mse_loss(np.array([1.0, 3.0]), np.array([0.0, 0.0]))[0] == 5.0
    assert R.l1_loss(np.array([1.0, -3.0]), np.zeros(2), "none")[0].tolist() == [1.0, 3.0]
    assert R.smooth_l1_loss(np.array([0.5, 3.0]), np.zeros(2), "none")[0].tolist() == [0.125, 2.5]
    y, _ = R.binary_cross_entropy_with_logits(np.array([0.0, 1e4, -1e4]), np.ones(3), reduction="none")
    assert y.tolist() == [np.log(2.0), 0.0, 1e4]  # no overflow, no log(0) at extreme logits


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keep_the_dtype(dtype):
    x = np.linspace(-2, 2, 6, dtype=dtype).reshape(2, 3)
    t = np.full((2, 3), 0.5)  # float64 targets are converted to the input's dtype
    for name in NAMES:
        for reduction in ("mean", "none"):
            y, cache = getattr(R, name)(x, t, reduction=reduction)
            dx, dt = getattr(R, f"{name}_backward")(np.ones(np.shape(y), dtype), cache)
            assert y.dtype == dx.dtype == dt.dtype == dtype, name
