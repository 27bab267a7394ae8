"""cnnkit.reference.activation_more: PyTorch parity (forward, dx, and PReLU's dweight; float64) on its OpInfo
samples and a sweep of arguments and kink values, numeric gradients, worked values, dtypes."""

import numpy as np
import pytest
from reference_checks import assert_all_same, assert_gradients

from cnnkit.reference import activation_more as R

# name -> (torch.nn.functional's name, argument sets beyond the defaults)
OPS = {
    "selu": ("selu", [{}]), "celu": ("celu", [{}, dict(alpha=0.5), dict(alpha=2.5)]),
    "gelu": ("gelu", [{}, dict(approximate="tanh")]), "silu": ("silu", [{}]), "mish": ("mish", [{}]),
    "softplus": ("softplus", [{}, dict(beta=2.0), dict(beta=0.5, threshold=3.0),
                              dict(beta=3.0, threshold=0.2)]),
    "softsign": ("softsign", [{}]),
    "hardtanh": ("hardtanh", [{}, dict(min_val=-0.5, max_val=2.0), dict(min_val=0.0, max_val=0.0)]),
    "hardsigmoid": ("hardsigmoid", [{}]), "hardswish": ("hardswish", [{}]),
}
# PyTorch's float64 hardsigmoid backward multiplies by 1/6 rounded to float32 (0.1666666716...): its
# gradient is 3e-8 off the true slope, which ours has; every other op agrees to rounding.
TOLERANCE = {"hardsigmoid": 1e-7}
KINKS = np.array([0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 6.0, 2.0, -0.5, 0.5, 20.0, 25.0, -40.0, 40.0])


def _ours(name, x, kwargs, dy):
    y, cache = getattr(R, name)(x, **kwargs)
    return y, getattr(R, f"{name}_backward")(dy, cache)


def _theirs(name, x, kwargs, dy, weight=None):
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    if weight is None:
        y = getattr(torch.nn.functional, name)(tx, **kwargs)
        y.backward(torch.tensor(dy))
        return y.detach().numpy(), tx.grad.numpy()
    tw = torch.tensor(weight, requires_grad=True)
    y = torch.nn.functional.prelu(tx, tw)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), (tx.grad.numpy(), tw.grad.numpy())


def _opinfo_cases():
    try:
        from opinfo_samples import samples

        cases = []
        for name, (torch_name, _) in [*OPS.items(), ("prelu", ("prelu", None))]:
            for x, args, kwargs in samples(f"nn.functional.{torch_name}"):
                kwargs = {k: v.detach().numpy() if hasattr(v, "detach") else v for k, v in kwargs.items()}
                if args:
                    kwargs["weight"] = args[0].detach().numpy()
                cases.append((name, x.detach().numpy(), kwargs))
        return cases
    except pytest.skip.Exception:
        return [None]


@pytest.mark.parametrize("case", _opinfo_cases(),
                         ids=lambda c: "none" if c is None else f"{c[0]}-{c[1].shape}-{sorted(c[2])}")
def test_match_pytorch_on_its_opinfo_samples(case):
    if case is None:
        pytest.skip("needs torch and expecttest for PyTorch's OpInfo samples")
    name, x, kwargs = case
    dy = np.random.default_rng(0).standard_normal(x.shape)
    if name == "prelu":
        weight = np.asarray(kwargs["weight"])
        y, cache = R.prelu(x, weight)
        ours = (y, R.prelu_backward(dy, cache))
        theirs = _theirs(name, x, {}, dy, weight)
        assert_all_same((ours[0], *ours[1]), (theirs[0], *theirs[1]), ("y", "dx", "dweight"))
        return
    assert_all_same(_ours(name, x, kwargs, dy), _theirs(OPS[name][0], x, kwargs, dy), ("y", "dx"),
                    tol=TOLERANCE.get(name, 1e-13))


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 5, 5), (7,)])
@pytest.mark.parametrize("name, kwargs", [(n, kw) for n, (_, sets) in OPS.items() for kw in sets],
                         ids=lambda v: str(v))
