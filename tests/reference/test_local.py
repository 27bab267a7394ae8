"""cnnkit.reference.local: numeric gradients, equality with cnnkit.functional over random shapes, a naive
loop, PyTorch parity (unfold + one filter per position), and errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_checks import assert_all_same, assert_gradients, assert_same, same_error, torch_grads

import cnnkit.functional as F
from cnnkit.geometry import conv_geometry
from cnnkit.reference import local as R

GRADS = ("y", "dx", "dweight", "dbias")


@st.composite
def cases(draw, max_batch=3, nds=(1, 2, 2, 3)):
    nd = draw(st.sampled_from(nds))
    kernel = draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
    stride = tuple(draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd)))
    pads = tuple(draw(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=nd, max_size=nd)))
    size = [draw(st.integers(max(1, k - lo - hi), 4 if nd == 3 else 7)) for k, (lo, hi) in zip(kernel, pads)]
    fit = draw(st.sampled_from(["crop", "pad"]))
    out, _ = conv_geometry(size, kernel, stride, pads, (1,) * nd, fit)
    C, K = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return dict(x=(draw(st.integers(0, max_batch)), C, *size), w=(K, *out, C, *kernel), b=(K, *out),
                bias=draw(st.booleans()), stride=stride, padding=pads, fit=fit)


def _arrays(case, dtype=np.float64, seed=0):
    r = np.random.default_rng(seed)
    x, w = r.standard_normal(case["x"]).astype(dtype), r.standard_normal(case["w"]).astype(dtype)
    return x, w, r.standard_normal(case["b"]).astype(dtype) if case["bias"] else None


@settings(max_examples=50, deadline=None)
@given(cases())
def test_matches_functional(case):
    x, w, b = _arrays(case)
    hyper = (case["stride"], case["padding"], case["fit"])
    y, cache = R.locally_connected(x, w, b, *hyper)
    y_f, cache_f = F.locally_connected(x, w, b, *hyper)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    assert_all_same((y, *R.locally_connected_backward(dy, cache)),
                    (y_f, *F.locally_connected_backward(dy, cache_f)), GRADS)


def test_matches_a_naive_loop():
    """Every output neuron (k, i, j) is its own filter's dot product with its window, plus its bias."""
    r = np.random.default_rng(0)
    x, w = r.standard_normal((2, 3, 5, 6)), r.standard_normal((4, 2, 2, 3, 3, 2))
    b = r.standard_normal((4, 2, 2))
    y, _ = R.locally_connected2d(x, w, b, stride=(2, 3), padding=((0, 1), (0, 0)), fit="crop")
    xp = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 0)))
    naive = np.zeros((2, 4, 2, 2))
    for n, k, i, j in np.ndindex(naive.shape):
        naive[n, k, i, j] = np.sum(w[k, i, j] * xp[n, :, 2 * i:2 * i + 3, 3 * j:3 * j + 2]) + b[k, i, j]
    assert_same(y, naive)


@pytest.mark.parametrize("case", [
    dict(x=(2, 2, 6), w=(3, 3, 2, 2), b=(3, 3), bias=True, stride=(2,), padding=((0, 0),), fit="error"),
    dict(x=(1, 2, 4, 5), w=(2, 4, 2, 2, 2, 3), b=(2, 4, 2), bias=True, stride=(1, 2),
         padding=((0, 1), (1, 0)), fit="crop"),
])
def test_numeric_gradients(case):
    x, w, b = _arrays(case)
    assert_gradients(lambda **a: R.locally_connected(**a, stride=case["stride"], padding=case["padding"],
                                                     fit=case["fit"]),
                     R.locally_connected_backward, dict(x=x, weight=w, bias=b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_the_dtype(dtype):
    x, w, b = _arrays(dict(x=(2, 2, 5, 5), w=(3, 3, 3, 2, 3, 3), b=(3, 3, 3), bias=True), dtype)
    y, cache = R.locally_connected2d(x, w, b, padding=(1, 1), stride=2)
    assert [a.dtype for a in (y, *R.locally_connected2d_backward(y, cache))] == [dtype] * 4


@pytest.mark.parametrize("call", [
    lambda m: m.locally_connected2d(np.zeros((1, 2, 5)), np.zeros((1, 3, 3, 2, 3, 3))),  # not 4-D
    lambda m: m.locally_connected2d(np.zeros((1, 2, 5, 5)), np.zeros((1, 3, 3, 3, 3, 3))),  # C
    lambda m: m.locally_connected2d(np.zeros((1, 2, 6, 6)), np.zeros((1, 3, 3, 2, 3, 3))),  # other size
    lambda m: m.locally_connected2d(np.zeros((1, 2, 6, 6)), np.zeros((1, 2, 2, 2, 3, 3)), stride=2),
    lambda m: m.locally_connected(np.zeros((1, 2, 5)), np.zeros((1, 3, 2, 3)), stride=0),
])
def test_errors_match_functional(call):
    same_error(lambda: call(R), lambda: call(F))


@settings(max_examples=30, deadline=None)
@given(cases(max_batch=2, nds=(2,)))
def test_parity_with_pytorch(case):
    """PyTorch has no locally connected op: unfold (its im2col) and one filter per position, autograd."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as tF

    x, w, b = _arrays(case)
    y, cache = R.locally_connected(x, w, b, case["stride"], case["padding"], case["fit"])
    dy = np.random.default_rng(1).standard_normal(y.shape)
    N, K, *out = y.shape
    kernel = w.shape[-2:]
    _, applied = conv_geometry(x.shape[2:], kernel, case["stride"], case["padding"], (1, 1), case["fit"])
    pads = [p for lo_hi in reversed(applied) for p in lo_hi]  # PyTorch's order: last axis first

    def fn(tx, tw, tb):
        cols = tF.unfold(tF.pad(tx, pads), kernel, stride=case["stride"])  # (N, C*F*F, L)
        ty = torch.einsum("njl,klj->nkl", cols, tw.reshape(K, cols.shape[2], cols.shape[1]))
        return ty.reshape(N, K, *out) if tb is None else ty.reshape(N, K, *out) + tb

    ty, grads = torch_grads(fn, (x, w, b), dy)
    assert_all_same((y, *R.locally_connected_backward(dy, cache)), (ty, *grads), GRADS, tol=1e-12)
