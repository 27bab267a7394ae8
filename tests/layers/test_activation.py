"""Activations: numeric gradients, PyTorch parity (forward and dx), worked values, stability, errors."""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.functional import activation as F
from conftest import assert_parity

# (cnnkit layer, the matching torch function of torch.nn.functional `tF` and a tensor `t`)
PAIRS = [
    (lambda: ck.ReLU(), lambda tF, t: tF.relu(t)),
    (lambda: ck.ReLU6(), lambda tF, t: tF.relu6(t)),
    (lambda: ck.LeakyReLU(), lambda tF, t: tF.leaky_relu(t, 0.01)),
    (lambda: ck.LeakyReLU(0.2), lambda tF, t: tF.leaky_relu(t, 0.2)),
    (lambda: ck.ELU(), lambda tF, t: tF.elu(t)),
    (lambda: ck.ELU(alpha=0.5), lambda tF, t: tF.elu(t, alpha=0.5)),
    (lambda: ck.Sigmoid(), lambda tF, t: t.sigmoid()),
    (lambda: ck.Tanh(), lambda tF, t: t.tanh()),
    (lambda: ck.Softmax(), lambda tF, t: tF.softmax(t, dim=1)),
    (lambda: ck.Softmax(dim=-1), lambda tF, t: tF.softmax(t, dim=-1)),
    (lambda: ck.Softmax(dim=0), lambda tF, t: tF.softmax(t, dim=0)),
    (lambda: ck.Identity(), lambda tF, t: t * 1),
]
IDS = ["relu", "relu6", "leaky", "leaky0.2", "elu", "elu0.5", "sigmoid", "tanh", "softmax", "softmax-1",
       "softmax0", "identity"]
SHAPES = [(4, 10), (2, 3, 5, 5), (3, 2, 7), (1, 6, 4, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("make, torch_fn", PAIRS, ids=IDS)
def test_parity_with_pytorch(make, torch_fn, shape, torch, tF):
    """Forward and dx match PyTorch in float32; values span (-8, 8) so ReLU6's upper kink is exercised."""
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    layer = make()
    y = layer(x)
    dx = layer.backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch_fn(tF, tx)
    ty.backward(torch.tensor(dy))
    assert y.dtype == dx.dtype == np.float32
    assert_parity(y, ty, what="forward")
    assert_parity(dx, tx.grad, what="dx")


@pytest.mark.parametrize("make", [p[0] for p in PAIRS], ids=IDS)
def test_numeric_gradients(make):
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 3)) * 4
    errors = ck.gradcheck(make(), x)
    assert errors["input"] < 1e-6, errors


def test_worked_values():
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 7.0]])
    assert ck.ReLU()(x).tolist() == [[0.0, 0.0, 0.0, 0.5, 7.0]]
    assert ck.ReLU6()(x).tolist() == [[0.0, 0.0, 0.0, 0.5, 6.0]]
    assert ck.LeakyReLU(0.1)(x).tolist() == [[-0.2, -0.05, 0.0, 0.5, 7.0]]
    np.testing.assert_allclose(ck.ELU()(x), [[np.exp(-2) - 1, np.exp(-0.5) - 1, 0, 0.5, 7]], rtol=1e-12)
    np.testing.assert_allclose(ck.Sigmoid()(x), 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(ck.Tanh()(x), np.tanh(x), rtol=1e-12)
    # Softmax: the notes' scores -2.85, 0.86, 0.28 -> probabilities 0.016, 0.631, 0.353.
    p = ck.Softmax()(np.array([[-2.85, 0.86, 0.28]]))
    np.testing.assert_allclose(p, [[0.016, 0.631, 0.353]], atol=1e-3)  # the notes round to 3 places
    # The ReLU gradient at exactly 0 is 0, as in PyTorch; ReLU6's is 0 at 0 and at 6.
    relu = ck.ReLU()
    relu(x)
    assert relu.backward(np.ones_like(x)).tolist() == [[0, 0, 0, 1, 1]]
    relu6 = ck.ReLU6()
    relu6(np.array([0.0, 3.0, 6.0]))
    assert relu6.backward(np.ones(3)).tolist() == [0, 1, 0]


def test_numerically_stable_at_extreme_inputs():
    """No overflow warnings (pytest turns RuntimeWarning into errors) and exact limits."""
    x = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], np.float32)
    s = ck.Sigmoid()(x)
    assert s.dtype == np.float32 and s[0, 0] == 0 and s[0, 2] == 0.5 and s[0, -1] == 1
    e = ck.ELU()(x)
    assert e[0, 0] == -1 and e[0, -1] == 1e4
    p = ck.Softmax()(np.array([[1e4, 1e4 - np.log(3.0)], [-1e4, -1e4]]))
    np.testing.assert_allclose(p, [[0.75, 0.25], [0.5, 0.5]], rtol=1e-6)
    y, _ = F.softmax(np.array([[3.0, 1.0], [0.0, 0.0]]), dim=0)
    np.testing.assert_allclose(y.sum(axis=0), [1, 1])


def test_nan_propagates_through_relu():
    assert np.isnan(ck.ReLU()(np.array([np.nan]))).all()


