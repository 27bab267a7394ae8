"""Linear, Flatten, Dropout: numeric gradients, PyTorch parity, worked examples, and errors."""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.functional.linear import dropout, dropout_backward, linear, linear_backward
from conftest import assert_parity


@pytest.mark.parametrize("shape, out, bias", [
    ((4, 10), 3, True), ((1, 1), 1, True), ((7, 5), 8, False), ((2, 3, 6), 4, True), ((16, 64), 10, True),
])
def test_linear_parity_with_pytorch(shape, out, bias, tF, torch):
    rng = np.random.default_rng(shape[-1])
    layer = ck.Linear(shape[-1], out, bias, rng=rng)
    x = rng.standard_normal(shape).astype(np.float32)
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.weight.data, requires_grad=True)
    tb = torch.tensor(layer.bias.data, requires_grad=True) if bias else None
    ty = tF.linear(tx, tw, tb)
    ty.backward(torch.tensor(dy))
    assert y.dtype == dx.dtype == layer.weight.grad.dtype == np.float32
    assert_parity(y, ty, what="forward")
    assert_parity(dx, tx.grad, what="dx")
    assert_parity(layer.weight.grad, tw.grad, what="dweight")
    if bias:
        assert_parity(layer.bias.grad, tb.grad, what="dbias")


@pytest.mark.parametrize("make, shape", [
    (lambda: ck.Linear(5, 3), (4, 5)),
    (lambda: ck.Linear(4, 2, bias=False), (3, 4)),
    (lambda: ck.Linear(3, 2), (2, 2, 3)),
    (lambda: ck.Flatten(), (2, 3, 2, 2)),
    (lambda: ck.Flatten(start_dim=2), (2, 3, 2, 2)),
    (lambda: ck.Flatten(0, 1), (2, 3, 4)),
    (lambda: ck.Dropout(0.0), (3, 4)),
])
def test_numeric_gradients(make, shape):
    errors = ck.gradcheck(make(), np.random.default_rng(2).standard_normal(shape))
    assert max(errors.values()) < 1e-6, errors


