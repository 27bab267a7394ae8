"""PReLU, SELU, CELU, GELU, SiLU, Mish, Softplus, Softsign, Hardtanh, Hardsigmoid, Hardswish, LogSoftmax:
PyTorch parity of the layers (forward, dx and PReLU's weight gradient), numeric gradients, an error per
bad argument, and every place a layer must work (summary, config, save/load, torch, ONNX)."""

import numpy as np
import pytest
from everywhere_checks import check_everywhere

import cnnkit as ck

# (cnnkit layer, the torch.nn module with the same arguments)
PAIRS = [
    (lambda: ck.PReLU(), lambda nn: nn.PReLU()),
    (lambda: ck.PReLU(3, init=0.1), lambda nn: nn.PReLU(3, init=0.1)),
    (lambda: ck.SELU(), lambda nn: nn.SELU()),
    (lambda: ck.CELU(), lambda nn: nn.CELU()),
    (lambda: ck.CELU(0.4), lambda nn: nn.CELU(0.4)),
    (lambda: ck.GELU(), lambda nn: nn.GELU()),
    (lambda: ck.GELU("tanh"), lambda nn: nn.GELU("tanh")),
    (lambda: ck.SiLU(), lambda nn: nn.SiLU()),
    (lambda: ck.Mish(), lambda nn: nn.Mish()),
    (lambda: ck.Softplus(), lambda nn: nn.Softplus()),
    (lambda: ck.Softplus(beta=2.0, threshold=3.0), lambda nn: nn.Softplus(beta=2.0, threshold=3.0)),
    (lambda: ck.Softsign(), lambda nn: nn.Softsign()),
    (lambda: ck.Hardtanh(), lambda nn: nn.Hardtanh()),
    (lambda: ck.Hardtanh(-2.0, 0.5), lambda nn: nn.Hardtanh(-2.0, 0.5)),
    (lambda: ck.Hardsigmoid(), lambda nn: nn.Hardsigmoid()),
    (lambda: ck.Hardswish(), lambda nn: nn.Hardswish()),
    (lambda: ck.LogSoftmax(), lambda nn: nn.LogSoftmax(dim=1)),
    (lambda: ck.LogSoftmax(dim=-1), lambda nn: nn.LogSoftmax(dim=-1)),
]
IDS = ["prelu", "prelu3", "selu", "celu", "celu0.4", "gelu", "gelu_tanh", "silu", "mish", "softplus",
       "softplus2", "softsign", "hardtanh", "hardtanh2", "hardsigmoid", "hardswish", "logsoftmax",
       "logsoftmax-1"]


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-7)])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5, 5), (3, 3, 7)])
@pytest.mark.parametrize("make, make_torch", PAIRS, ids=IDS)
def test_parity_with_torch_nn(make, make_torch, shape, dtype, tol, torch):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    x.flat[:6] = [0.0, 3.0, -3.0, 6.0, 1.0, -1.0]  # the kinks, where the gradient is a convention
    dy = rng.standard_normal(shape).astype(dtype)
    layer = make().astype(dtype)
    y = layer.forward(x)
    dx = layer.backward(dy)
    module = make_torch(torch.nn).to(torch.float64 if dtype == np.float64 else torch.float32)
    tx = torch.tensor(x, requires_grad=True)
    ty = module(tx)
    ty.backward(torch.tensor(dy))
    assert y.dtype == dx.dtype == dtype
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol)
    if isinstance(layer, ck.PReLU):
        np.testing.assert_allclose(layer.weight.grad, module.weight.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("make", [p[0] for p in PAIRS], ids=IDS)
def test_numeric_gradients(make):
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 3)) * 4
    x = np.where(np.abs(np.abs(x) - 3) < 0.05, x + 0.1, x)  # no kink within the step
    x = np.where(np.abs(x) < 0.05, x + 0.1, x)
    errors = ck.gradcheck(make(), x)
    assert max(errors.values()) < 1e-6, errors