def test_output_shape_and_repr_and_config():
    assert ck.ReLU().output_shape((2, 3, 4, 4)) == (2, 3, 4, 4)
    assert ck.Softmax(dim=-1).output_shape((2, 5)) == (2, 5)
    assert repr(ck.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(ck.ReLU()) == "ReLU()"
    for layer in (ck.ReLU(), ck.LeakyReLU(0.3), ck.ELU(2.0), ck.Softmax(dim=-1), ck.Identity()):
        rebuilt = ck.layers.from_config(layer.config())
        assert type(rebuilt) is type(layer) and rebuilt.config() == layer.config()


def test_float64_stays_float64():
    for make, _ in PAIRS:
        assert make()(np.zeros((2, 3))).dtype == np.float64


@pytest.mark.parametrize("make, x, error, pattern", [
    (ck.ReLU, [1.0, 2.0], TypeError, r"ReLU\(\): expected a NumPy array, received list"),
    (ck.Sigmoid, np.zeros((2, 3), np.int64), TypeError, r"Sigmoid\(\): expected a floating-point array"),
    (lambda: ck.Softmax(dim=2), np.zeros((2, 3), np.float32), ck.ShapeError,
     r"Softmax\(dim=2\): received shape \(2, 3\) with 2 axes, which has no axis dim=2"),
])
def test_bad_input(make, x, error, pattern):
    with pytest.raises(error, match=pattern):
        make()(x)


def test_softmax_output_shape_checks_dim():
    with pytest.raises(ck.ShapeError, match="no axis dim=1"):
        ck.Softmax().output_shape((5,))


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: ck.LeakyReLU("0.1"), TypeError, r"LeakyReLU: Received negative_slope='0.1'; expected a real"),
    (lambda: ck.ELU(float("inf")), ValueError, r"ELU: Received alpha=inf; expected a finite number"),
    (lambda: ck.Softmax(dim=1.0), TypeError, r"Softmax: Received dim=1.0; expected an int"),
])
def test_bad_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


@pytest.mark.parametrize("make", [p[0] for p in PAIRS], ids=IDS)
def test_backward_before_forward(make):
    with pytest.raises(RuntimeError, match="backward was called before forward"):
        make().backward(np.zeros((1, 2)))


# What a checkpoint stores of each activation (its config) and how it prints, as written before the
# activations shared their kernel plumbing (_Elementwise, _Dispatched, _AlongDim): files saved then load now.
SAVED = [
    ("ReLU()", {"type": "ReLU", "algorithm": "auto"}),
    ("ReLU(algorithm='reference')", {"type": "ReLU", "algorithm": "reference"}),
    ("ReLU6()", {"type": "ReLU6", "algorithm": "auto"}),
    ("LeakyReLU(negative_slope=0.2)", {"type": "LeakyReLU", "negative_slope": 0.2, "algorithm": "auto"}),
    ("ELU(alpha=0.5, algorithm='fast')", {"type": "ELU", "alpha": 0.5, "algorithm": "fast"}),
    ("Sigmoid()", {"type": "Sigmoid", "algorithm": "auto"}),
    ("Tanh()", {"type": "Tanh", "algorithm": "auto"}),
    ("Identity()", {"type": "Identity"}),
    ("PReLU(num_parameters=4)", {"type": "PReLU", "num_parameters": 4, "init": 0.25}),
    ("SELU()", {"type": "SELU"}), ("CELU(alpha=2.0)", {"type": "CELU", "alpha": 2.0}),
    ("GELU(approximate='tanh')", {"type": "GELU", "approximate": "tanh"}),
    ("GELU()", {"type": "GELU", "approximate": "none"}), ("SiLU()", {"type": "SiLU"}),
    ("Mish()", {"type": "Mish"}),
    ("Softplus(beta=2.0, threshold=10.0)", {"type": "Softplus", "beta": 2.0, "threshold": 10.0}),
    ("Softsign()", {"type": "Softsign"}),
    ("Hardtanh(min_val=-2.0, max_val=3.0)", {"type": "Hardtanh", "min_val": -2.0, "max_val": 3.0}),
    ("Hardsigmoid()", {"type": "Hardsigmoid"}), ("Hardswish()", {"type": "Hardswish"}),
    ("Softmax(algorithm='reference')", {"type": "Softmax", "dim": 1, "algorithm": "reference"}),
    ("LogSoftmax()", {"type": "LogSoftmax", "dim": 1}),
]


@pytest.mark.parametrize("text, config", SAVED, ids=[text for text, _ in SAVED])
def test_configs_and_reprs_are_those_checkpoints_hold(text, config):
    layer = eval(f"ck.{text}")  # the constructor call, which is also the repr
    assert repr(layer) == text and layer.config() == config
    assert repr(ck.layers.from_config(config)) == text


def test_a_checkpoint_of_every_activation_loads_with_its_outputs(tmp_path):
    net = ck.Sequential(*(ck.layers.from_config(config) for _, config in SAVED))
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    ck.save(net, tmp_path / "activations.npz")
    again = ck.load(tmp_path / "activations.npz")
    assert repr(again) == repr(net) and again.config() == net.config()
    np.testing.assert_array_equal(again.forward(x), net.forward(x))
