"""Pooling layers: the notes' max-pooling example, numeric gradients, PyTorch parity, errors."""

import math

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.functional import pool as P
from conftest import assert_parity, import_torch

NOTES_X = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], np.float32)[None, None]


def _run(layer, x, dy=None, seed=0):
    """Forward, then backward with a seeded random dy: (y, dy, dx)."""
    y = layer(x)
    if dy is None:
        dy = np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype)
    return y, dy, layer.backward(dy)


def _torch(fn, x, dy, *args, **kwargs):
    """PyTorch's forward and dx for the same input and upstream gradient."""
    torch = import_torch()
    tx = torch.tensor(x, requires_grad=True)
    ty = fn(tx, *args, **kwargs)
    ty.backward(torch.tensor(dy))
    return ty, tx.grad


def _window_grid(n, seed, nd_choices=(1, 2, 2), dilation=True):
    """n seeded pooling configurations that PyTorch accepts (padding <= kernel_size // 2)."""
    r = np.random.default_rng(seed)
    configs = []
    while len(configs) < n:
        nd = int(r.choice(nd_choices))
        k = tuple(int(v) for v in r.integers(1, 5, nd))
        s = tuple(int(v) for v in r.integers(1, 4, nd))
        d = tuple(int(v) for v in r.integers(1, 3, nd)) if dilation else (1,) * nd
        p = tuple(int(r.integers(0, kk // 2 + 1)) for kk in k)
        size = tuple(int(v) for v in r.integers(3, 12, nd))
        if any(dd * (kk - 1) + 1 > m + 2 * pp for dd, kk, pp, m in zip(d, k, p, size, strict=True)):
            continue
        configs.append(dict(nd=nd, N=int(r.integers(1, 3)), C=int(r.integers(1, 4)), size=size, kernel_size=k,
                            stride=s, padding=p, dilation=d, fit=str(r.choice(["crop", "pad"]))))
    return configs


# -- the notes' worked example ---------------------------------------------------------------------

def test_notes_max_pooling_example():
    """2x2 max pooling with stride 2 keeps the largest of every four numbers: [[6, 8], [3, 4]]."""
    layer = ck.MaxPool2d(2, stride=2)
    y = layer(NOTES_X)
    assert y[0, 0].tolist() == [[6, 8], [3, 4]]
    dx = layer.backward(np.array([[[[10, 20], [30, 40]]]], np.float32))
    # Each gradient lands exactly on its window's argmax (the switch), everything else is zero.
    assert dx[0, 0].tolist() == [[0, 0, 0, 0], [0, 10, 0, 20], [30, 0, 0, 0], [0, 0, 0, 40]]


def test_ties_go_to_the_first_max_like_pytorch(tF):
    x = np.array([[[[5, 5, 1, 7], [5, 5, 7, 7], [0, 2, 2, 0], [2, 0, 0, 2]]]], np.float32)
    layer = ck.MaxPool2d(2)
    y, dy, dx = _run(layer, x, dy=np.ones((1, 1, 2, 2), np.float32))
    assert dx[0, 0].tolist() == [[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    ty, tdx = _torch(tF.max_pool2d, x, dy, 2)
    np.testing.assert_array_equal(dx, tdx.numpy())


def test_many_ties_with_overlapping_windows_match_pytorch(tF):
    """Small integers make ties everywhere; overlapping 3x3/stride-2 windows share winners."""
    x = np.random.default_rng(5).integers(0, 3, (2, 3, 9, 9)).astype(np.float32)
    y, dy, dx = _run(ck.MaxPool2d(3, 2, padding=1), x)
    ty, tdx = _torch(tF.max_pool2d, x, dy, 3, 2, 1)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_allclose(dx, tdx.numpy(), rtol=1e-6, atol=1e-6)


def test_padding_never_wins_the_max():
    x = -np.ones((1, 1, 4, 4), np.float32) - np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    layer = ck.MaxPool2d(3, stride=1, padding=1)
    y, _, dx = _run(layer, x, dy=np.ones((1, 1, 4, 4), np.float32))
    assert y.max() == -1.0  # zero padding would have given 0 at the border
    # Values fall to the right and down, so every window's max is its top-left input inside the image.
    assert dx[0, 0].tolist() == [[4, 2, 2, 0], [2, 1, 1, 0], [2, 1, 1, 0], [0, 0, 0, 0]]


def test_nan_propagates_through_max_pool():
    x = np.zeros((1, 1, 2, 4), np.float32)
    x[0, 0, 1, 1] = np.nan
    y = ck.MaxPool2d(2)(x)
    assert np.isnan(y[0, 0, 0, 0]) and y[0, 0, 0, 1] == 0


def test_max_pool_loops_over_kernel_taps_only(monkeypatch):
    """Vectorized: forward and backward visit each of the F*F taps once, whatever the input size."""
    from cnnkit.fast import pool as fast_pool

    visits = []
    taps = fast_pool._taps

    def counting(geometry):
        for item in taps(geometry):
            visits.append(item[0])
            yield item

    monkeypatch.setattr(fast_pool, "_taps", counting)
    layer = ck.MaxPool2d(3, 2, padding=1)
    _run(layer, np.random.default_rng(0).standard_normal((4, 8, 33, 33)).astype(np.float32))
    assert visits == list(range(9)) * 2


# -- numeric gradients (float64) -------------------------------------------------------------------

@pytest.mark.parametrize("make, shape", [
    (lambda: ck.MaxPool2d(2), (2, 2, 4, 6)),
    (lambda: ck.MaxPool2d(3, 2), (2, 2, 7, 7)),  # overlapping windows
    (lambda: ck.MaxPool2d(3, 2, padding=1, fit="pad"), (1, 2, 6, 7)),
    (lambda: ck.MaxPool2d(3, 2, fit="crop"), (1, 2, 8, 6)),
    (lambda: ck.MaxPool2d((2, 3), (1, 2), padding=(1, 1), dilation=(2, 1), fit="crop"), (2, 1, 5, 7)),
    (lambda: ck.MaxPool1d(3, 2, padding=1, dilation=2, fit="pad"), (2, 3, 9)),
    (lambda: ck.AvgPool2d(2), (2, 2, 4, 6)),
    (lambda: ck.AvgPool2d(3, 2, padding=1, fit="pad"), (1, 2, 6, 7)),
    (lambda: ck.AvgPool2d(3, 2, padding=1, count_include_pad=False, fit="pad"), (1, 2, 6, 5)),
    (lambda: ck.AvgPool2d((3, 2), (2, 1), fit="crop"), (2, 1, 8, 5)),
    (lambda: ck.LPPool2d(2, 2), (2, 2, 4, 6)),
    (lambda: ck.LPPool2d(3, 3, 2, fit="pad"), (1, 2, 6, 7)),
    (lambda: ck.LPPool2d(1.5, (2, 3), (1, 2), fit="crop"), (2, 1, 5, 8)),
    (lambda: ck.GlobalAvgPool2d(), (2, 3, 5, 4)),
    (lambda: ck.GlobalMaxPool2d(), (2, 3, 5, 4)),
    (lambda: ck.Blur2d(2, 4, 3, fit="crop"), (1, 2, 7, 6)),
    (lambda: ck.BlurPool2d(2), (2, 2, 6, 8)),
    (lambda: ck.BlurPool2d(3, kernel_size=3, filter_size=4, stride=2, fit="pad"), (1, 3, 7, 8)),
])
def test_numeric_gradients(make, shape):
    errors = ck.gradcheck(make(), np.random.default_rng(1).standard_normal(shape))
    assert max(errors.values()) < 1e-6, errors


# -- parity with PyTorch ---------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", _window_grid(60, seed=2),
                         ids=lambda c: f"{c['nd']}d-k{c['kernel_size']}-{c['fit']}")
def test_max_pool_parity_with_pytorch(cfg, tF):
    """MaxPool1d/2d against torch max_pool1d/2d; fit="pad" is ceil_mode=True, fit="crop" the floor rule."""
    layer = (ck.MaxPool1d if cfg["nd"] == 1 else ck.MaxPool2d)(
        cfg["kernel_size"], cfg["stride"], cfg["padding"], cfg["dilation"], fit=cfg["fit"])
    x = np.random.default_rng(3).standard_normal((cfg["N"], cfg["C"], *cfg["size"])).astype(np.float32)
    y, dy, dx = _run(layer, x)
    fn = tF.max_pool1d if cfg["nd"] == 1 else tF.max_pool2d
    ty, tdx = _torch(fn, x, dy, cfg["kernel_size"], cfg["stride"], cfg["padding"], cfg["dilation"],
                     ceil_mode=cfg["fit"] == "pad")
    assert y.dtype == dx.dtype == np.float32
    assert layer.output_shape(x.shape) == y.shape
    assert_parity(y, ty, what="forward")
    assert_parity(dx, tdx, what="dx")


@pytest.mark.parametrize("cfg", _window_grid(40, seed=4, nd_choices=(2,), dilation=False),
                         ids=lambda c: f"k{c['kernel_size']}s{c['stride']}p{c['padding']}-{c['fit']}")
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_parity_with_pytorch(cfg, count_include_pad, tF):
    layer = ck.AvgPool2d(cfg["kernel_size"], cfg["stride"], cfg["padding"],
                         count_include_pad=count_include_pad, fit=cfg["fit"])
    x = np.random.default_rng(3).standard_normal((cfg["N"], cfg["C"], *cfg["size"])).astype(np.float32)
    y, dy, dx = _run(layer, x)
    ty, tdx = _torch(tF.avg_pool2d, x, dy, cfg["kernel_size"], cfg["stride"], cfg["padding"],
                     ceil_mode=cfg["fit"] == "pad", count_include_pad=count_include_pad)
    assert layer.output_shape(x.shape) == y.shape
    assert_parity(y, ty, what="forward")
    assert_parity(dx, tdx, what="dx")


@pytest.mark.parametrize("p", [1, 2, 3, 1.5])
@pytest.mark.parametrize("kernel_size, stride, size",
                         [(2, None, (6, 8)), (3, 2, (7, 9)), ((2, 3), (1, 2), (5, 7))])
def test_lp_pool_parity_with_pytorch(p, kernel_size, stride, size, tF):
    """LPPool2d against torch lp_pool2d. PyTorch raises x (not |x|) to the power p, so for odd or fractional
    p the input is made non-negative (as after a ReLU), where both are the L_p norm of the window."""
    x = np.random.default_rng(6).standard_normal((2, 3, *size)).astype(np.float32)
    if p != 2:
        x = np.abs(x)
    y, dy, dx = _run(ck.LPPool2d(p, kernel_size, stride), x)
    ty, tdx = _torch(tF.lp_pool2d, x, dy, p, kernel_size, stride)
    assert_parity(y, ty, what="forward")
    assert_parity(dx, tdx, what="dx")


@pytest.mark.parametrize("p", [2, 3])
def test_lp_pool_fit_pad_is_the_norm_of_the_partial_window(p, tF):
    """fit="pad" zero-pads, so a partial window's value is the norm of what it covers: PyTorch's sum pooling
    (avg_pool2d with divisor_override=1, ceil_mode=True) of |x|^p, to the power 1/p."""
    x = np.random.default_rng(7).standard_normal((2, 2, 8, 6)).astype(np.float32)
    y, dy, dx = _run(ck.LPPool2d(p, 3, 2, fit="pad"), x)

    def reference(t):
        return tF.avg_pool2d(t.abs() ** p, 3, 2, ceil_mode=True, divisor_override=1) ** (1 / p)

    ty, tdx = _torch(reference, x, dy)
    assert y.shape == (2, 2, 4, 3)
    assert_parity(y, ty, what="forward")
    assert_parity(dx, tdx, what="dx")


def test_lp_pool_of_a_zero_window_has_zero_gradient():
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 2:, 2:] = [[3, 0], [0, -4]]
    y, _, dx = _run(ck.LPPool2d(2, 2), x, dy=np.ones((1, 1, 2, 2), np.float32))
    assert y[0, 0].tolist() == [[0, 0], [0, 5]]
    np.testing.assert_allclose(dx[0, 0, 2:, 2:], [[0.6, 0], [0, -0.8]], rtol=1e-6)
    assert np.all(np.isfinite(dx)) and np.all(dx[0, 0, :2] == 0)


@pytest.mark.parametrize("layer, torch_fn", [
    (ck.GlobalAvgPool2d(), lambda tF, t: tF.adaptive_avg_pool2d(t, 1)),
    (ck.GlobalMaxPool2d(), lambda tF, t: tF.adaptive_max_pool2d(t, 1)),
])
@pytest.mark.parametrize("shape", [(2, 3, 7, 7), (1, 4, 1, 5), (3, 2, 6, 3)])
def test_global_pools_parity_with_pytorch(layer, torch_fn, shape, tF):
    x = np.random.default_rng(8).standard_normal(shape).astype(np.float32)
    y, dy, dx = _run(layer, x)
    ty, tdx = _torch(lambda t: torch_fn(tF, t), x, dy)
    assert layer.output_shape(shape) == y.shape == (*shape[:2], 1, 1)
    assert_parity(y, ty, what="forward")
    assert_parity(dx, tdx, what="dx")


@pytest.mark.parametrize("channels, kernel_size, filter_size, stride, size", [
    (3, 2, 3, 2, (8, 10)),
    (2, 3, 4, 2, (9, 7)),
    (4, 2, 5, 3, (11, 8)),
    (1, 1, 2, 2, (5, 7)),
])
def test_blur_pool_parity_with_pytorch(channels, kernel_size, filter_size, stride, size, tF, torch):
    """BlurPool2d = torch max_pool2d(stride 1), then conv2d with the binomial filter, groups=C, stride S."""
    layer = ck.BlurPool2d(channels, kernel_size, filter_size, stride, fit="crop")
    x = np.random.default_rng(9).standard_normal((2, channels, *size)).astype(np.float32)
    y, dy, dx = _run(layer, x)
    row = torch.tensor([math.comb(filter_size - 1, k) for k in range(filter_size)], dtype=torch.float32)
    blur = (row[:, None] * row[None, :] / row.sum() ** 2).expand(channels, 1, filter_size, filter_size)
    lo, hi = (filter_size - 1) // 2, filter_size // 2

    def reference(t):
        t = tF.pad(tF.max_pool2d(t, kernel_size, stride=1), (lo, hi, lo, hi))
        return tF.conv2d(t, blur, stride=stride, groups=channels)

    ty, tdx = _torch(reference, x, dy)
    assert layer.output_shape(x.shape) == y.shape
    assert_parity(y, ty, what="forward")
    assert_parity(dx, tdx, what="dx")


def test_blur_pool_is_a_composite_of_two_windows():
    layer = ck.BlurPool2d(8)
    assert [name for name, _ in layer.named_children()] == ["pool", "blur"]
    assert layer["pool"].stride == (1, 1) and layer["blur"].stride == (2, 2)
    assert layer["blur"].kernel_size == (3, 3) and layer["blur"].padding == ((1, 1), (1, 1))
    assert layer.parameters() == []  # the blur is fixed, nothing to train
    assert layer.output_shape((1, 8, 32, 32)) == ck.MaxPool2d(2).output_shape((1, 8, 32, 32))
    np.testing.assert_allclose(layer["blur"].filter * 16, [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_max_pool3d_kernel_parity(tF):
    x = np.random.default_rng(10).standard_normal((2, 2, 5, 6, 7)).astype(np.float32)
    y, cache = P.max_poolnd(x, (2, 3, 2), (2, 2, 1), padding=1, fit="pad")
    dy = np.random.default_rng(11).standard_normal(y.shape).astype(np.float32)
    ty, tdx = _torch(tF.max_pool3d, x, dy, (2, 3, 2), (2, 2, 1), 1, ceil_mode=True)
    assert_parity(y, ty, what="forward")
    assert_parity(P.max_poolnd_backward(dy, cache), tdx, what="dx")


# -- fit, dtypes, memory order ---------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda fit: ck.MaxPool2d(3, 2, fit=fit),
                                  lambda fit: ck.AvgPool2d(3, 2, fit=fit),
                                  lambda fit: ck.LPPool2d(2, 3, 2, fit=fit)])
def test_fit_policies(make):
    """(10 - 3)/2 + 1 = 4.5: "error" raises with the formula, "crop" gives 4 (floor), "pad" 5 (ceil)."""
    x = np.ones((1, 1, 10, 10), np.float32)
    with pytest.raises(ck.ShapeError, match=r"\(H - F \+ 2P\)/S \+ 1 = \(10 - 3 \+ 0\)/2 \+ 1 = 4.5 is "
                                            r"not an integer; use (padding=\(\(0, 1\), \(0, 1\)\) .*)?"
                                            r"stride=1, or fit='crop'.*fit='pad'"):
        make("error")(x)
    with pytest.raises(ck.ShapeError, match=r"4.5 is not an integer"):
        make("error").output_shape(x.shape)
    assert make("crop")(x).shape == make("crop").output_shape(x.shape) == (1, 1, 4, 4)
    assert make("pad")(x).shape == make("pad").output_shape(x.shape) == (1, 1, 5, 5)


def test_avg_pool_fit_pad_does_not_count_the_extra_zeros():
    """Like ceil_mode in PyTorch, the last partial window averages only what it covers."""
    x = np.arange(5, dtype=np.float32).reshape(1, 1, 1, 5)
    y = ck.AvgPool2d((1, 2), fit="pad")(x)
    assert y[0, 0, 0].tolist() == [0.5, 2.5, 4.0]


@pytest.mark.parametrize("make", [lambda: ck.MaxPool2d(2), lambda: ck.AvgPool2d(2), lambda: ck.LPPool2d(2, 2),
                                  lambda: ck.GlobalAvgPool2d(), lambda: ck.GlobalMaxPool2d(),
                                  lambda: ck.BlurPool2d(3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_and_any_memory_order_works(make, dtype):
    x = np.random.default_rng(12).standard_normal((2, 3, 6, 6)).astype(dtype)
    nhwc_view = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    layer = make()
    y = layer(x)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == dtype and dx.shape == x.shape
    # equal up to summation order (a mean over a strided view may add in another order)
    np.testing.assert_allclose(layer(nhwc_view), y, rtol=1e-6, atol=1e-7)


# -- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, shape, pattern", [
    (lambda: ck.MaxPool2d(2), (2, 3, 8, 8, 8), r"MaxPool2d\(kernel_size=2\): expected a 4-D input"),
    (lambda: ck.MaxPool1d(2), (1, 3, 8, 8), r"MaxPool1d\(kernel_size=2\): expected a 3-D input \(N, C, W\)"),
    (lambda: ck.AvgPool2d(2), (8, 8), r"expected a 4-D input"),
    (lambda: ck.GlobalAvgPool2d(), (3, 8), r"GlobalAvgPool2d\(\): expected a 4-D input"),
    (lambda: ck.BlurPool2d(4), (1, 3, 8, 8), r"Blur2d\(channels=4\): expected 4 input channels"),
    (lambda: ck.MaxPool2d(5), (1, 1, 3, 3), r"kernel \(F=5\) is larger than the padded input \(H \+ 2P = 3"),
    (lambda: ck.MaxPool2d(3, dilation=2), (1, 1, 4, 4), r"kernel \(F=5\) is larger than the padded input"),
    (lambda: ck.AvgPool2d(4, padding=1), (1, 1, 1, 1), r"kernel \(F=4\) is larger than the padded input"),
])
def test_bad_input_gets_a_clear_error(make, shape, pattern):
    layer = make()
    with pytest.raises(ck.ShapeError, match=pattern):
        layer(np.zeros(shape, np.float32))
    with pytest.raises(ck.ShapeError, match=pattern.split(": ")[-1]):
        layer.output_shape(shape)


def test_non_float_input():
    with pytest.raises(TypeError, match=r"MaxPool2d\(kernel_size=2\): expected a floating-point array"):
        ck.MaxPool2d(2)(np.zeros((1, 1, 4, 4), np.int64))


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: ck.MaxPool2d(3, padding=2), ValueError,
     r"MaxPool2d: Received padding=2 with kernel_size=3; padding must be at most kernel_size // 2 = 1"),
    (lambda: ck.AvgPool2d(2, padding=(0, 2)), ValueError, r"AvgPool2d: Received padding=\(0, 2\).* // 2 = 1"),
    (lambda: ck.MaxPool1d(4, padding=3), ValueError, r"at most kernel_size // 2 = 2 \(PyTorch's rule\)"),
    (lambda: ck.MaxPool2d(0), ValueError, r"MaxPool2d: Received kernel_size=0"),
    (lambda: ck.MaxPool2d(2, stride=-1), ValueError, r"MaxPool2d: Received stride=-1"),
    (lambda: ck.MaxPool2d(2, dilation=1.5), TypeError, r"MaxPool2d: Received dilation=1.5"),
    (lambda: ck.MaxPool2d((2, 2, 2)), ValueError, r"Received kernel_size=\(2, 2, 2\): expected .* of 2 ints"),
    (lambda: ck.MaxPool2d(2, fit="round"), ValueError, r"MaxPool2d: Invalid fit 'round'"),
    (lambda: ck.AvgPool2d(2, count_include_pad="yes"), TypeError, r"Received count_include_pad='yes'"),
    (lambda: ck.LPPool2d(0.5, 2), ValueError, r"LPPool2d: Received norm_type=0.5; expected a finite number"),
    (lambda: ck.LPPool2d(math.inf, 2), ValueError, r"For p = infinity use MaxPool2d"),
    (lambda: ck.LPPool2d("2", 2), TypeError, r"LPPool2d: Received norm_type='2'"),
    (lambda: ck.BlurPool2d(0), ValueError, r"Blur2d: Received channels=0"),
    (lambda: ck.BlurPool2d(3, filter_size=0), ValueError, r"Received filter_size=0"),
])
def test_bad_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


@pytest.mark.parametrize("make", [lambda: ck.MaxPool2d(2), lambda: ck.AvgPool2d(2), lambda: ck.LPPool2d(2, 2),
                                  lambda: ck.GlobalMaxPool2d(), lambda: ck.BlurPool2d(1)])
def test_backward_before_forward(make):
    with pytest.raises(RuntimeError, match=r"backward was called before forward"):
        make().backward(np.zeros((1, 1, 1, 1), np.float32))


def test_kernel_checks_rank():
    with pytest.raises(ck.ShapeError, match=r"max_pool2d: expected a 4-D input"):
        P.max_pool2d(np.zeros((2, 3, 4), np.float32), 2)


# -- description -----------------------------------------------------------------------------------

@pytest.mark.parametrize("layer, text", [
    (ck.MaxPool2d(3, 2, padding=1, fit="pad"), "MaxPool2d(kernel_size=3, stride=2, padding=1, fit='pad')"),
    (ck.AvgPool2d(2, count_include_pad=False), "AvgPool2d(kernel_size=2, count_include_pad=False)"),
    (ck.LPPool2d(2, 3, 2), "LPPool2d(norm_type=2, kernel_size=3, stride=2)"),
    (ck.GlobalAvgPool2d(), "GlobalAvgPool2d()"),
    (ck.BlurPool2d(4, stride=3), "BlurPool2d(\n  (pool): MaxPool2d(kernel_size=2, stride=1)\n"
                                 "  (blur): Blur2d(channels=4, stride=3)\n)"),
])
def test_repr_and_config_round_trip(layer, text):
    assert repr(layer) == text
    rebuilt = ck.layers.from_config(layer.config())
    assert type(rebuilt) is type(layer) and rebuilt.config() == layer.config()
    nested = ck.layers.from_config(ck.Sequential(layer).config())
    assert nested[0].config() == layer.config()


def test_windowed_attributes_for_analysis():
    layer = ck.MaxPool2d((3, 2), padding=(1, 0), dilation=(1, 2), fit="crop")
    assert layer.kernel_size == (3, 2) and layer.stride == (3, 2) and layer.dilation == (1, 2)
    assert layer.padding == ((1, 1), (0, 0)) and layer.fit == "crop"
    assert ck.LPPool2d(2, 3).padding == ((0, 0), (0, 0))
