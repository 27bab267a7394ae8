"""cnnkit.reference.pool: numeric gradients, equality with cnnkit.functional over random shapes (odd sizes,
stride, dilation, padding pairs, fit, batch 0 and 1), PyTorch parity, and errors; max, average, L_p,
blur and the global pools."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_checks import assert_all_same, assert_gradients, assert_same, same_error, torch_grads

import cnnkit.functional as F
from cnnkit.errors import ShapeError
from cnnkit.reference import pool as R


@st.composite
def cases(draw, max_batch=3, dilation=True, padding=True, for_torch=False, nds=(1, 2, 2, 3)):
    """A valid pooling window. ``for_torch``: within PyTorch's limits (one padding per axis, at most half
    the kernel; every window reaches the input: PyTorch leaves windows of padding only undefined)."""
    nd = draw(st.sampled_from(nds))
    kernel = draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
    stride = draw(st.one_of(st.none(), st.lists(st.integers(1, 3), min_size=nd, max_size=nd)))
    dil = draw(st.lists(st.integers(1, 2), min_size=nd, max_size=nd)) if dilation else [1] * nd
    pads = []
    for k in kernel:
        lo = draw(st.integers(0, k // 2)) if padding else 0
        pads.append((lo, lo) if for_torch or not padding else (lo, draw(st.integers(0, k // 2))))
    top = 5 if nd == 3 else 8
    size = [draw(st.integers(d * (k - 1) + 1 if for_torch else max(1, d * (k - 1) + 1 - lo - hi), top))
            for k, d, (lo, hi) in zip(kernel, dil, pads)]
    return dict(shape=(draw(st.integers(0, max_batch)), draw(st.integers(1, 3)), *size), kernel=tuple(kernel),
                stride=None if stride is None else tuple(stride), dilation=tuple(dil), padding=tuple(pads),
                fit=draw(st.sampled_from(["crop", "pad"])))


def _x(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _compare(ref, fun, x, *args, **kwargs):
    """Forward and backward of a reference pool and the functional one agree on x (and a random dy)."""
    y, cache = ref(x, *args, **kwargs)
    y_f, cache_f = fun(x, *args, **kwargs)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    backward, backward_f = getattr(R, ref.__name__ + "_backward"), getattr(F, fun.__name__ + "_backward")
    assert_all_same((y, backward(dy, cache)), (y_f, backward_f(dy, cache_f)), ("y", "dx"))


# -- equality with cnnkit.functional -------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(cases())
def test_max_matches_functional(case):
    _compare(R.max_poolnd, F.max_poolnd, _x(case["shape"]), case["kernel"], case["stride"], case["padding"],
             case["dilation"], case["fit"])


@settings(max_examples=40, deadline=None)
@given(cases(), st.integers(0, 2))
def test_max_with_many_ties_matches_functional(case, seed):
    """Small integers: most windows hold several maxima, and the first one (row-major) wins."""
    x = np.random.default_rng(seed).integers(0, 3, case["shape"]).astype(np.float64)
    _compare(R.max_poolnd, F.max_poolnd, x, case["kernel"], case["stride"], case["padding"], case["dilation"],
             case["fit"])


@settings(max_examples=60, deadline=None)
@given(cases(dilation=False), st.booleans())
def test_avg_matches_functional(case, count_include_pad):
    _compare(R.avg_poolnd, F.avg_poolnd, _x(case["shape"]), case["kernel"], case["stride"], case["padding"],
             count_include_pad, case["fit"])


@settings(max_examples=40, deadline=None)
@given(cases(dilation=False, padding=False), st.sampled_from([1, 1.5, 2, 3]))
def test_lp_matches_functional(case, p):
    _compare(R.lp_poolnd, F.lp_poolnd, _x(case["shape"]), p, case["kernel"], case["stride"], case["fit"])


@settings(max_examples=40, deadline=None)
@given(cases(dilation=False), st.integers(0, 9))
def test_blur_matches_functional(case, seed):
    kernel = np.random.default_rng(seed).random(case["kernel"])
    _compare(R.blurnd, F.blurnd, _x(case["shape"]), kernel, case["stride"] or 1, case["padding"], case["fit"])


@pytest.mark.parametrize("shape", [(1, 3, 5), (2, 2, 3, 4), (3, 1, 2, 3, 2), (2, 3, 1, 1)])
def test_global_pools_match_functional(shape):
    _compare(R.global_avg_pool, F.global_avg_pool, _x(shape))
    _compare(R.global_max_pool, F.global_max_pool, _x(shape))


def test_global_pools_take_an_empty_batch():
    x = np.zeros((0, 3, 4, 4), np.float32)
    for pool in (R.global_avg_pool, R.global_max_pool):
        y, cache = pool(x)
        assert y.shape == (0, 3, 1, 1) and y.dtype == np.float32
        dx = getattr(R, pool.__name__ + "_backward")(y, cache)
        assert dx.shape == x.shape and dx.dtype == np.float32


def test_binomial_filter_matches_functional():
    for size in range(1, 6):
        for nd in (1, 2, 3):
            assert_same(R.binomial_filter(size, nd), F.pool.binomial_filter(size, nd), f"{size}, {nd}-D")


# -- numeric gradients ------------------------------------------------------------------------------------

GEOMETRIES = [
    dict(shape=(2, 2, 7), kernel=(3,), stride=(2,), padding=((1, 0),), dilation=(1,), fit="pad"),
    dict(shape=(1, 2, 5, 6), kernel=(2, 3), stride=(2, 1), padding=((1, 0), (1, 1)), dilation=(2, 1),
         fit="crop"),
    dict(shape=(1, 1, 3, 4, 3), kernel=(2, 2, 2), stride=None, padding=((0, 1), (0, 0), (1, 0)),
         dilation=(1, 1, 1), fit="pad"),
]


@pytest.mark.parametrize("g", GEOMETRIES)
def test_numeric_gradients(g):
    x = _x(g["shape"], seed=2)
    common = dict(kernel_size=g["kernel"], stride=g["stride"], fit=g["fit"])
    assert_gradients(lambda x: R.max_poolnd(x, padding=g["padding"], dilation=g["dilation"], **common),
                     R.max_poolnd_backward, dict(x=x))
    for count_include_pad in (True, False):
        assert_gradients(lambda x, c=count_include_pad: R.avg_poolnd(x, padding=g["padding"],
                                                                     count_include_pad=c, **common),
                         R.avg_poolnd_backward, dict(x=x))
    for p in (1.5, 2, 3):
        assert_gradients(lambda x, p=p: R.lp_poolnd(x, p, **common), R.lp_poolnd_backward, dict(x=x))
    kernel = np.random.default_rng(0).random(g["kernel"])
    assert_gradients(lambda x: R.blurnd(x, kernel, g["stride"] or 1, g["padding"], g["fit"]),
                     R.blurnd_backward, dict(x=x))
    assert_gradients(R.global_avg_pool, R.global_avg_pool_backward, dict(x=x))
    assert_gradients(R.global_max_pool, R.global_max_pool_backward, dict(x=x))


def test_lp_pool_passes_no_gradient_through_a_window_of_zeros():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, :2, :2] = [[3, 0], [0, -4]]
    y, cache = R.lp_pool2d(x, 2, 2)
    dx = R.lp_pool2d_backward(np.ones_like(y), cache)
    assert y[0, 0].tolist() == [[5, 0], [0, 0]] and np.isfinite(dx).all()
    np.testing.assert_allclose(dx[0, 0, :2, :2], [[0.6, 0], [0, -0.8]])  # x / y inside the window
    assert not dx[0, 0, 2:].any() and not dx[0, 0, :, 2:].any()


# -- dtypes, NaN and errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_the_dtype(dtype):
    x = _x((2, 3, 6, 5), dtype)
    runs = [(R.max_pool2d, (3, 2, 1, 1, "crop")), (R.avg_pool2d, (3, 2, 1, False, "pad")),
            (R.lp_pool2d, (2.0, 2, 2, "pad")), (R.blurnd, (R.binomial_filter(3), 2, 1, "crop")),
            (R.global_avg_pool, ()), (R.global_max_pool, ())]
    for pool, args in runs:
        y, cache = pool(x, *args)
        dx = getattr(R, pool.__name__ + "_backward")(y, cache)
        assert (y.dtype, dx.dtype) == (dtype, dtype), pool.__name__


def test_a_nan_wins_its_window_and_takes_the_gradient():
    """As in PyTorch: the NaN is the max, and the window's gradient goes to it."""
    x = np.array([[[[1.0, np.nan], [3.0, 2.0]]]])
    y, cache = R.max_pool2d(x, 2)
    dx = R.max_pool2d_backward(np.ones_like(y), cache)
    assert np.isnan(y).all() and dx[0, 0].tolist() == [[0, 1], [0, 0]]


