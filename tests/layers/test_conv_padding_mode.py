"""Convolutions with padding_mode="reflect"/"replicate"/"circular" (PyTorch's option): the padding holds a
mirror image, the edge or the other side instead of zeros. Parity with torch.nn.Conv1d/2d/3d (forward, input
and weight gradients, float64), numeric gradients, errors, and every place a layer must work."""

import itertools

import numpy as np
import pytest
from everywhere_checks import check_everywhere

import cnnkit as ck
from cnnkit.errors import ShapeError

MODES = ["zeros", "reflect", "replicate", "circular"]
CASES = [  # (nd, in, out, kernel, stride, padding, dilation, groups, input spatial)
    (1, 2, 3, 3, 1, 1, 1, 1, (7,)), (1, 4, 2, 5, 2, 2, 1, 2, (9,)), (1, 2, 2, 3, 1, 2, 2, 1, (6,)),
    (2, 2, 3, 3, 1, 1, 1, 1, (5, 6)), (2, 4, 4, (3, 2), (2, 1), (1, 2), 1, 4, (7, 5)),
    (2, 3, 2, 3, 2, "same", 1, 1, (6, 6)), (2, 2, 4, 3, 1, (2, 1), (2, 1), 2, (6, 5)),
    (3, 2, 2, 3, 1, 1, 1, 1, (4, 5, 3)), (3, 2, 3, 2, (1, 2, 1), (1, 0, 1), 1, 1, (3, 4, 4)),
]


@pytest.mark.parametrize("mode, case", list(itertools.product(MODES, CASES)),
                         ids=[f"{m}-{i}" for m, i in itertools.product(MODES, range(len(CASES)))])
def test_matches_torch(mode, case):
    torch = pytest.importorskip("torch")
    nd, c_in, c_out, k, s, p, d, g, spatial = case
    if p == "same" and s != 1:
        s = 1
    layer = getattr(ck, f"Conv{nd}d")(c_in, c_out, k, s, p, d, g, padding_mode=mode, fit="crop",
                                      rng=np.random.default_rng(0)).astype(np.float64)
    module = getattr(torch.nn, f"Conv{nd}d")(c_in, c_out, k, s, p, d, g, padding_mode=mode).double()
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(layer.weight.data))
        module.bias.copy_(torch.from_numpy(layer.bias.data))
    x = np.random.default_rng(1).standard_normal((2, c_in, *spatial))
    tx = torch.tensor(x, requires_grad=True)
    ty = module(tx)
    y = layer(x)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    dy = np.random.default_rng(2).standard_normal(y.shape)
    ty.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(layer.backward(dy), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, module.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, module.bias.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", MODES[1:])
def test_numeric_gradients_and_parameter_only_backward(mode):
    layer = ck.Conv2d(2, 3, 3, stride=2, padding=(1, 2), padding_mode=mode, fit="crop")
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 6))
    assert max(ck.gradcheck(layer, x).values()) < 1e-7
    full, params_only = ck.from_config(layer.config()), ck.from_config(layer.config())
    for net in (full, params_only):
        net.load_state_dict(layer.state_dict())
    y = full(x.astype(np.float32))
    full.backward(np.ones_like(y))
    params_only(x.astype(np.float32))
    params_only.backward_params(np.ones_like(y))
    np.testing.assert_array_equal(full.weight.grad, params_only.weight.grad)


@pytest.mark.parametrize("layer, shape", [
    (ck.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (2, 2, 5, 5)),
    (ck.Conv1d(2, 2, 3, padding=2, padding_mode="circular"), (1, 2, 6)),
    (ck.Conv3d(1, 2, 3, padding=1, padding_mode="replicate"), (1, 1, 3, 4, 3)),
])
def test_works_everywhere(layer, shape, tmp_path):
    check_everywhere(layer, shape, tmp_path)


def test_the_mode_shows_in_repr_and_the_sizes_are_the_zero_padding_sizes():
    layer = ck.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")
    assert "padding_mode='reflect'" in repr(layer)
    assert layer.output_shape((1, 3, 10, 10)) == ck.Conv2d(3, 8, 3, padding=1).output_shape((1, 3, 10, 10))


def test_errors():
    with pytest.raises(ValueError, match=r"Conv2d: Received padding_mode='mirror'; expected one of 'zeros', "
                                         r"'reflect', 'replicate', 'circular'"):
        ck.Conv2d(1, 1, 3, padding_mode="mirror")
    with pytest.raises(ShapeError, match=r"Conv2d\(1->1, .*padding_mode='reflect'\): reflect padding "
                                         r"\(3, 3\) on spatial axis 0 \(size 3\) must be smaller"):
        ck.Conv2d(1, 1, 7, padding=3, padding_mode="reflect")(np.ones((1, 1, 3, 8)))
    with pytest.raises(ShapeError, match=r"is not an integer"):  # the size rule speaks of the user's padding
        ck.Conv2d(1, 1, 3, stride=2, padding=1, padding_mode="circular")(np.ones((1, 1, 6, 6)))
