"""cnnkit.reference.activation: numeric gradients, bit-for-bit equality with cnnkit.functional (NaN, inf and
signed zeros included, float32 and float64), PyTorch parity."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference_checks import assert_all_same, assert_gradients, torch_grads

import cnnkit.functional as F
from cnnkit.reference import activation as R

# (name, extra arguments): every activation, with the hyperparameters worth trying
OPS = [("relu", ()), ("relu6", ()), ("leaky_relu", ()), ("leaky_relu", (0.2,)), ("leaky_relu", (0.0,)),
       ("leaky_relu", (1.5,)), ("elu", ()), ("elu", (0.5,)), ("sigmoid", ()), ("tanh", ()), ("softmax", ()),
       ("softmax", (-1,)), ("softmax", (0,))]
# values worth trying, each exact in float32
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 6.0, -(2.0 ** -100), 2.0 ** 100, -800.0, 800.0]


def _bits(a):
    a = np.asarray(a)
    return a.view(f"u{a.dtype.itemsize}")


def _run(module, name, args, x, dy):
    y, cache = getattr(module, name)(x, *args)
    return y, getattr(module, name + "_backward")(dy, cache)


@pytest.mark.parametrize("name, args", OPS)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_matches_functional_bit_for_bit(name, args, data):
    """Same bits as cnnkit.functional, forward and backward, including NaN, inf and -0.0 (not softmax:
    its reductions may add in another order)."""
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=5))
    width, top = (32, 2.0 ** 100) if dtype == np.float32 else (64, 2.0 ** 1000)
    special = SPECIAL if name != "softmax" else SPECIAL[3:6]
    values = st.floats(-top, top, width=width) | st.sampled_from(special)
    x = data.draw(hnp.arrays(dtype, shape, elements=values))
    dy = data.draw(hnp.arrays(dtype, shape, elements=st.floats(-10, 10, width=32)))
    if name == "softmax":
        x = np.clip(x, -1e4, 1e4)  # keeps x - max(x) finite
    with np.errstate(all="ignore"):  # inf * 0 and friends: both kernels make the same NaN, with a warning
        ours, theirs = _run(R, name, args, x, dy), _run(F, name, args, x, dy)
    if name == "softmax":
        assert_all_same(ours, theirs, ("y", "dx"), tol=1e-6 if dtype == np.float32 else 1e-14)
        return
    for a, b, what in zip(ours, theirs, ("y", "dx"), strict=True):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape, what
        assert np.array_equal(_bits(a), _bits(b)), f"{what}: {a} != {b}"


@pytest.mark.parametrize("name, args", [op for op in OPS if op[0] != "softmax"])
def test_special_values_match_functional(name, args):
    for dtype in (np.float32, np.float64):
        x = np.array(SPECIAL, dtype).reshape(2, 5)
        dy = np.linspace(-2, 2, 10, dtype=dtype).reshape(2, 5)
        with np.errstate(all="ignore"):
            pairs = zip(_run(R, name, args, x, dy), _run(F, name, args, x, dy), strict=True)
        for a, b in pairs:
            assert np.array_equal(_bits(a), _bits(b)), (a, b)


def test_large_arrays_match_functional():
    """cnnkit.functional runs ReLU on large arrays in batch chunks; the values are the same."""
    x = np.random.default_rng(0).standard_normal((8, 16, 48, 48)).astype(np.float32)
    for name in ("relu", "relu6", "leaky_relu"):
        for a, b in zip(_run(R, name, (), x, x), _run(F, name, (), x, x), strict=True):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("name, args", OPS)
def test_numeric_gradients(name, args):
    x = np.random.default_rng(0).standard_normal((3, 4, 2)) * 3
    x[np.abs(x) < 1e-3] = 0.5  # away from the kinks of ReLU and friends, where the derivative jumps
    x[np.abs(x - 6) < 1e-3] = 5.5
    assert_gradients(getattr(R, name) if not args else lambda x: getattr(R, name)(x, *args),
                     getattr(R, name + "_backward"), dict(x=x))


@pytest.mark.parametrize("name, args", OPS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_the_dtype(name, args, dtype):
    x = np.linspace(-8, 8, 24, dtype=dtype).reshape(2, 3, 4)
    y, dx = _run(R, name, args, x, x)
    assert (y.dtype, dx.dtype) == (dtype, dtype)


def test_nan_stays_visible_and_extremes_do_not_overflow():
    x = np.array([np.nan, -1000.0, 1000.0])
    assert np.isnan(R.relu(x)[0][0]) and np.isnan(R.leaky_relu(x)[0][0]) and np.isnan(R.elu(x)[0][0])
    assert R.sigmoid(x)[0][1:].tolist() == [0.0, 1.0]
    assert R.softmax(np.array([[1000.0, 1000.0]]))[0].tolist() == [[0.5, 0.5]]


def _torch_ops():
    import torch
    import torch.nn.functional as tF

    return {"relu": tF.relu, "relu6": tF.relu6, "leaky_relu": tF.leaky_relu, "elu": tF.elu,
            "sigmoid": torch.sigmoid, "tanh": torch.tanh, "softmax": lambda t, axis=1: tF.softmax(t, axis)}


@pytest.mark.parametrize("name, args", OPS)
def test_parity_with_pytorch(name, args):
    pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((3, 4, 5)) * 4
    x[0, 0, :3] = [0.0, 6.0, -0.0]  # PyTorch's gradient at the kinks: 0 for ReLU at 0, 0 for ReLU6 at 6
    dy = np.random.default_rng(1).standard_normal(x.shape)
    fn = _torch_ops()[name]
    ty, (tdx,) = torch_grads(lambda t: fn(t, *args), (x,), dy)
    assert_all_same(_run(R, name, args, x, dy), (ty, tdx), ("y", "dx"), tol=1e-14)


def _softmax_cases():
    try:
        from opinfo_samples import samples

        return [(name, x.detach().numpy(), args[0]) for name in ("softmax", "log_softmax")
                for x, args, _ in samples(name)]
    except pytest.skip.Exception:
        return [None]


@pytest.mark.parametrize("case", _softmax_cases(),
                         ids=lambda c: "none" if c is None else f"{c[0]}-{c[1].shape}-dim{c[2]}")
def test_softmax_and_log_softmax_match_pytorch_on_its_opinfo_samples(case):
    """softmax(x, dim) and log_softmax(x, dim), forward and dx, float64."""
    if case is None:
        pytest.skip("needs torch and expecttest for PyTorch's OpInfo samples")
    name, x, dim = case
    if x.ndim == 0 or x.size == 0:
        pytest.skip("a 0-d or empty tensor: NumPy has no maximum to subtract there")
    import torch

    dy = np.random.default_rng(0).standard_normal(x.shape)
    y, cache = getattr(R, name)(x, dim)
    ty, (tdx,) = torch_grads(lambda t: getattr(torch.nn.functional, name)(t, dim), (x,), dy)
    assert_all_same((y, getattr(R, f"{name}_backward")(dy, cache)), (ty, tdx), ("y", "dx"), tol=1e-14)
