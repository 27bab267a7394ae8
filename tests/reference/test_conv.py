"""cnnkit.reference.conv: numeric gradients, equality with cnnkit.functional's convolution over random
shapes (groups, dilation, stride, padding pairs, odd sizes, batch 0 and 1), PyTorch parity, and errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_checks import assert_all_same, assert_gradients, same_error, torch_grads

import cnnkit.functional as F
from cnnkit.errors import ShapeError
from cnnkit.reference import conv as R

GRADS = ("y", "dx", "dweight", "dbias")


@st.composite
def conv_cases(draw, max_batch=3):
    """A valid convolution: x and weight shapes, bias or not, stride, padding pairs, dilation, groups, fit."""
    nd = draw(st.sampled_from([1, 2, 2, 3]))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    C, K = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    axes = st.lists(st.integers(1, 3), min_size=nd, max_size=nd)
    kernel, stride, dilation = draw(axes), draw(axes), draw(st.lists(st.integers(1, 2), min_size=nd,
                                                                     max_size=nd))
    pads = draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=nd, max_size=nd))
    top = 5 if nd == 3 else 9
    size = [draw(st.integers(max(1, d * (k - 1) + 1 - lo - hi), top))
            for k, d, (lo, hi) in zip(kernel, dilation, pads)]
    N = draw(st.integers(0, max_batch))
    return dict(x=(N, C, *size), w=(K, C // groups, *kernel), bias=draw(st.booleans()), stride=tuple(stride),
                padding=tuple(pads), dilation=tuple(dilation), groups=groups, fit=draw(st.sampled_from(
                    ["crop", "pad"])))


def _arrays(case, dtype=np.float64, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal(case["x"]).astype(dtype)
    w = r.standard_normal(case["w"]).astype(dtype)
    b = r.standard_normal(case["w"][0]).astype(dtype) if case["bias"] else None
    return x, w, b


def _hyper(case):
    return (case["stride"], case["padding"], case["dilation"], case["groups"], case["fit"])


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_matches_functional(case):
    """Forward and every gradient equal cnnkit.functional's (float64), including input_grad=False."""
    x, w, b = _arrays(case)
    y, cache = R.convnd(x, w, b, *_hyper(case))
    y_f, cache_f = F.convnd(x, w, b, *_hyper(case))
    dy = np.random.default_rng(1).standard_normal(y.shape)
    assert_all_same((y, *R.convnd_backward(dy, cache)), (y_f, *F.convnd_backward(dy, cache_f)), GRADS)
    dx, *grads = R.convnd_backward(dy, R.convnd(x, w, b, *_hyper(case))[1], input_grad=False)
    _, *grads_f = F.convnd_backward(dy, F.convnd(x, w, b, *_hyper(case))[1], input_grad=False)
    assert dx is None
    assert_all_same(tuple(grads), tuple(grads_f), GRADS[2:])


@pytest.mark.parametrize("case", [
    dict(x=(2, 3, 7), w=(4, 3, 3), bias=True, stride=(2,), padding=((1, 0),), dilation=(1,), groups=1,
         fit="crop"),
    dict(x=(2, 4, 5, 6), w=(6, 2, 3, 2), bias=True, stride=(1, 2), padding=((1, 1), (0, 1)),
         dilation=(2, 1), groups=2, fit="pad"),
    dict(x=(1, 3, 5, 5), w=(3, 1, 3, 3), bias=False, stride=(1, 1), padding=((1, 1), (1, 1)),
         dilation=(1, 1), groups=3, fit="error"),
    dict(x=(1, 2, 4, 3, 4), w=(2, 2, 2, 1, 3), bias=True, stride=(1, 2, 1), padding=((0, 1), (1, 0), (1, 1)),
         dilation=(1, 1, 2), groups=1, fit="crop"),
])
def test_numeric_gradients(case):
    """dx, dweight and dbias are the derivatives of the forward (float64 central differences)."""
    x, w, b = _arrays(case)
    arrays = dict(x=x, weight=w) if b is None else dict(x=x, weight=w, bias=b)
    assert_gradients(lambda **a: R.convnd(**a, stride=case["stride"], padding=case["padding"],
                                          dilation=case["dilation"], groups=case["groups"], fit=case["fit"]),
                     R.convnd_backward, arrays)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_the_dtype(dtype):
    case = dict(x=(2, 4, 6, 5), w=(4, 2, 3, 3), bias=True, stride=(2, 1), padding=((1, 1), (0, 2)),
                dilation=(1, 2), groups=2, fit="crop")
    x, w, b = _arrays(case, dtype)
    y, cache = R.conv2d(x, w, b, *_hyper(case))
    grads = R.conv2d_backward(y, cache)
    assert [a.dtype for a in (y, *grads)] == [dtype] * 4