def test_prelu_accumulates_its_gradient_and_shares_one_slope():
    layer = ck.PReLU()
    x = np.array([[-1.0, -2.0], [3.0, -4.0]])
    layer.forward(x)
    layer.backward(np.ones_like(x))
    layer.forward(x)
    layer.backward(np.ones_like(x))
    assert layer.weight.grad.tolist() == [-14.0]  # twice the sum of the negative inputs


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: ck.PReLU(0), ValueError, r"PReLU: Received num_parameters=0"),
    (lambda: ck.PReLU(init="a"), TypeError, r"PReLU: Received init='a'; expected a real number"),
    (lambda: ck.PReLU(init=np.nan), ValueError, r"PReLU: Received init=nan; expected a finite number"),
    (lambda: ck.CELU(0), ValueError, r"CELU: Received alpha=0; expected a nonzero number"),
    (lambda: ck.CELU("1"), TypeError, r"CELU: Received alpha='1'"),
    (lambda: ck.GELU("erf"), ValueError,
     r"GELU: Received approximate='erf'; expected 'none' \(exact\) or 'tanh'"),
    (lambda: ck.Softplus(beta=0), ValueError, r"Softplus: Received beta=0; expected a nonzero number"),
    (lambda: ck.Softplus(threshold=np.inf), ValueError, r"Softplus: Received threshold=inf"),
    (lambda: ck.Hardtanh(1.0, -1.0), ValueError,
     r"Hardtanh: Received min_val=1.0, max_val=-1.0; expected min_val <= max_val"),
    (lambda: ck.Hardtanh(max_val=None), TypeError, r"Hardtanh: Received max_val=None"),
    (lambda: ck.LogSoftmax(dim=1.0), TypeError, r"LogSoftmax: Received dim=1.0; expected an int"),
])
def test_bad_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


@pytest.mark.parametrize("layer, x, error, pattern", [
    (ck.PReLU(3), np.zeros((2, 4, 5)), ck.ShapeError,
     r"PReLU\(num_parameters=3\): expected 3 channels on axis 1 \(one slope each\), received shape "
     r"\(2, 4, 5\)"),
    (ck.PReLU(3), np.zeros(3), ck.ShapeError, r"expected 3 channels on axis 1"),
    (ck.GELU(), np.zeros((2, 3), np.int64), TypeError, r"GELU\(\): expected a floating-point array"),
    (ck.LogSoftmax(dim=2), np.zeros((2, 3)), ck.ShapeError, r"LogSoftmax\(dim=2\): received shape \(2, 3\)"),
])
def test_bad_input(layer, x, error, pattern):
    with pytest.raises(error, match=pattern):
        layer.forward(x)


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match=r"Mish\(\): backward was called before forward"):
        ck.Mish().backward(np.zeros(3))
    with pytest.raises(RuntimeError, match=r"PReLU\(\): backward was called before forward"):
        ck.PReLU().backward(np.zeros(3))


@pytest.mark.parametrize("make", [p[0] for p in PAIRS], ids=IDS)
def test_works_everywhere(make, tmp_path):
    """summary, from_config, save/load, to_torch/from_torch and ONNX (run in onnxruntime)."""
    check_everywhere(make(), (2, 3, 6, 6), tmp_path)


@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize("layer", [ck.GELU(), ck.GELU("tanh"), ck.Mish()], ids=repr)
def test_onnx_with_and_without_the_newer_operators(layer, opset, tmp_path):
    pytest.importorskip("onnxruntime")
    from cnnkit.interop.onnx import export, run

    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32) * 3
    model = ck.Sequential(layer)
    export(model, tmp_path / "m.onnx", (3, 4, 4), opset=opset)
    np.testing.assert_allclose(run(tmp_path / "m.onnx", x), model.forward(x), rtol=1e-5, atol=1e-6)


def test_mixes_no_examples():
    assert not any(make().mixes_examples for make, _ in PAIRS)