def test_match_pytorch_over_shapes_arguments_and_kinks(name, kwargs, shape):
    """Random values spanning (-12, 12) plus every kink and switch point (0, +-3, 6, the softplus
    threshold, the hardtanh bounds), where the gradient is a convention."""
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape) * 4
    kinks = np.concatenate([KINKS, [kwargs.get("min_val", -1.0), kwargs.get("max_val", 1.0),
                                    kwargs.get("threshold", 20.0) / kwargs.get("beta", 1.0)]])
    x.flat[:kinks.size] = kinks[:x.size]
    dy = rng.standard_normal(shape)
    assert_all_same(_ours(name, x, kwargs, dy), _theirs(OPS[name][0], x, kwargs, dy), ("y", "dx"),
                    tol=TOLERANCE.get(name, 1e-13))


@pytest.mark.parametrize("shape, weight_shape", [((4, 3), (1,)), ((2, 3, 4, 4), (3,)), ((2, 3, 4, 4), (1,)),
                                                 ((6,), (1,)), ((2, 5, 7), (5,)), ((2, 2, 2, 3, 3), (2,))])
def test_prelu_matches_pytorch(shape, weight_shape):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape)
    x.flat[0] = 0.0
    weight = rng.uniform(-0.5, 0.5, weight_shape)
    dy = rng.standard_normal(shape)
    y, cache = R.prelu(x, weight)
    ty, (tdx, tdw) = _theirs("prelu", x, {}, dy, weight)
    assert_all_same((y, *R.prelu_backward(dy, cache)), (ty, tdx, tdw), ("y", "dx", "dweight"))


@pytest.mark.parametrize("name, kwargs", [(n, kw) for n, (_, sets) in OPS.items() for kw in sets],
                         ids=lambda v: str(v))
def test_numeric_gradients(name, kwargs):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 2)) * 3
    x = np.where(np.abs(np.abs(x) - 3) < 0.05, x + 0.1, x)  # away from the kinks, where no derivative exists
    x = np.where(np.abs(x) < 0.05, x + 0.1, x)
    assert_gradients(lambda x: getattr(R, name)(x, **kwargs), getattr(R, f"{name}_backward"), dict(x=x))


def test_prelu_numeric_gradients():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 4))
    assert_gradients(R.prelu, R.prelu_backward, dict(x=x, weight=rng.uniform(0, 0.5, 3)))
    assert_gradients(R.prelu, R.prelu_backward, dict(x=x, weight=np.array([0.25])))


def test_worked_values():
    x = np.array([-4.0, -3.0, -1.0, 0.0, 1.0, 3.0, 4.0])
    assert R.hardswish(x)[0].tolist() == [-0.0, -0.0, -1 / 3, 0.0, 2 / 3, 3.0, 4.0]
    assert R.hardsigmoid(x)[0].tolist() == [0.0, 0.0, 1 / 3, 0.5, 2 / 3, 1.0, 1.0]
    np.testing.assert_allclose(R.silu(x)[0], x / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(R.selu(np.array([-1e3, 1.0]))[0], [-R.SELU_SCALE * R.SELU_ALPHA, R.SELU_SCALE])
    # GELU at 1: Phi(1) = 0.8413447460685429 (the normal table)
    assert R.gelu(np.array([1.0]))[0][0] == pytest.approx(0.8413447460685429, rel=1e-15)


def test_extremes_do_not_overflow():
    """pytest turns RuntimeWarning into an error: no exp overflows anywhere."""
    x = np.array([-1e4, -100.0, 100.0, 1e4], np.float32)
    for name in OPS:
        y, cache = getattr(R, name)(x)
        dx = getattr(R, f"{name}_backward")(np.ones_like(x), cache)
        assert np.isfinite(y).all() and np.isfinite(dx).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keep_the_dtype(dtype):
    x = np.linspace(-5, 5, 12, dtype=dtype).reshape(3, 4)
    for name in OPS:
        y, cache = getattr(R, name)(x)
        assert y.dtype == getattr(R, f"{name}_backward")(x, cache).dtype == dtype, name
    y, cache = R.prelu(x, np.array([0.25]))
    dx, dw = R.prelu_backward(x, cache)
    assert y.dtype == dx.dtype == dw.dtype == dtype
