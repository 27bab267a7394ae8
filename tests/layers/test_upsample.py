"""Upsample, UpsamplingNearest2d, UpsamplingBilinear2d: PyTorch parity of the layers (forward and dx), numeric
gradients, the receptive field, an error per bad argument, and every place a layer must work (ONNX over a
sweep of modes, sizes and factors, checked in onnxruntime)."""

import numpy as np
import pytest
from everywhere_checks import check_everywhere

import cnnkit as ck

CASES = [  # (layer arguments, input shape)
    (dict(scale_factor=2), (2, 3, 4, 5)),
    (dict(scale_factor=3, mode="nearest-exact"), (2, 3, 4, 5)),
    (dict(size=(7, 9)), (2, 3, 4, 5)),
    (dict(scale_factor=1.5), (1, 2, 5, 4)),
    (dict(size=(3, 2), mode="nearest-exact"), (1, 2, 5, 4)),
    (dict(scale_factor=2, mode="bilinear"), (2, 3, 4, 5)),
    (dict(scale_factor=2, mode="bilinear", align_corners=True), (2, 3, 4, 5)),
    (dict(size=(7, 3), mode="bilinear"), (2, 3, 4, 5)),
    (dict(size=(1, 6), mode="bilinear"), (2, 3, 4, 5)),
    (dict(scale_factor=(1.7, 0.6), mode="bilinear"), (1, 2, 5, 5)),
    (dict(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True), (1, 2, 5, 5)),
    (dict(scale_factor=2.5, mode="linear"), (2, 3, 6)),
    (dict(scale_factor=2, mode="trilinear", align_corners=True), (1, 2, 3, 4, 2)),
    (dict(scale_factor=2), (1, 2, 3, 4, 2)),
    (dict(scale_factor=4), (2, 3, 5)),
]


def _id(value):
    return "-".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value)


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("kwargs, shape", CASES, ids=_id)
def test_parity_with_torch_nn(kwargs, shape, dtype, tol, torch):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(dtype)
    layer = ck.Upsample(**kwargs)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.Upsample(**kwargs)(tx)
    ty.backward(torch.tensor(dy))
    assert y.dtype == dx.dtype == dtype and y.shape == layer.output_shape(shape)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("make, make_torch", [
    (lambda: ck.UpsamplingNearest2d(scale_factor=2), lambda nn: nn.UpsamplingNearest2d(scale_factor=2)),
    (lambda: ck.UpsamplingBilinear2d(size=(5, 9)), lambda nn: nn.UpsamplingBilinear2d(size=(5, 9))),
])
def test_fixed_mode_layers_match_torch(make, make_torch, torch):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    layer, module = make(), make_torch(torch.nn)
    tx = torch.tensor(x, requires_grad=True)
    ty = module(tx)
    ty.backward(torch.ones_like(ty))
    np.testing.assert_allclose(layer.forward(x), ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.backward(np.ones(ty.shape)), tx.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("kwargs, shape", CASES[:11], ids=_id)
def test_numeric_gradients(kwargs, shape):
    errors = ck.gradcheck(ck.Upsample(**kwargs), np.random.default_rng(1).standard_normal(shape))
    assert errors["input"] < 1e-7, errors


@pytest.mark.parametrize("kwargs, shape", CASES, ids=_id)
def test_works_everywhere(kwargs, shape, tmp_path):
    """summary, config, save/load, to_torch/from_torch, and ONNX in onnxruntime: Resize where its rule is
    PyTorch's, Gathers of cnnkit's indices for the other nearest resamplings."""
    check_everywhere(ck.Upsample(**kwargs), shape, tmp_path)


@pytest.mark.parametrize("make", [lambda: ck.UpsamplingNearest2d(size=6), lambda: ck.UpsamplingBilinear2d(
    scale_factor=1.5)])
def test_fixed_mode_layers_work_everywhere(make, tmp_path):
    check_everywhere(make(), (1, 2, 4, 4), tmp_path)


def test_receptive_field_and_summary():
    """Nearest x2 puts units half an input pixel apart: a 3x3 convolution after it sees 1 + 2 * 1/2 = 2 input
    pixels; PixelUnshuffle(2) then gathers 2x2 blocks of those."""
    net = ck.Sequential(ck.Upsample(scale_factor=2), ck.Conv2d(1, 1, 3, padding=1), ck.PixelUnshuffle(2))
    assert ck.summary(net, (1, 8, 8)).rows[-1].output_shape == (4, 8, 8)
    fields = ck.analysis.receptive_field(net, (1, 8, 8))
    assert fields["0"].size == (1, 1) and fields["0"].jump == (0.5, 0.5)
    assert fields["1"].size == (2, 2) and fields["2"].size == (2.5, 2.5) and fields["2"].jump == (1, 1)
    bilinear = ck.analysis.receptive_field(ck.Upsample(scale_factor=4, mode="bilinear"), (1, 8, 8))
    assert bilinear[""].size == (2, 2) and bilinear[""].jump == (0.25, 0.25)


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: ck.Upsample(), ValueError, r"Upsample: Received size=None, scale_factor=None; give exactly one"),
    (lambda: ck.Upsample(4, 2), ValueError, r"give exactly one of them"),
    (lambda: ck.Upsample(scale_factor=2, mode="bicubic"), ValueError,
     r"Upsample: Received mode='bicubic'; expected one of 'nearest', 'nearest-exact', 'linear', 'bilinear', "
     r"'trilinear'"),
    (lambda: ck.Upsample(scale_factor=2, align_corners=False), ValueError,
     r"Upsample: Received align_corners=False with mode='nearest'; align_corners applies to the linear"),
    (lambda: ck.Upsample(scale_factor=2, mode="bilinear", align_corners="yes"), TypeError,
     r"Upsample: Received align_corners='yes'; expected True, False or None"),
    (lambda: ck.Upsample(size=(4, 0)), ValueError, r"Upsample: Received size=\(4, 0\); expected positive"),
    (lambda: ck.Upsample(size=4.0), TypeError, r"Upsample: Received size=4.0; expected positive ints"),
    (lambda: ck.Upsample(scale_factor=np.inf), ValueError, r"Upsample: Received scale_factor=inf"),
    (lambda: ck.UpsamplingNearest2d(), ValueError, r"UpsamplingNearest2d: Received size=None"),
])
def test_bad_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


@pytest.mark.parametrize("layer, shape, pattern", [
    (ck.Upsample(scale_factor=2, mode="bilinear"), (1, 2, 4),
     r"mode='bilinear' takes a 4-D input \(N, C, \*S\), received shape \(1, 2, 4\)"),
    (ck.Upsample(size=(3, 3)), (1, 2, 4),
     r"Received size=\(3, 3\) for 1 spatial axes; expected one value or 1"),
    (ck.Upsample(scale_factor=0.2), (1, 2, 4), r"the output of shape \(1, 2, 0\) would be empty"),
    (ck.UpsamplingBilinear2d(size=3), (1, 2, 4), r"expected a 4-D input \(N, C, H, W\), received shape"),
])
def test_bad_input(layer, shape, pattern):
    with pytest.raises(ck.ShapeError, match=pattern):
        layer.forward(np.zeros(shape))
