"""cnnkit.gradcheck itself: every layer's gradient test rests on it, so it must be able to fail.

A check that reports a tiny error for a wrong backward would make all the `< 1e-6` assertions vacuous;
these tests give it backward passes with known, deliberate mistakes and require large errors.
"""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.gradcheck import relative_error
from cnnkit.losses import MSE


class _DoubledInputGradient(ck.Tanh):
    """Tanh whose backward returns twice the true dx: relative error exactly 1/2 of the scale."""

    def backward(self, dy):
        return 2 * super().backward(dy)


class _WrongBiasGradient(ck.Linear):
    """Linear whose bias gradient forgets the sum over the batch (takes the first row only)."""

    def backward(self, dy):
        before = self.bias.grad.copy()
        dx = super().backward(dy)
        self.bias.grad[...] = before + dy[0]
        return dx


class _HalfMSE(MSE):
    """MSE whose backward drops the factor 2."""

    def _backward(self, dy, cache):
        dscores, dtargets = super()._backward(dy, cache)
        return dscores / 2, dtargets


def test_a_correct_layer_passes_with_a_tiny_error():
    layer = ck.Linear(4, 3, rng=np.random.default_rng(0))
    errors = ck.gradcheck(layer, np.random.default_rng(1).standard_normal((5, 4)))
    assert set(errors) == {"input", "weight", "bias"}
    assert max(errors.values()) < 1e-8, errors


def test_a_wrong_input_gradient_is_caught():
    errors = ck.gradcheck(_DoubledInputGradient(), np.random.default_rng(2).standard_normal((3, 4)))
    # |2a - a| / max(|2a|, |a|) = 1/2 wherever the largest entry sits
    assert errors["input"] == pytest.approx(0.5, rel=1e-6)


def test_a_wrong_parameter_gradient_is_caught_and_named():
    layer = _WrongBiasGradient(4, 3, rng=np.random.default_rng(3))
    errors = ck.gradcheck(layer, np.random.default_rng(4).standard_normal((6, 4)))
    assert errors["input"] < 1e-8 and errors["weight"] < 1e-8  # the other gradients are still right
    assert errors["bias"] > 0.1


def test_a_wrong_loss_gradient_is_caught():
    scores = np.random.default_rng(5).standard_normal((4, 3))
    targets = np.random.default_rng(6).standard_normal((4, 3))
    assert ck.gradcheck(MSE(), scores, targets=targets)["input"] < 1e-8
    assert ck.gradcheck(_HalfMSE(), scores, targets=targets)["input"] == pytest.approx(0.5, rel=1e-6)


def test_the_callers_layer_is_left_as_it_was():
    """gradcheck works on a float64 copy: the float32 layer keeps its dtype, weights and (zero) grads."""
    layer = ck.Conv2d(2, 3, 3, padding=1, rng=np.random.default_rng(7))
    weight = layer.weight.data.copy()
    ck.gradcheck(layer, np.random.default_rng(8).standard_normal((1, 2, 4, 4)))
    assert layer.weight.data.dtype == np.float32
    np.testing.assert_array_equal(layer.weight.data, weight)
    assert not layer.weight.grad.any() and not layer.bias.grad.any()


def test_relative_error_definition():
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert relative_error(np.array([1.0, 4.0]), np.array([1.0, 2.0])) == pytest.approx(2 / 4)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0  # no gradient anywhere is no error
