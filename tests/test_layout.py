"""Channels-last memory behind the NCHW shape (cnnkit.functional.layout): same values in every layer,
channels-last kept where the kernel makes it, and the 1x1 convolution's one-multiply path against
PyTorch's channels_last tensors."""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.functional.conv import convnd, convnd_backward
from cnnkit.layout import channels_last, is_channels_last, pad_into
from cnnkit.reference.conv import convnd as reference_convnd
from cnnkit.reference.conv import convnd_backward as reference_convnd_backward
from conftest import assert_parity


def strictly_channels_last(a):
    return is_channels_last(a) and not a.flags.c_contiguous


def test_channels_last_keeps_shape_and_values_and_orders_memory_nhwc():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    y = channels_last(x)
    assert y.shape == x.shape and np.array_equal(y, x)
    assert strictly_channels_last(y) and not is_channels_last(x)
    assert y.strides == (4 * 5 * 3 * 4, 4, 5 * 3 * 4, 3 * 4)  # bytes: channel fastest, then W, H, N
    assert channels_last(y) is y
    assert is_channels_last(np.zeros((2, 1, 4, 4)))  # C = 1: both layouts at once


def test_channels_last_needs_a_channel_axis():
    with pytest.raises(ValueError, match=r"at least 3 axes; received shape \(4, 5\)"):
        channels_last(np.zeros((4, 5)))