@pytest.mark.parametrize("call", [
    lambda m: m.max_pool2d(np.zeros((1, 1, 5)), 2),  # not 4-D
    lambda m: m.max_pool1d(np.zeros((1, 1, 5)), 2),  # does not tile
    lambda m: m.max_poolnd(np.zeros((1, 1, 2, 2)), 3),  # kernel larger than the input
    lambda m: m.max_poolnd(np.zeros((1, 1, 4, 4)), 2, dilation=0),
    lambda m: m.avg_pool2d(np.zeros((1, 1, 5, 5)), 2, padding="full"),
    lambda m: m.avg_poolnd(np.zeros((1, 1, 5, 5)), (2, 2, 2)),
    lambda m: m.lp_pool2d(np.zeros((1, 1, 5, 5)), 2, 2, fit="nearest"),
    lambda m: m.blurnd(np.zeros((1, 1, 5, 5)), np.ones((3,))),  # a 1-D filter on 2-D maps
    lambda m: m.blurnd(np.zeros((1, 1, 4, 4)), np.ones((3, 3)), stride=2),
    lambda m: m.global_max_pool(np.zeros((1, 1, 0))),  # no positions: argmax of nothing
])
def test_errors_match_functional(call):
    same_error(lambda: call(R), lambda: call(F))


