"""PixelShuffle, PixelUnshuffle, ChannelShuffle and Unflatten: PyTorch parity of the layers, numeric
gradients, an error per bad argument, and every place a layer must work."""

import numpy as np
import pytest
from everywhere_checks import check_everywhere

import cnnkit as ck

CASES = [  # (cnnkit layer, the torch.nn module, input shape)
    (lambda: ck.PixelShuffle(2), lambda nn: nn.PixelShuffle(2), (2, 12, 3, 4)),
    (lambda: ck.PixelShuffle(3), lambda nn: nn.PixelShuffle(3), (2, 3, 9, 2, 2)),
    (lambda: ck.PixelUnshuffle(2), lambda nn: nn.PixelUnshuffle(2), (2, 3, 4, 6)),
    (lambda: ck.PixelUnshuffle(3), lambda nn: nn.PixelUnshuffle(3), (1, 2, 2, 6, 3)),
    (lambda: ck.ChannelShuffle(3), lambda nn: nn.ChannelShuffle(3), (2, 6, 4, 5)),
    (lambda: ck.ChannelShuffle(2), lambda nn: nn.ChannelShuffle(2), (2, 8, 5)),
    (lambda: ck.Unflatten(1, (3, 4, 2)), lambda nn: nn.Unflatten(1, (3, 4, 2)), (2, 24)),
    (lambda: ck.Unflatten(-1, (2, -1)), lambda nn: nn.Unflatten(-1, (2, -1)), (2, 3, 8)),
]
IDS = ["shuffle2", "shuffle3-5d", "unshuffle2", "unshuffle3-5d", "channel3", "channel2-3d", "unflatten",
       "unflatten-infer"]


@pytest.mark.parametrize("make, make_torch, shape", CASES, ids=IDS)
def test_parity_with_torch_nn(make, make_torch, shape, torch):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    layer = make()
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    ty = make_torch(torch.nn)(tx)
    ty.backward(torch.tensor(dy))
    assert y.shape == layer.output_shape(shape)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(layer.backward(dy), tx.grad.numpy())


@pytest.mark.parametrize("make, make_torch, shape", CASES, ids=IDS)
def test_numeric_gradients(make, make_torch, shape):
    assert ck.gradcheck(make(), np.random.default_rng(2).standard_normal(shape))["input"] < 1e-9


@pytest.mark.parametrize("make, make_torch, shape", CASES, ids=IDS)
def test_works_everywhere(make, make_torch, shape, tmp_path):
    check_everywhere(make(), shape, tmp_path)


def test_a_sub_pixel_upsampler_trains_like_torch(torch):
    """Conv2d to r^2 C channels, then PixelShuffle(r): ESPCN's upsampler, gradients of the weights too."""
    from cnnkit.interop.torch import to_torch

    net = ck.Sequential(ck.Conv2d(3, 12, 3, padding=1, rng=np.random.default_rng(0)), ck.PixelShuffle(2))
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 5)).astype(np.float32)
    module = to_torch(net)
    y = net.forward(x)
    net.backward(np.ones_like(y))
    ty = module(torch.tensor(x))
    ty.sum().backward()
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net[0].weight.grad, module[0].weight.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: ck.PixelShuffle(0), ValueError, r"PixelShuffle: Received upscale_factor=0"),
    (lambda: ck.PixelUnshuffle(1.5), ValueError, r"PixelUnshuffle: Received downscale_factor=1.5; expected"),
    (lambda: ck.ChannelShuffle(-2), ValueError, r"ChannelShuffle: Received groups=-2"),
    (lambda: ck.Unflatten("1", (2, 3)), TypeError, r"Unflatten: Received dim='1'; expected an int"),
    (lambda: ck.Unflatten(1, 6), TypeError,
     r"Unflatten: Received unflattened_size=6; expected a non-empty tuple"),
    (lambda: ck.Unflatten(1, (-1, -1)), ValueError, r"expected at most one -1 \(the size to infer\)"),
    (lambda: ck.Unflatten(1, (2, 0)), ValueError, r"Unflatten: Received unflattened_size=0"),
])
def test_bad_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


@pytest.mark.parametrize("layer, shape, pattern", [
    (ck.PixelShuffle(2), (1, 6, 3, 3), r"expected an input \(\*, C \* 4, H, W\) whose channels divide by "
                                       r"upscale_factor\^2 = 4, received shape \(1, 6, 3, 3\)"),
    (ck.PixelShuffle(2), (4, 3), r"received shape \(4, 3\)"),
    (ck.PixelUnshuffle(2), (1, 1, 3, 4), r"with H and W divisible by downscale_factor = 2"),
    (ck.ChannelShuffle(4), (1, 6, 3), r"expected an input \(N, C, \*S\) with C divisible by groups = 4"),
    (ck.ChannelShuffle(2), (1, 6), r"received shape \(1, 6\)"),
    (ck.Unflatten(2, (2, 3)), (2, 6), r"received shape \(2, 6\) with 2 axes, which has no axis dim=2"),
    (ck.Unflatten(1, (4, 2)), (2, 6),
     r"axis 1 of the input \(2, 6\) has size 6, which \(4, 2\) does not split"),
    (ck.Unflatten(1, (4, -1)), (2, 6), r"has size 6, which \(4, -1\) does not split \(product 4\)"),
])
def test_bad_input(layer, shape, pattern):
    with pytest.raises(ck.ShapeError, match=pattern):
        layer.forward(np.zeros(shape))


def test_unflatten_of_the_batch_axis_cannot_be_exported(tmp_path):
    pytest.importorskip("onnx")
    from cnnkit.interop.onnx import export

    with pytest.raises(TypeError, match=r"splits the batch axis, which ONNX export keeps dynamic"):
        export(ck.Sequential(ck.Unflatten(0, (1, -1))), tmp_path / "m.onnx", (4,))