@pytest.mark.parametrize("N", [0, 1])
def test_small_batches(N):
    x, w, b = _arrays(dict(x=(N, 2, 5, 5), w=(3, 2, 3, 3), bias=True))
    y, cache = R.conv2d(x, w, b, padding=1)
    dx, dw, db = R.conv2d_backward(np.ones_like(y), cache)
    assert y.shape == (N, 3, 5, 5) and dx.shape == x.shape and dw.shape == w.shape and db.shape == (3,)
    if N == 0:
        assert not dw.any() and not db.any()


def test_im2col_and_col2im_are_adjoint():
    """<im2col(x), c> == <x, col2im(c)>: col2im is the transpose that the backward needs."""
    r = np.random.default_rng(0)
    xp = r.standard_normal((2, 3, 7, 6))
    kernel, stride, dilation, out = (2, 3), (2, 1), (2, 1), (2, 2)
    c = r.standard_normal((2, 3, 6, *out))
    lhs = np.sum(R.im2col(xp, kernel, stride, dilation, out) * c)
    rhs = np.sum(xp * R.col2im(c, xp.shape, kernel, stride, dilation, out))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_pad_and_unpad():
    x = np.arange(6.0).reshape(1, 1, 2, 3)
    xp = R.pad(x, ((1, 0), (0, 2)), value=-1.0)
    assert xp.shape == (1, 1, 3, 5) and xp[0, 0, 0].tolist() == [-1.0] * 5
    assert np.array_equal(R.unpad(xp, ((1, 0), (0, 2))), x)


@pytest.mark.parametrize("call", [
    lambda m: m.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((4, 2, 3, 3))),  # channels do not match
    lambda m: m.conv2d(np.zeros((1, 4, 5, 5)), np.zeros((3, 2, 3, 3)), groups=2),  # K not divisible
    lambda m: m.conv2d(np.zeros((1, 1, 10, 10)), np.zeros((1, 1, 3, 3)), stride=2),  # does not tile
    lambda m: m.conv1d(np.zeros((1, 1, 2)), np.zeros((1, 1, 5))),  # kernel larger than the input
    lambda m: m.conv3d(np.zeros((1, 1, 4, 4, 4)), np.zeros((1, 1, 2, 2, 2)), padding="full"),
    lambda m: m.convnd(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 2, 2)), stride=0),
    lambda m: m.convnd(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 2, 2)), dilation=(1, 1, 1)),
    lambda m: m.convnd(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 2, 2)), fit="round"),
])
def test_errors_match_functional(call):
    """Same exception and message as cnnkit.functional (layers and tests pin them with regexes)."""
    same_error(lambda: call(R), lambda: call(F))


def test_error_message_names_the_numbers():
    message = r"conv2d: \(H - F \+ 2P\)/S \+ 1 = \(10 - 3 \+ 0\)/2 \+ 1 = 4.5 is not an integer"
    with pytest.raises(ShapeError, match=message):
        R.conv2d(np.zeros((1, 1, 10, 10)), np.zeros((1, 1, 3, 3)), stride=2)


@settings(max_examples=40, deadline=None)
@given(conv_cases(max_batch=2))
def test_parity_with_pytorch(case):
    """torch.nn.functional.conv{1,2,3}d on the padded input (PyTorch pads symmetrically only), float64."""
    pytest.importorskip("torch")
    import torch.nn.functional as tF

    case = {**case, "fit": "crop"}  # PyTorch's floor rule
    x, w, b = _arrays(case)
    y, cache = R.convnd(x, w, b, *_hyper(case))
    dy = np.random.default_rng(1).standard_normal(y.shape)
    nd = x.ndim - 2
    torch_pads = [p for lo_hi in reversed(case["padding"]) for p in lo_hi]  # last axis first
    conv = (tF.conv1d, tF.conv2d, tF.conv3d)[nd - 1]

    def fn(tx, tw, tb):
        return conv(tF.pad(tx, torch_pads), tw, tb, case["stride"], 0, case["dilation"], case["groups"])

    ty, grads = torch_grads(fn, (x, w, b), dy)
    assert_all_same((y, *R.convnd_backward(dy, cache)), (ty, *grads), GRADS, tol=1e-12)