def test_a_window_that_does_not_tile_says_how_to_fix_it():
    with pytest.raises(ShapeError, match=r"max_pool1d: \(W - F \+ 2P\)/S \+ 1 = \(5 - 2 \+ 0\)/2 \+ 1 = 2.5"):
        R.max_pool1d(np.zeros((1, 1, 5)), 2)


# -- PyTorch parity -----------------------------------------------------------------------------------------

def _torch_pads(case):
    return tuple(lo for lo, _ in case["padding"])


@settings(max_examples=40, deadline=None)
@given(cases(max_batch=2, for_torch=True))
def test_max_parity_with_pytorch(case):
    pytest.importorskip("torch")
    import torch.nn.functional as tF

    x = _x(case["shape"])
    y, cache = R.max_poolnd(x, case["kernel"], case["stride"], case["padding"], case["dilation"], case["fit"])
    dy = _x(y.shape, seed=1)
    fn = (tF.max_pool1d, tF.max_pool2d, tF.max_pool3d)[x.ndim - 3]
    ty, (tdx,) = torch_grads(lambda t: fn(t, case["kernel"], case["stride"], _torch_pads(case),
                                          case["dilation"], ceil_mode=case["fit"] == "pad"), (x,), dy)
    assert_all_same((y, R.max_poolnd_backward(dy, cache)), (ty, tdx), ("y", "dx"), tol=1e-12)


def test_max_parity_with_pytorch_on_ties_and_nan():
    pytest.importorskip("torch")
    import torch.nn.functional as tF

    x = np.random.default_rng(0).integers(0, 2, (2, 3, 7, 7)).astype(np.float64)
    x[0, 0, 1, 1] = x[1, 2, 4, 5] = np.nan
    y, cache = R.max_pool2d(x, 3, 2, 1)
    dy = _x(y.shape, seed=1)
    ty, (tdx,) = torch_grads(lambda t: tF.max_pool2d(t, 3, 2, 1), (x,), dy)
    np.testing.assert_array_equal(y, ty)
    assert_same(R.max_pool2d_backward(dy, cache), tdx, "dx", tol=1e-12)  # sums in another order


