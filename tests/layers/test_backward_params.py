"""backward_params: the parameter gradients of backward, without the first layer's input gradient."""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.functional.conv import conv2d, conv2d_backward


def grads(model):
    return {name: p.grad.copy() for name, p in model.named_parameters()}


@pytest.mark.parametrize("name, shape", [("lenet5", (4, 1, 28, 28)), ("cifar_net", (2, 3, 32, 32))])
def test_same_parameter_gradients_as_backward(name, shape):
    rng = np.random.default_rng(0)
    model = ck.models.get(name, rng=rng)
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(model.output_shape(shape)).astype(np.float32)
    model.forward(x)
    dx = model.backward(dy)
    full = grads(model)
    model.zero_grad()
    model.forward(x)
    assert model.backward_params(dy) is None
    skipped = grads(model)
    assert dx.shape == shape and set(full) == set(skipped)
    for key in full:
        np.testing.assert_array_equal(skipped[key], full[key], err_msg=key)


def test_the_kernel_skips_dx_and_keeps_dweight_and_dbias():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    dy = rng.standard_normal((2, 4, 4, 4)).astype(np.float32)
    y, cache = conv2d(x, w, b, stride=2, algorithm="im2col")
    dx, dw, db = conv2d_backward(dy, cache)
    y, cache = conv2d(x, w, b, stride=2, algorithm="im2col")
    none, dw2, db2 = conv2d_backward(dy, cache, input_grad=False)
    assert none is None and dx.shape == x.shape
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)


def test_containers_and_layers_without_an_override_fall_back_to_backward():
    rng = np.random.default_rng(2)
    block = ck.Residual(ck.Sequential(ck.Conv2d(2, 2, 3, padding=1, rng=rng), ck.ReLU()))
    model = ck.Sequential(block, ck.Flatten(), ck.Linear(2 * 5 * 5, 3, rng=rng))
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    dy = rng.standard_normal((2, 3)).astype(np.float32)
    model.forward(x)
    model.backward(dy)
    full = grads(model)
    model.zero_grad()
    model.forward(x)
    model.backward_params(dy)
    for key, value in grads(model).items():
        np.testing.assert_array_equal(value, full[key], err_msg=key)
    with pytest.raises(RuntimeError, match="backward was called before forward"):
        model.backward_params(dy)
    ck.Sequential().backward_params(dy)  # an empty container has nothing to do
