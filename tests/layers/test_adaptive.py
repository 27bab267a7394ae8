"""Adaptive pooling layers: PyTorch parity over its OpInfo samples (through the layers, unbatched inputs
included), numeric gradients, errors, and every place a layer must work (summary, save/load, torch, ONNX)."""

import numpy as np
import pytest
from everywhere_checks import check_everywhere
from opinfo_samples import samples

import cnnkit as ck
from cnnkit.analysis import receptive_field, summary
from cnnkit.errors import ShapeError

LAYERS = [(f"Adaptive{kind}Pool{nd}d", kind, nd) for kind in ("Avg", "Max") for nd in (1, 2, 3)]


@pytest.mark.parametrize("name, kind, nd", LAYERS, ids=[layer[0] for layer in LAYERS])
def test_layers_match_torch_modules_over_opinfo_samples(name, kind, nd):
    torch = pytest.importorskip("torch")
    for tx, args, _ in samples(f"nn.functional.adaptive_{kind.lower()}_pool{nd}d"):
        size = args[0]
        module, layer = getattr(torch.nn, name)(size), getattr(ck, name)(size)
        ty = module(tx)
        x = tx.detach().numpy()
        y = layer(x)  # (C, *S) samples run unbatched: the result has no batch axis either
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=0)
        dy = np.random.default_rng(0).standard_normal(y.shape)
        (dx,) = torch.autograd.grad(ty, tx, torch.from_numpy(dy))
        np.testing.assert_allclose(layer.backward(dy), dx.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("layer, shape", [
    (ck.AdaptiveAvgPool2d((3, 2)), (2, 2, 5, 7)), (ck.AdaptiveMaxPool2d((4, None)), (1, 2, 6, 3)),
    (ck.AdaptiveAvgPool1d(4), (2, 3, 9)), (ck.AdaptiveMaxPool3d((2, 3, 2)), (1, 1, 3, 5, 4)),
    (ck.AdaptiveAvgPool3d(2), (3, 2, 3, 3, 3)),
])
def test_numeric_gradients(layer, shape):
    x = np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape) / 5.0  # distinct values: no ties
    assert max(ck.gradcheck(layer, x).values()) < 1e-7


def test_return_indices_as_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 5))
    y, indices = ck.AdaptiveMaxPool2d(3, return_indices=True)(x)
    ty, tindices = torch.nn.AdaptiveMaxPool2d(3, return_indices=True)(torch.from_numpy(x))
    assert (indices == tindices.numpy()).all() and np.array_equal(y, ty.numpy())


def test_output_shape_summary_and_receptive_field():
    net = ck.Sequential(ck.Conv2d(3, 4, 3, padding=1), ck.MaxPool2d(2), ck.AdaptiveAvgPool2d(3))
    assert net.output_shape((1, 3, 12, 12)) == (1, 4, 3, 3)
    assert net.output_shape((1, 3, 40, 30)) == (1, 4, 3, 3)
    rows = summary(net, (3, 12, 12)).rows
    # 6 -> 3 is an ordinary 2x2 pool: receptive field 4 + (2 - 1) * 2 = 6, jump 4
    last = rows[-1]
    assert (last.output_shape, last.receptive_field, last.jump, last.macs) == ((4, 3, 3), 6, 4, 0)
    # windows [0, 3), [2, 5), [4, 7): width 3, step 2
    field = receptive_field(ck.Sequential(ck.AdaptiveMaxPool1d(3)), (1, 7))["0"]
    assert field.size == (3,) and field.jump == (2,)
    up = receptive_field(ck.Sequential(ck.AdaptiveAvgPool1d(8)), (1, 4))["0"]  # upsampling: 1 input each
    assert up.size == (1,) and up.jump == (0.5,)


@pytest.mark.parametrize("layer, shape", [(ck.AdaptiveAvgPool2d((6, 6)), (2, 4, 13, 9)),
                                          (ck.AdaptiveAvgPool2d((5, None)), (1, 2, 4, 6)),
                                          (ck.AdaptiveMaxPool2d(3), (2, 3, 8, 7)),
                                          (ck.AdaptiveAvgPool1d(3), (2, 3, 7)),
                                          (ck.AdaptiveMaxPool1d(4), (1, 2, 9)),
                                          (ck.AdaptiveAvgPool3d((2, 1, 3)), (1, 2, 4, 3, 5)),
                                          (ck.AdaptiveMaxPool3d(2), (1, 2, 3, 5, 4))])
def test_works_everywhere(layer, shape, tmp_path):
    check_everywhere(layer, shape, tmp_path)


def test_adaptive_average_pool_to_one_is_the_global_pool():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4))
    np.testing.assert_allclose(ck.AdaptiveAvgPool2d(1)(x), ck.GlobalAvgPool2d()(x), rtol=1e-14)
    np.testing.assert_array_equal(ck.AdaptiveMaxPool2d(1)(x), ck.GlobalMaxPool2d()(x))


@pytest.mark.parametrize("make, error, match", [
    (lambda: ck.AdaptiveAvgPool2d(0), ValueError,
     r"AdaptiveAvgPool2d: Received output_size=0; expected an int >= 1, None \(keep the input's size\)"),
    (lambda: ck.AdaptiveMaxPool1d((2, 2)), ValueError,
     r"AdaptiveMaxPool1d: Received output_size=\(2, 2\); expected .* a sequence of 1 of those"),
    (lambda: ck.AdaptiveAvgPool3d("7"), TypeError, r"AdaptiveAvgPool3d: Received output_size='7'"),
    (lambda: ck.AdaptiveMaxPool2d(2, return_indices=1), TypeError,
     r"AdaptiveMaxPool2d: Received return_indices=1; expected a bool"),
])
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_inputs():
    layer = ck.AdaptiveAvgPool2d(2)
    with pytest.raises(ShapeError, match=r"AdaptiveAvgPool2d\(output_size=2\): expected a 4-D input "
                                         r"\(N, C, H, W\), received shape \(2, 3\) \(or one example without "
                                         r"the batch axis, 3-D\)"):
        layer(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"expected a 4-D input \(N, C, H, W\), received shape \(5,\)"):
        layer.output_shape((5,))
    with pytest.raises(ShapeError, match=r"every spatial axis needs at least one position, received shape "
                                         r"\(1, 2, 0, 4\)"):
        layer.output_shape((1, 2, 0, 4))
    with pytest.raises(TypeError, match=r"expected a floating-point array"):
        layer(np.ones((1, 1, 2, 2), np.int64))
    with pytest.raises(RuntimeError, match=r"backward was called before forward"):
        layer.backward(np.ones((1, 1, 2, 2)))


def test_build_token():
    net = ck.build("CONV-8 -> RELU -> ADAPTIVEPOOL3 -> FC", (3, 17, 17), 5)
    assert isinstance(net["adaptivepool1"], ck.AdaptiveAvgPool2d)
    assert net.output_shape((2, 3, 40, 40)) == (2, 5)  # any input size: the pool fixes the FC's input
    net = ck.build("CONV -> ADAPTIVEMAXPOOL -> FC", (3, 8, 8), 2)
    assert net["adaptivemaxpool1"].output_size == (1, 1)