@settings(max_examples=40, deadline=None)
@given(cases(max_batch=2, dilation=False, for_torch=True), st.booleans())
def test_avg_parity_with_pytorch(case, count_include_pad):
    pytest.importorskip("torch")
    import torch.nn.functional as tF

    x = _x(case["shape"])
    y, cache = R.avg_poolnd(x, case["kernel"], case["stride"], case["padding"], count_include_pad,
                            case["fit"])
    dy = _x(y.shape, seed=1)
    fn = (tF.avg_pool1d, tF.avg_pool2d, tF.avg_pool3d)[x.ndim - 3]
    ty, (tdx,) = torch_grads(lambda t: fn(t, case["kernel"], case["stride"], _torch_pads(case),
                                          case["fit"] == "pad", count_include_pad), (x,), dy)
    assert_all_same((y, R.avg_poolnd_backward(dy, cache)), (ty, tdx), ("y", "dx"), tol=1e-12)


@settings(max_examples=30, deadline=None)
@given(cases(max_batch=2, dilation=False, padding=False, nds=(1, 2)), st.sampled_from([1, 2, 3, 1.5]))
def test_lp_parity_with_pytorch(case, p):
    """PyTorch raises x (not |x|) to the power p: the same norm for x >= 0 (as after a ReLU). Floor rule only:
    PyTorch rescales the partial windows of ceil_mode."""
    pytest.importorskip("torch")
    import torch.nn.functional as tF

    x = np.abs(_x(case["shape"])) + 0.1
    y, cache = R.lp_poolnd(x, p, case["kernel"], case["stride"], "crop")
    dy = _x(y.shape, seed=1)
    fn = (tF.lp_pool1d, tF.lp_pool2d)[x.ndim - 3]
    kernel = case["kernel"][0] if x.ndim == 3 else case["kernel"]
    ty, (tdx,) = torch_grads(lambda t: fn(t, p, kernel, case["stride"]), (x,), dy)
    assert_all_same((y, R.lp_poolnd_backward(dy, cache)), (ty, tdx), ("y", "dx"), tol=1e-12)


@settings(max_examples=30, deadline=None)
@given(cases(max_batch=2, dilation=False, nds=(2,)), st.integers(0, 9))
def test_blur_parity_with_pytorch(case, seed):
    """A blur is a depthwise convolution whose one kernel every channel shares."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as tF

    x, kernel = _x(case["shape"]), np.random.default_rng(seed).random(case["kernel"])
    stride = case["stride"] or 1
    y, cache = R.blurnd(x, kernel, stride, case["padding"], "crop")
    dy = _x(y.shape, seed=1)
    C, pads = x.shape[1], [p for lo_hi in reversed(case["padding"]) for p in lo_hi]
    weight = torch.tensor(np.broadcast_to(kernel, (C, 1, *kernel.shape)).copy())
    ty, (tdx,) = torch_grads(lambda t: tF.conv2d(tF.pad(t, pads), weight, None, stride, groups=C), (x,), dy)
    assert_all_same((y, R.blurnd_backward(dy, cache)), (ty, tdx), ("y", "dx"), tol=1e-12)


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (1, 2, 1, 7)])
def test_global_pools_parity_with_pytorch(shape):
    pytest.importorskip("torch")
    import torch.nn.functional as tF

    x = _x(shape)
    pairs = ((R.global_avg_pool, tF.adaptive_avg_pool2d), (R.global_max_pool, tF.adaptive_max_pool2d))
    for ours, theirs in pairs:
        y, cache = ours(x)
        dy = _x(y.shape, seed=1)
        ty, (tdx,) = torch_grads(lambda t, f=theirs: f(t, 1), (x,), dy)
        backward = getattr(R, ours.__name__ + "_backward")
        assert_all_same((y, backward(dy, cache)), (ty, tdx), ("y", "dx"), tol=1e-12)
