"""One example without the batch axis, as PyTorch takes it: (C, *S) into a conv/pool/norm layer gives an
unbatched output, backward gives an unbatched dx, and Linear takes a vector. One implementation in Layer
(batched_ndim) serves every such layer; these tests hold each layer family to PyTorch's unbatched modules."""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.errors import ShapeError


def _pairs(torch):
    nn = torch.nn
    rng = np.random.default_rng(0)
    conv2 = ck.Conv2d(3, 4, 3, stride=2, padding=1, fit="crop", rng=rng)
    conv1 = ck.Conv1d(2, 3, 3, padding=1, rng=rng)
    conv3 = ck.Conv3d(2, 2, 2, rng=rng)
    transpose = ck.ConvTranspose2d(3, 2, 3, stride=2, rng=rng)
    linear = ck.Linear(5, 3, rng=rng)

    def copy(module, layer):
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(layer.weight.data.astype(np.float64)))
            module.bias.copy_(torch.from_numpy(layer.bias.data.astype(np.float64)))
        return module

    return [
        (conv2, copy(nn.Conv2d(3, 4, 3, 2, 1).double(), conv2), (3, 7, 7)),
        (conv1, copy(nn.Conv1d(2, 3, 3, padding=1).double(), conv1), (2, 6)),
        (conv3, copy(nn.Conv3d(2, 2, 2).double(), conv3), (2, 3, 3, 3)),
        (transpose, copy(nn.ConvTranspose2d(3, 2, 3, stride=2).double(), transpose), (3, 4, 4)),
        (linear, copy(nn.Linear(5, 3).double(), linear), (5,)),
        (ck.MaxPool2d(2, fit="crop"), nn.MaxPool2d(2), (3, 5, 5)),
        (ck.MaxPool1d(3, stride=2, padding=1, fit="pad"), nn.MaxPool1d(3, 2, 1, ceil_mode=True), (2, 8)),
        (ck.AvgPool2d(3, stride=2, padding=1), nn.AvgPool2d(3, 2, 1), (2, 7, 7)),
        (ck.LPPool2d(2, 2), nn.LPPool2d(2, 2), (2, 4, 4)),
        (ck.GlobalAvgPool2d(), nn.AdaptiveAvgPool2d(1), (3, 4, 5)),
        (ck.GlobalMaxPool2d(), nn.AdaptiveMaxPool2d(1), (3, 4, 5)),
        (ck.AdaptiveAvgPool2d((2, 3)), nn.AdaptiveAvgPool2d((2, 3)), (2, 5, 7)),
        (ck.ReflectionPad2d(1), nn.ReflectionPad2d(1), (2, 3, 3)),
    ]


def test_unbatched_inputs_match_pytorch():
    torch = pytest.importorskip("torch")
    for layer, module, shape in _pairs(torch):
        layer.astype(np.float64)
        tx = torch.tensor(np.random.default_rng(1).standard_normal(shape), requires_grad=True)
        ty = module(tx)
        y = layer(tx.detach().numpy())
        assert y.shape == tuple(ty.shape) == layer.output_shape(shape), layer
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=repr(layer))
        dy = np.random.default_rng(2).standard_normal(y.shape)
        (dx,) = torch.autograd.grad(ty, tx, torch.from_numpy(dy))
        dx_ours = layer.backward(dy)
        np.testing.assert_allclose(dx_ours, dx.numpy(), rtol=1e-10, atol=1e-12, err_msg=repr(layer))


@pytest.mark.parametrize("layer, shape", [(ck.BatchNorm2d(3), (3, 4, 4)),
                                          (ck.Conv2d(2, 3, 3, padding=1), (2, 5, 5)),
                                          (ck.Linear(4, 2), (4,)), (ck.MaxPool2d(2), (3, 4, 4))])
def test_unbatched_is_a_batch_of_one_with_parameter_gradients(layer, shape):
    """Batch norm too (PyTorch refuses (C, H, W) there; here it normalizes the example's own statistics)."""
    layer.astype(np.float64)
    x = np.random.default_rng(0).standard_normal(shape)
    batched = ck.from_config(layer.config()).astype(np.float64)
    batched.load_state_dict(layer.state_dict())
    y, y1 = layer(x), batched(x[None])
    np.testing.assert_array_equal(y, y1[0])
    dy = np.ones_like(y)
    np.testing.assert_array_equal(layer.backward(dy), batched.backward(dy[None])[0])
    for (name, p), q in zip(layer.named_parameters(), batched.parameters(), strict=True):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=name)
    if not isinstance(layer, ck.BatchNorm2d):  # (batch norm's own gradient checks live in test_norm)
        assert max(ck.gradcheck(layer, x).values()) < 1e-7


def test_backward_params_and_containers_take_unbatched_examples():
    net = ck.Sequential(ck.Conv2d(1, 2, 3, padding=1), ck.ReLU(), ck.MaxPool2d(2), ck.Flatten(0),
                        ck.Linear(8, 3))
    x = np.random.default_rng(0).standard_normal((1, 4, 4)).astype(np.float32)
    y = net(x)
    assert y.shape == (3,) and net.output_shape((1, 4, 4)) == (3,)
    assert net.backward(np.ones_like(y)).shape == (1, 4, 4)
    net(x)
    net.backward_params(np.ones_like(y))  # the first layer's parameter-only backward, unbatched too


def test_other_ranks_are_still_refused():
    with pytest.raises(ShapeError, match=r"Conv2d\(1->2, kernel_size=3, stride=1, padding=0\): expected a "
                                         r"4-D input \(N, C, H, W\), received shape \(4, 4\) \(or one "
                                         r"example without the batch axis, 3-D\)"):
        ck.Conv2d(1, 2, 3)(np.ones((4, 4)))
    with pytest.raises(ShapeError, match=r"expected 3 input channels, received shape \(1, 1, 3, 8\) with 1. "
                                         r"\(The 3-D input of shape \(1, 3, 8\) was taken as one example "
                                         r"without the batch axis, a batch of one.\)"):
        ck.Conv2d(3, 2, 3)(np.ones((1, 3, 8)))
    with pytest.raises(ShapeError, match=r"with C=3, received shape \(1, 1, 3, 8\). \(The 3-D input"):
        ck.Conv2d(3, 2, 3).output_shape((1, 3, 8))
    with pytest.raises(ShapeError, match=r"expected input \(N, 4\), received shape \(\)"):
        ck.Linear(4, 2).output_shape(())
    with pytest.raises(ShapeError, match=r"BatchNorm1d\(3, .*\): expected a 2-D \(N, C\) or 3-D \(N, C, L\)"):
        ck.BatchNorm1d(3)(np.ones(3))  # (C,) and (C, L) would be ambiguous with (N, C): not unbatched