def test_linear_default_init_is_pytorchs():
    """U(-1/sqrt(in), 1/sqrt(in)) for weight and bias, seeded by rng."""
    layer = ck.Linear(400, 300, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(400)
    assert layer.weight.shape == (300, 400) and layer.bias.shape == (300,)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > 0.99 * bound
    assert abs(layer.weight.data.std() - bound / np.sqrt(3)) < 1e-3  # the std of U(-b, b) is b / sqrt(3)
    again = ck.Linear(400, 300, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(layer.weight.data, again.weight.data)
    assert layer.num_parameters() == 400 * 300 + 300


def test_linear_worked_example():
    layer = ck.Linear(3, 2)
    layer.weight.data[...] = [[1, 2, 3], [0, -1, 0]]
    layer.bias.data[...] = [0.5, 1]
    x = np.array([[1, 1, 1], [1, 0, -1]], np.float32)
    assert layer(x).tolist() == [[6.5, 0], [-1.5, 1]]
    dx = layer.backward(np.array([[1, 0], [0, 1]], np.float32))
    assert dx.tolist() == [[1, 2, 3], [0, -1, 0]]
    assert layer.weight.grad.tolist() == [[1, 1, 1], [1, 0, -1]]
    assert layer.bias.grad.tolist() == [1, 1]


def test_flatten_parity_and_order(torch):
    """C-major order like torch.flatten, so a Linear after it has PyTorch's weight layout."""
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    for args in [(), (2,), (1, 2), (0, -1)]:
        layer = ck.Flatten(*args)
        y = layer(x)
        np.testing.assert_array_equal(y, torch.flatten(torch.tensor(x), *(args or (1,))).numpy())
        assert layer.output_shape(x.shape) == y.shape
        assert layer.backward(y).shape == x.shape
    # the channels-last view of the same volume flattens to the same vector
    view = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(ck.Flatten()(view), ck.Flatten()(x))


def test_dropout_inverted_scaling_and_eval_identity():
    layer = ck.Dropout(0.3, rng=np.random.default_rng(0))
    x = np.ones((200, 500), np.float32)
    y = layer(x)
    assert y.dtype == np.float32
    assert set(np.unique(y).tolist()) == {0.0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.005  # 100 000 draws: the drop rate is p within 5 standard errors
    assert abs(y.mean() - 1) < 0.01  # the expected activation is unchanged: why evaluation needs no scaling
    # backward routes through the kept units with the same scale
    dy = np.full_like(x, 2.0)
    np.testing.assert_array_equal(layer.backward(dy), 2 * y)
    layer.eval()
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer.backward(dy), dy)
    layer.train()
    assert (layer(x) == 0).any()


def test_dropout_extremes():
    x = np.ones((3, 4))
    assert ck.Dropout(1.0)(x).tolist() == np.zeros((3, 4)).tolist()
    np.testing.assert_array_equal(ck.Dropout(0.0)(x), x)


class _FixedMaskDropout(ck.Dropout):
    """Dropout that draws the same mask on every forward, so a numeric gradient is defined."""

    def forward(self, x):
        self.rng = np.random.default_rng(7)
        return super().forward(x)


def test_dropout_numeric_gradient_with_a_fixed_mask():
    layer = _FixedMaskDropout(0.4)
    x = np.random.default_rng(3).standard_normal((4, 6))
    a, b = layer(x), layer(x)
    np.testing.assert_array_equal(a, b)
    assert (a == 0).any() and (a != 0).any()
    assert ck.gradcheck(layer, x)["input"] < 1e-6


def test_dropout_matches_pytorch_given_the_same_mask(torch):
    """torch's dropout is x * mask / (1 - p); with cnnkit's mask the gradients agree exactly."""
    layer = ck.Dropout(0.5, rng=np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((8, 16)).astype(np.float32)
    y = layer(x)
    keep = (y != 0).astype(np.float32)
    dy = np.random.default_rng(3).standard_normal(x.shape).astype(np.float32)
    dx = layer.backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    ty = tx * torch.tensor(keep) / (1 - 0.5)
    ty.backward(torch.tensor(dy))
    assert_parity(y, ty, what="forward")
    assert_parity(dx, tx.grad, what="dx")


def test_dropout_is_reproducible_with_a_seed():
    x = np.ones((10, 10), np.float32)
    a = ck.Dropout(rng=np.random.default_rng(5))(x)
    b = ck.Dropout(rng=np.random.default_rng(5))(x)
    np.testing.assert_array_equal(a, b)


def test_functional_kernels_directly():
    y, cache = linear(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32))
    dx, dw, db = linear_backward(np.ones((2, 4), np.float32), cache)
    assert y.tolist() == [[3] * 4] * 2 and dx.tolist() == [[4] * 3] * 2 and dw.tolist() == [[2] * 3] * 4
    assert db is None
    y, cache = dropout(np.ones(5), 0.5, rng=np.random.default_rng(0), training=False)
    assert cache is None and dropout_backward(np.ones(5), cache).tolist() == [1] * 5


def test_config_round_trip_and_repr():
    for layer in (ck.Linear(5, 3, bias=False), ck.Flatten(2), ck.Dropout(0.25)):
        rebuilt = ck.layers.from_config(layer.config())
        assert rebuilt.config() == layer.config()
    assert ck.Dropout(0.25, rng=np.random.default_rng(0)).config() == {"type": "Dropout", "p": 0.25}
    assert repr(ck.Linear(5, 3, bias=False)) == "Linear(5->3, bias=False)"
    assert repr(ck.Dropout(0.25)) == "Dropout(p=0.25)"


@pytest.mark.parametrize("make, x, error, pattern", [
    (lambda: ck.Linear(5, 3), np.zeros((2, 4), np.float32), ck.ShapeError,
     r"Linear\(5->3\): expected input \(N, 5\), received shape \(2, 4\)"),
    (lambda: ck.Linear(5, 3), np.zeros((2, 5, 2, 2), np.float32), ck.ShapeError,
     r"Put a Flatten\(\) before it"),
    (lambda: ck.Linear(5, 3), np.zeros((), np.float32), ck.ShapeError, r"received shape \(\)"),
    (lambda: ck.Linear(5, 3), np.zeros((2, 5), np.int32), TypeError, r"floating-point array"),
    (lambda: ck.Flatten(), np.zeros(4, np.float32), ck.ShapeError,
     r"Flatten\(\): cannot merge axes 1..-1 of an input with shape \(4,\)"),
    (lambda: ck.Flatten(2, 1), np.zeros((2, 3, 4), np.float32), ck.ShapeError, r"start_dim <= end_dim"),
    (lambda: ck.Dropout(), [1.0], TypeError, r"expected a NumPy array"),
])
def test_bad_input(make, x, error, pattern):
    with pytest.raises(error, match=pattern):
        make()(x)


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: ck.Linear(0, 3), ValueError, r"Linear: Received in_features=0; expected a positive int"),
    (lambda: ck.Linear(3, 2.5), ValueError, r"Received out_features=2.5"),
    (lambda: ck.Flatten("1"), TypeError, r"Flatten: Received start_dim='1'; expected an int"),
    (lambda: ck.Dropout(1.5), ValueError, r"Dropout: Received p=1.5; the drop probability must be in \[0, 1"),
    (lambda: ck.Dropout(-0.1), ValueError, r"Received p=-0.1"),
    (lambda: ck.Dropout("half"), TypeError, r"Dropout: Received p='half'; expected a probability"),
])
def test_bad_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


@pytest.mark.parametrize("make", [lambda: ck.Linear(2, 2), ck.Flatten, ck.Dropout])
def test_backward_before_forward(make):
    with pytest.raises(RuntimeError, match="backward was called before forward"):
        make().backward(np.zeros((1, 2)))
