"""LocallyConnected2d: against a naive loop and PyTorch (unfold + a per-position contraction), numeric
gradients, the shared-filter case, the AlexNet parameter count, and errors."""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.geometry import conv_geometry
from conftest import assert_parity


def _naive(x, w, b, stride, pads, dy):
    """Forward and every gradient with explicit loops over batch, filters and output positions."""
    N, C, H, W = x.shape
    K, Ho, Wo, _, Fh, Fw = w.shape
    (ph0, ph1), (pw0, pw1) = pads
    sh, sw = stride
    xp = np.pad(x, ((0, 0), (0, 0), (ph0, ph1), (pw0, pw1)))
    y = np.zeros((N, K, Ho, Wo))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for n in range(N):
        for k in range(K):
            for i in range(Ho):
                for j in range(Wo):
                    patch = (n, slice(None), slice(i * sh, i * sh + Fh), slice(j * sw, j * sw + Fw))
                    y[n, k, i, j] = np.sum(xp[patch] * w[k, i, j]) + (0 if b is None else b[k, i, j])
                    dw[k, i, j] += dy[n, k, i, j] * xp[patch]
                    dxp[patch] += dy[n, k, i, j] * w[k, i, j]
    dx = dxp[:, :, ph0:ph0 + H, pw0:pw0 + W]
    return y, dx, dw, dy.sum(axis=0)


# (C, K, kernel_size, stride, padding, input size, fit, bias): stride, asymmetric padding, both fits, 1x1
CONFIGS = [
    (3, 4, 3, 1, 0, (6, 5), "error", True),
    (2, 3, 3, 2, 1, (7, 7), "error", True),
    (1, 2, (2, 3), (1, 2), ((0, 1), (1, 1)), (5, 7), "error", False),
    (2, 2, 3, 2, 0, (8, 6), "crop", True),
    (2, 2, 3, 2, 0, (8, 6), "pad", True),
    (4, 1, 1, 1, 0, (3, 4), "error", True),
    (3, 5, 1, 1, 0, (3, 4), "error", True),
]
ARGS = "C, K, kernel_size, stride, padding, size, fit, bias"


@pytest.mark.parametrize(ARGS, CONFIGS)
def test_matches_naive_loop(C, K, kernel_size, stride, padding, size, fit, bias):
    rng = np.random.default_rng(0)
    layer = ck.LocallyConnected2d(C, K, kernel_size, stride, padding, bias, input_size=size, fit=fit, rng=rng)
    layer.astype(np.float64)
    x = rng.standard_normal((2, C, *size))
    y = layer(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    # fit="pad" zero-pads the far side: the naive loop sees it as extra padding
    _, pads = conv_geometry(size, layer.kernel_size, layer.stride, layer.padding, (1, 1), fit)
    b = layer.bias.data if bias else None
    y_ref, dx_ref, dw_ref, db_ref = _naive(x, layer.weight.data, b, layer.stride, pads, dy)
    assert layer.output_shape(x.shape) == y.shape
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, dw_ref, rtol=1e-12, atol=1e-12)
    if bias:
        np.testing.assert_allclose(layer.bias.grad, db_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make, shape", [
    (lambda: ck.LocallyConnected2d(2, 3, 3, input_size=(5, 4)), (2, 2, 5, 4)),
    (lambda: ck.LocallyConnected2d(2, 2, 3, 2, 1, input_size=(5, 6), fit="crop"), (2, 2, 5, 6)),
    (lambda: ck.LocallyConnected2d(1, 2, (2, 3), (2, 1), padding="valid", bias=False, input_size=(6, 4)),
     (1, 1, 6, 4)),
    (lambda: ck.LocallyConnected2d(2, 2, 3, stride=2, input_size=(6, 6), fit="pad"), (1, 2, 6, 6)),
    (lambda: ck.LocallyConnected2d(2, 2, 3, padding="same", input_size=(4, 3)), (2, 2, 4, 3)),
])
def test_numeric_gradients(make, shape):
    errors = ck.gradcheck(make(), np.random.default_rng(1).standard_normal(shape))
    assert set(errors) >= {"input", "weight"}
    assert max(errors.values()) < 1e-6, errors


def test_with_one_shared_filter_it_is_a_convolution():
    """Tie every position's filter and bias to one Conv2d's: the outputs and input gradients agree."""
    rng = np.random.default_rng(2)
    conv = ck.Conv2d(3, 4, 3, stride=2, padding=1, rng=rng)
    local = ck.LocallyConnected2d(3, 4, 3, stride=2, padding=1, input_size=(9, 9))
    local.weight.data[...] = conv.weight.data[:, None, None]  # (K, 1, 1, C, F, F) broadcast to every position
    local.bias.data[...] = conv.bias.data[:, None, None]
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    y = local(x)
    np.testing.assert_allclose(y, conv(x), rtol=1e-5, atol=1e-6)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_allclose(local.backward(dy), conv.backward(dy), rtol=1e-5, atol=1e-6)
    # the conv's shared gradient is the sum of the per-position ones
    np.testing.assert_allclose(local.weight.grad.sum(axis=(1, 2)), conv.weight.grad, rtol=1e-4, atol=1e-5)
    assert y.dtype == np.float32


