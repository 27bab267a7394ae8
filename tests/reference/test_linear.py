"""cnnkit.reference.linear: linear, flatten and dropout: numeric gradients, equality with cnnkit.functional,
PyTorch parity."""

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_checks import assert_all_same, assert_gradients, torch_grads

import cnnkit.functional as F

R = importlib.import_module("cnnkit.reference.linear")  # the package's name `linear` is the function


@st.composite
def linear_cases(draw):
    lead = draw(st.lists(st.integers(0, 4), min_size=1, max_size=3))  # (N, *): batch 0 included
    return dict(x=(*lead, draw(st.integers(1, 6))), out=draw(st.integers(1, 5)), bias=draw(st.booleans()))


def _arrays(case, dtype=np.float64, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal(case["x"]).astype(dtype)
    w = r.standard_normal((case["out"], case["x"][-1])).astype(dtype)
    return x, w, r.standard_normal(case["out"]).astype(dtype) if case["bias"] else None


@settings(max_examples=50, deadline=None)
@given(linear_cases())
def test_linear_matches_functional(case):
    x, w, b = _arrays(case)
    y, cache = R.linear(x, w, b)
    y_f, cache_f = F.linear(x, w, b)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    assert_all_same((y, *R.linear_backward(dy, cache)), (y_f, *F.linear_backward(dy, cache_f)),
                    ("y", "dx", "dweight", "dbias"))


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (1, 4)])
def test_linear_numeric_gradients(shape):
    x, w, b = _arrays(dict(x=shape, out=3, bias=True))
    assert_gradients(R.linear, R.linear_backward, dict(x=x, weight=w, bias=b))
    assert_gradients(R.linear, R.linear_backward, dict(x=x, weight=w))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_keeps_the_dtype(dtype):
    x, w, b = _arrays(dict(x=(2, 5), out=3, bias=True), dtype)
    y, cache = R.linear(x, w, b)
    assert [a.dtype for a in (y, *R.linear_backward(y, cache))] == [dtype] * 4


@settings(max_examples=30, deadline=None)
@given(linear_cases())
def test_linear_parity_with_pytorch(case):
    pytest.importorskip("torch")
    import torch.nn.functional as tF

    x, w, b = _arrays(case)
    y, cache = R.linear(x, w, b)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    ty, grads = torch_grads(tF.linear, (x, w, b), dy)
    assert_all_same((y, *R.linear_backward(dy, cache)), (ty, *grads), ("y", "dx", "dweight", "dbias"),
                    tol=1e-13)


# -- flatten ------------------------------------------------------------------------------------------------

FLATTEN = [((2, 3, 4, 5), 1, -1), ((2, 3, 4, 5), 2, 3), ((2, 3, 4, 5), 0, 1), ((6,), 0, -1),
           ((2, 3, 4), -2, -1)]


@pytest.mark.parametrize("shape, start, end", FLATTEN)
def test_flatten_matches_functional(shape, start, end):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    y, cache = R.flatten(x, start, end)
    y_f, cache_f = F.flatten(x, start, end)
    assert_all_same((y, R.flatten_backward(y, cache)), (y_f, F.flatten_backward(y_f, cache_f)), ("y", "dx"))


@pytest.mark.parametrize("shape, start, end", FLATTEN)
def test_flatten_parity_with_pytorch(shape, start, end):
    torch = pytest.importorskip("torch")
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    np.testing.assert_array_equal(R.flatten(x, start, end)[0], torch.flatten(torch.tensor(x), start, end))


def test_flatten_takes_an_empty_batch():
    y, cache = R.flatten(np.zeros((0, 3, 4)))
    assert y.shape == (0, 12) and R.flatten_backward(y, cache).shape == (0, 3, 4)


def test_flatten_numeric_gradients():
    x = np.random.default_rng(0).standard_normal((2, 3, 2))
    assert_gradients(R.flatten, R.flatten_backward, dict(x=x))


# -- dropout ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_matches_functional(p, dtype):
    """The same generator state drops the same units (the mask is drawn alike), and scales alike."""
    x = np.random.default_rng(0).standard_normal((4, 3, 5, 5)).astype(dtype)
    y, cache = R.dropout(x, p, rng=np.random.default_rng(7))
    y_f, cache_f = F.dropout(x, p, rng=np.random.default_rng(7))
    assert_all_same((y, R.dropout_backward(x, cache)), (y_f, F.dropout_backward(x, cache_f)), ("y", "dx"),
                    tol=0)
    assert y.dtype == dtype


def test_dropout_evaluation_is_the_identity():
    x = np.ones((2, 3))
    y, cache = R.dropout(x, 0.5, rng=None, training=False)
    assert y is x and R.dropout_backward(x, cache) is x


def test_dropout_keeps_the_expectation():
    y, _ = R.dropout(np.ones((100, 1000)), 0.3, rng=np.random.default_rng(0))
    assert set(np.unique(y).round(6)) == {0.0, round(1 / 0.7, 6)} and y.mean() == pytest.approx(1.0, abs=0.01)


def test_dropout_numeric_gradients():
    x = np.random.default_rng(0).standard_normal((3, 4))
    # a fresh generator with one seed per call: every forward drops the same units
    assert_gradients(lambda x: R.dropout(x, 0.5, rng=np.random.default_rng(3)), R.dropout_backward, dict(x=x))
