"""cnnkit.reference.norm: batch norm (batch statistics and given ones) and local response norm: numeric
gradients, equality with cnnkit.functional over random shapes, PyTorch parity."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_checks import assert_all_same, assert_gradients, assert_same, torch_grads

import cnnkit.functional as F
from cnnkit.reference import norm as R


@st.composite
def cases(draw, min_batch=1):
    """An input shape (N, C) or (N, C, *S), which parameters exist, and whether statistics are given."""
    spatial = draw(st.lists(st.integers(1, 5), min_size=0, max_size=3))
    fixed = draw(st.booleans())
    N = draw(st.integers(min_batch, 4))
    return dict(shape=(N, draw(st.integers(1, 5)), *spatial), weight=draw(st.booleans()),
                bias=draw(st.booleans()), fixed=fixed, eps=draw(st.sampled_from([1e-5, 1e-3, 0.1])))


def _arrays(case, dtype=np.float64, seed=0):
    r = np.random.default_rng(seed)
    C = case["shape"][1]
    x = (3 * r.standard_normal(case["shape"]) + 1).astype(dtype)
    weight = r.standard_normal(C).astype(dtype) if case["weight"] else None
    bias = r.standard_normal(C).astype(dtype) if case["bias"] else None
    if not case["fixed"]:
        return x, weight, bias, None, None
    return x, weight, bias, r.standard_normal(C).astype(dtype), (r.random(C) + 0.5).astype(dtype)


@settings(max_examples=80, deadline=None)
@given(cases())
def test_batch_norm_matches_functional(case):
    x, weight, bias, mean, var = _arrays(case)
    y, cache = R.batch_norm(x, weight, bias, mean, var, case["eps"])
    y_f, cache_f = F.batch_norm(x, weight, bias, mean, var, case["eps"])
    dy = np.random.default_rng(1).standard_normal(y.shape)
    assert_all_same((y, *R.batch_norm_backward(dy, cache)), (y_f, *F.batch_norm_backward(dy, cache_f)),
                    ("y", "dx", "dweight", "dbias"))
    # the layer updates its running averages with the batch statistics, which the cache carries
    if mean is None:
        axes = (0, *range(2, x.ndim))
        assert_same(cache["batch_mean"], x.mean(axis=axes), "batch_mean")
        assert_same(cache["batch_var"], x.var(axis=axes), "batch_var")


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5), (2, 3, 3, 4), (2, 2, 2, 3, 2)])
@pytest.mark.parametrize("fixed", [False, True])
def test_batch_norm_numeric_gradients(shape, fixed):
    x, weight, bias, mean, var = _arrays(dict(shape=shape, weight=True, bias=True, fixed=fixed))
    assert_gradients(lambda **a: R.batch_norm(**a, mean=mean, var=var), R.batch_norm_backward,
                     dict(x=x, weight=weight, bias=bias))
    assert_gradients(lambda x: R.batch_norm(x, mean=mean, var=var), R.batch_norm_backward, dict(x=x))


def test_batch_statistics_are_biased_and_cached():
    y, cache = R.batch_norm(np.array([[1.0], [3.0]]))
    np.testing.assert_allclose(y, [[-1.0], [1.0]], atol=1e-5)
    assert cache["batch_mean"].tolist() == [2.0] and cache["batch_var"].tolist() == [1.0]
    _, cache = R.batch_norm(np.array([[1.0], [3.0]]), mean=np.zeros(1), var=np.ones(1))
    assert cache["batch_mean"] is None and cache["batch_var"] is None


def test_batch_norm_with_given_statistics_takes_an_empty_batch():
    x, weight, bias, mean, var = _arrays(dict(shape=(0, 3, 2, 2), weight=True, bias=True, fixed=True))
    y, cache = R.batch_norm(x, weight, bias, mean, var)
    dx, dweight, dbias = R.batch_norm_backward(y, cache)
    assert y.shape == dx.shape == x.shape and not dweight.any() and not dbias.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fixed", [False, True])
def test_batch_norm_keeps_the_dtype(dtype, fixed):
    x, weight, bias, mean, var = _arrays(dict(shape=(3, 2, 4, 4), weight=True, bias=True, fixed=fixed), dtype)
    if fixed:  # running statistics are float64 in some callers: they must not upcast a float32 x
        mean, var = mean.astype(np.float64), var.astype(np.float64)
    y, cache = R.batch_norm(x, weight, bias, mean, var)
    assert [a.dtype for a in (y, *R.batch_norm_backward(y, cache))] == [dtype] * 4


@settings(max_examples=40, deadline=None)
@given(cases(min_batch=3))  # with 2 values per channel x_hat is +-1 whatever x is: dx ~ 0, all rounding
def test_batch_norm_parity_with_pytorch(case):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as tF

    x, weight, bias, mean, var = _arrays(case)
    y, cache = R.batch_norm(x, weight, bias, mean, var, case["eps"])
    dy = np.random.default_rng(1).standard_normal(y.shape)
    stats = (None, None) if mean is None else (torch.tensor(mean), torch.tensor(var))

    def fn(tx, tw, tb):
        return tF.batch_norm(tx, *stats, tw, tb, training=mean is None, eps=case["eps"])

    ty, grads = torch_grads(fn, (x, weight, bias), dy)
    assert_all_same((y, *R.batch_norm_backward(dy, cache)), (ty, *grads), ("y", "dx", "dweight", "dbias"),
                    tol=1e-12)


# -- local response normalization ---------------------------------------------------------------------------

LRN = st.tuples(st.integers(1, 6), st.sampled_from([1e-4, 0.5, 2.0]), st.sampled_from([0.75, 0.5, 1.0]),
                st.sampled_from([1.0, 2.0, 0.5]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=0, max_size=3), st.integers(0, 3), st.integers(1, 7), LRN)
def test_lrn_matches_functional(spatial, N, C, hyper):
    x = np.random.default_rng(0).standard_normal((N, C, *spatial))
    y, cache = R.local_response_norm(x, *hyper)
    y_f, cache_f = F.local_response_norm(x, *hyper)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    assert_all_same((y, R.local_response_norm_backward(dy, cache)),
                    (y_f, F.local_response_norm_backward(dy, cache_f)), ("y", "dx"))


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_lrn_numeric_gradients(size):
    x = np.random.default_rng(0).standard_normal((2, 6, 3, 2))
    assert_gradients(lambda x: R.local_response_norm(x, size, alpha=0.5, beta=0.75, k=1.5),
                     R.local_response_norm_backward, dict(x=x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lrn_keeps_the_dtype(dtype):
    y, cache = R.local_response_norm(np.ones((2, 4, 3, 3), dtype), 3)
    assert (y.dtype, R.local_response_norm_backward(y, cache).dtype) == (dtype, dtype)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.integers(1, 3), st.integers(1, 7), LRN)
def test_lrn_parity_with_pytorch(spatial, N, C, hyper):
    pytest.importorskip("torch")
    import torch.nn.functional as tF

    x = np.random.default_rng(0).standard_normal((N, C, *spatial))
    y, cache = R.local_response_norm(x, *hyper)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    ty, (tdx,) = torch_grads(lambda t: tF.local_response_norm(t, *hyper), (x,), dy)
    assert_all_same((y, R.local_response_norm_backward(dy, cache)), (ty, tdx), ("y", "dx"), tol=1e-12)