def test_alexnet_first_layer_without_sharing():
    """55*55*96 neurons, each with 11*11*3 weights and a bias: 105,705,600 parameters (34,944 with sharing).

    The real layer, built as a user would build it (0.4 GB of weights and as much for the gradients:
    the notes' point about why parameter sharing matters, made tangible).
    """
    layer = ck.LocallyConnected2d(3, 96, 11, stride=4, input_size=(227, 227), rng=np.random.default_rng(0))
    assert layer.weight.shape == (96, 55, 55, 3, 11, 11) and layer.bias.shape == (96, 55, 55)
    assert layer.num_parameters() == 105_705_600 == 55 * 55 * 96 * (11 * 11 * 3) + 290_400
    assert layer.weight.data.nbytes == 105_415_200 * 4
    assert layer.output_shape((1, 3, 227, 227)) == (1, 96, 55, 55)
    assert ck.Conv2d(3, 96, 11, stride=4).num_parameters() == 34_944


def test_small_parameter_count_and_init():
    layer = ck.LocallyConnected2d(2, 3, 3, stride=2, input_size=(7, 7), rng=np.random.default_rng(0))
    assert layer.num_parameters() == 3 * 3 * 3 * (2 * 3 * 3) + 3 * 3 * 3
    bound = 1 / np.sqrt(2 * 3 * 3)  # Conv2d's default: fan_in = C * F * F
    assert np.abs(layer.weight.data).max() <= bound and layer.weight.data.dtype == np.float32


def test_vectorized_over_positions(monkeypatch):
    """One batched matrix multiply for all output positions (no Python loop over pixels)."""
    calls = []
    matmul = np.matmul

    def counting(*args, **kwargs):
        calls.append(args[0].shape[0])
        return matmul(*args, **kwargs)

    monkeypatch.setattr(np, "matmul", counting)
    layer = ck.LocallyConnected2d(2, 3, 3, input_size=(20, 20))
    layer(np.ones((4, 2, 20, 20), np.float32))
    layer.backward(np.ones((4, 3, 18, 18), np.float32))
    assert calls == [18 * 18] * 3  # forward y, backward dW and dx: each batched over the 324 positions


def test_float32_stays_float32_and_any_memory_order():
    rng = np.random.default_rng(3)
    layer = ck.LocallyConnected2d(3, 2, 3, padding=1, input_size=(5, 5), rng=rng)
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    nhwc_view = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    y = layer(x)
    assert y.dtype == layer.backward(np.ones_like(y)).dtype == np.float32
    np.testing.assert_allclose(layer(nhwc_view), y, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("x, error, pattern", [
    (np.zeros((3, 6, 6), np.float32), ck.ShapeError, r"LocallyConnected2d\(3->2, .*\): expected a 4-D input"),
    (np.zeros((1, 2, 6, 6), np.float32), ck.ShapeError, r"expected 3 input channels"),
    (np.zeros((1, 3, 8, 6), np.float32), ck.ShapeError,
     r"input_size \(6, 6\), received shape \(1, 3, 8, 6\); a locally connected layer has one filter per "
     r"output position"),
    (np.zeros((1, 3, 6, 6), np.int64), TypeError, r"floating-point"),
])
def test_bad_input_gets_a_clear_error(x, error, pattern):
    layer = ck.LocallyConnected2d(3, 2, 3, input_size=(6, 6))
    with pytest.raises(error, match=pattern):
        layer(x)


def test_output_shape_checks_like_forward():
    layer = ck.LocallyConnected2d(3, 2, 3, input_size=(6, 6))
    with pytest.raises(ck.ShapeError, match=r"input_size \(6, 6\), received shape \(1, 3, 7, 6\)"):
        layer.output_shape((1, 3, 7, 6))


def test_windows_that_do_not_fit_fail_at_construction():
    with pytest.raises(ck.ShapeError, match=r"LocallyConnected2d\(3->2, .*\): \(H - F \+ 2P\)/S \+ 1 = "
                                            r"\(10 - 3 \+ 0\)/2 \+ 1 = 4.5 is not an integer"):
        ck.LocallyConnected2d(3, 2, 3, stride=2, input_size=(10, 10))
    with pytest.raises(ck.ShapeError, match=r"kernel \(F=5\) is larger than the padded input"):
        ck.LocallyConnected2d(3, 2, 5, input_size=(3, 8))
    cropped = ck.LocallyConnected2d(3, 2, 3, stride=2, input_size=(10, 10), fit="crop")
    assert cropped.weight.shape[1:3] == (4, 4)


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(in_channels=0, out_channels=2, kernel_size=3, input_size=(5, 5)), ValueError,
     r"LocallyConnected2d: Received in_channels=0"),
    (dict(in_channels=1, out_channels=2, kernel_size=0, input_size=(5, 5)), ValueError,
     r"Received kernel_size=0"),
    (dict(in_channels=1, out_channels=2, kernel_size=3, input_size=(5, 0)), ValueError,
     r"Received input_size=\(5, 0\)"),
    (dict(in_channels=1, out_channels=2, kernel_size=3, input_size=5.5), TypeError,
     r"Received input_size=5.5"),
    (dict(in_channels=1, out_channels=2, kernel_size=3, stride=2, padding="same", input_size=(5, 5)),
     ValueError, r"padding='same' is only defined for stride=1"),
    (dict(in_channels=1, out_channels=2, kernel_size=3, input_size=(5, 5), fit="floor"), ValueError,
     r"Invalid fit 'floor'"),
    (dict(in_channels=1, out_channels=2, kernel_size=3), TypeError, r"input_size"),
])
def test_bad_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        ck.LocallyConnected2d(**kwargs)


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="backward was called before forward"):
        ck.LocallyConnected2d(1, 1, 3, input_size=(3, 3)).backward(np.zeros((1, 1, 1, 1), np.float32))