@pytest.mark.parametrize("spatial", [(7,), (4, 6), (3, 4, 5)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("stride", [1, 2])
def test_pointwise_conv_on_channels_last_equals_nchw_and_stays_channels_last(spatial, bias, stride):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, *spatial))
    w = rng.standard_normal((7, 5, *(1,) * len(spatial)))
    b = rng.standard_normal(7) if bias else None
    dy = rng.standard_normal((3, 7, *(-(-n // stride) for n in spatial)))
    y0, cache0 = convnd(x, w, b, stride, fit="crop")
    dx0, dw0, db0 = convnd_backward(dy, cache0)
    y_ref, ref_cache = reference_convnd(x, w, b, stride, fit="crop")  # the textbook kernel
    np.testing.assert_allclose(y0, y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx0, reference_convnd_backward(dy, ref_cache)[0], rtol=1e-12, atol=1e-12)
    for dy_layout in (dy, channels_last(dy)):  # dy from an NCHW layer needs one copy; channels-last none
        y, cache = convnd(channels_last(x), w, b, stride, fit="crop")
        assert cache.data["rows"] is not None and strictly_channels_last(y)
        dx, dw, db = convnd_backward(dy_layout, cache)
        assert strictly_channels_last(dx)
        np.testing.assert_allclose(y, y0, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dx, dx0, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dw, dw0, rtol=1e-12, atol=1e-12)
        if bias:
            np.testing.assert_allclose(db, db0, rtol=1e-12, atol=1e-12)


def test_pointwise_conv_channels_last_matches_torch_channels_last(tF, torch):
    rng = np.random.default_rng(1)
    x = channels_last(rng.standard_normal((4, 16, 9, 9)).astype(np.float32))
    w = rng.standard_normal((24, 16, 1, 1)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    dy = channels_last(rng.standard_normal((4, 24, 9, 9)).astype(np.float32))
    tx = torch.from_numpy(np.ascontiguousarray(x)).to(memory_format=torch.channels_last).requires_grad_()
    tw, tb = torch.from_numpy(w).requires_grad_(), torch.from_numpy(b).requires_grad_()
    ty = tF.conv2d(tx, tw, tb)
    ty.backward(torch.from_numpy(np.ascontiguousarray(dy)).to(memory_format=torch.channels_last))
    y, cache = convnd(x, w, b)
    dx, dw, db = convnd_backward(dy, cache)
    assert ty.is_contiguous(memory_format=torch.channels_last) and strictly_channels_last(y)
    for ours, theirs, what in ((y, ty, "y"), (dx, tx.grad, "dx"), (dw, tw.grad, "dw"), (db, tb.grad, "db")):
        assert_parity(ours, theirs, what=what)


def test_pointwise_gradcheck_on_channels_last():
    rng = np.random.default_rng(2)
    layer = ck.Conv2d(3, 4, 1, rng=rng)
    x = channels_last(rng.standard_normal((2, 3, 3, 3)))
    errors = ck.gradcheck(layer, x)
    assert set(errors) == {"input", "weight", "bias"} and max(errors.values()) < 1e-7


LAYERS = {
    "conv 1x1": lambda r: ck.Conv2d(4, 6, 1, rng=r),
    "conv 3x3 winograd": lambda r: ck.Conv2d(4, 6, 3, padding=1, algorithm="winograd", rng=r),
    "conv 3x3 im2col": lambda r: ck.Conv2d(4, 6, 3, padding=1, algorithm="im2col", rng=r),
    "conv 3x3 stride 2": lambda r: ck.Conv2d(4, 6, 3, stride=2, padding=1, fit="crop", rng=r),
    "depthwise": lambda r: ck.Conv2d(4, 4, 3, padding=1, groups=4, rng=r),
    "grouped 1x1": lambda r: ck.Conv2d(4, 6, 1, groups=2, rng=r),
    "batch norm": lambda r: ck.BatchNorm2d(4),
    "relu": lambda r: ck.ReLU(),
    "leaky relu": lambda r: ck.LeakyReLU(0.1),
    "max pool": lambda r: ck.MaxPool2d(2),
    "avg pool": lambda r: ck.AvgPool2d(3, stride=2, padding=1, fit="crop"),
    "global avg pool": lambda r: ck.GlobalAvgPool2d(),
    "flatten + linear": lambda r: ck.Sequential(ck.Flatten(), ck.Linear(4 * 8 * 8, 5, rng=r)),
    "residual": lambda r: ck.Residual(ck.Sequential(ck.Conv2d(4, 4, 3, padding=1, rng=r), ck.BatchNorm2d(4))),
}


@pytest.mark.parametrize("name", LAYERS)
def test_every_layer_computes_the_same_on_channels_last_memory(name):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 8, 8))
    results = []
    for layout in (x, channels_last(x)):
        layer = LAYERS[name](np.random.default_rng(4))
        for p in layer.parameters():
            p.data = p.data.astype(np.float64)
        y = layer.forward(layout)
        dx = layer.backward(np.cos(np.arange(y.size)).reshape(y.shape))
        results.append((y, dx, [p.grad.copy() for p in layer.parameters()]))
    (y0, dx0, g0), (y1, dx1, g1) = results
    tol = 1e-9 if "winograd" in name else 1e-12  # Winograd: two different transforms' rounding
    np.testing.assert_allclose(y1, y0, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx1, dx0, rtol=tol, atol=tol)
    for a, b in zip(g1, g0, strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_a_bottleneck_stays_channels_last_from_layer_to_layer():
    """1x1 -> BN -> ReLU -> 3x3 (Winograd) -> BN -> ReLU -> 1x1: no layer returns NCHW memory, so none
    copies its input to another layout (the Winograd layer reads an NHWC view of its input)."""
    rng = np.random.default_rng(5)
    layers = [ck.Conv2d(64, 32, 1, rng=rng), ck.BatchNorm2d(32), ck.ReLU(),
              ck.Conv2d(32, 32, 3, padding=1, algorithm="winograd", rng=rng), ck.BatchNorm2d(32), ck.ReLU(),
              ck.Conv2d(32, 64, 1, rng=rng)]
    h = channels_last(rng.standard_normal((2, 64, 8, 8)).astype(np.float32))
    for layer in layers:
        h = layer.forward(h)
        assert strictly_channels_last(h), repr(layer)
    g = channels_last(np.ones(h.shape, np.float32))
    for layer in reversed(layers):
        g = layer.backward(g)
        assert strictly_channels_last(g), repr(layer)


@pytest.mark.parametrize("shape", [(2, 20, 32, 32), (2, 20, 30, 30), (1, 3, 32, 32)])  # 32x32: 8 at a time
def test_pad_into_copies_an_nchw_batch_into_channels_last_memory_exactly(shape):
    """Winograd's and depthwise's padding copies NCHW input into channels-last scratch; planes 4 KB apart
    (32 x 32 float32) go 8 channels at a time, any other in one copy: the same numbers either way."""
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    N, C, H, W = shape
    buffer = np.full((N, H + 3, W + 1, C), np.nan, np.float32)
    pad_into(buffer, x.transpose(0, 2, 3, 1), 2, 1)
    expected = np.zeros_like(buffer)
    expected[:, 2:2 + H, 1:1 + W] = x.transpose(0, 2, 3, 1)
    assert np.array_equal(buffer, expected)