def test_kernel_rejects_a_weight_for_another_input_size():
    x, w = np.zeros((1, 2, 5, 5), np.float32), np.zeros((1, 2, 2, 2, 3, 3), np.float32)
    with pytest.raises(ck.ShapeError, match=r"gives outputs of size \(3, 3\) but the weight has one filter "
                                            r"per position of \(2, 2\)"):
        ck.functional.locally_connected2d(x, w)


def test_config_round_trip_and_analysis_attributes():
    layer = ck.LocallyConnected2d(2, 4, (3, 2), stride=(2, 1), padding=1, bias=False, input_size=(7, 5))
    rebuilt = ck.layers.from_config(layer.config())
    assert rebuilt.config() == layer.config()
    assert rebuilt.weight.shape == layer.weight.shape == (4, 4, 6, 2, 3, 2)
    assert repr(rebuilt) == ("LocallyConnected2d(2->4, kernel_size=(3, 2), stride=(2, 1), padding=1, "
                             "input_size=(7, 5), bias=False)")
    assert layer.kernel_size == (3, 2) and layer.padding == ((1, 1), (1, 1)) and layer.dilation == (1, 1)
    assert layer.fit == "error" and layer.in_channels == 2 and layer.out_channels == 4


@pytest.mark.parametrize(ARGS, CONFIGS)
def test_parity_with_pytorch(C, K, kernel_size, stride, padding, size, fit, bias, tF, torch):
    """PyTorch has no locally connected layer, but it is one line of autograd: unfold the padded input into
    its windows (N, C*Fh*Fw, L) and contract each position l with its own filter. Forward and every gradient
    in float32, as for the other layers."""
    rng = np.random.default_rng(4)
    layer = ck.LocallyConnected2d(C, K, kernel_size, stride, padding, bias, input_size=size, fit=fit, rng=rng)
    x = rng.standard_normal((2, C, *size)).astype(np.float32)
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)

    _, pads = conv_geometry(size, layer.kernel_size, layer.stride, layer.padding, (1, 1), fit)
    (ph0, ph1), (pw0, pw1) = pads
    _, Ho, Wo = layer.weight.shape[:3]
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.weight.data, requires_grad=True)  # (K, Ho, Wo, C, Fh, Fw)
    tb = torch.tensor(layer.bias.data, requires_grad=True) if bias else None
    cols = tF.unfold(tF.pad(tx, (pw0, pw1, ph0, ph1)), layer.kernel_size, stride=layer.stride)
    ty = torch.einsum("ncl,klc->nkl", cols, tw.reshape(K, Ho * Wo, -1)).reshape(2, K, Ho, Wo)
    if bias:
        ty = ty + tb
    ty.backward(torch.tensor(dy))
    assert y.dtype == dx.dtype == layer.weight.grad.dtype == np.float32
    assert_parity(y, ty, what="forward")
    assert_parity(dx, tx.grad, what="dx")
    assert_parity(layer.weight.grad, tw.grad, what="dweight")
    if bias:
        assert_parity(layer.bias.grad, tb.grad, what="dbias")
