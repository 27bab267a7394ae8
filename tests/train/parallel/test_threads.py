"""Batch slices on threads (cnnkit.train.parallel.threads): the same gradients as the whole batch, the same
training; which models may be sliced (each layer class's ``mixes_examples``)."""

import numpy as np
import pytest
from train_helpers import ArrayLoader, blobs, small_net

import cnnkit as ck
from cnnkit.losses import SoftmaxCrossEntropy
from cnnkit.optim import SGD
from cnnkit.train import TrainingDiverged, fit
from cnnkit.train.parallel import Threads, why_not_split
from cnnkit.train.parallel.threads import SplitStep


def _residual_net(rng):
    body = ck.Sequential(ck.Conv2d(4, 4, 3, padding=1, rng=rng), ck.ReLU(),
                         ck.Conv2d(4, 4, 3, padding=1, rng=rng))
    return ck.Sequential(ck.Conv2d(1, 4, 3, padding=1, rng=rng), ck.Residual(body, activation=ck.ReLU()),
                         ck.MaxPool2d(2), ck.Flatten(), ck.Linear(4 * 4 * 4, 3, rng=rng))


@pytest.mark.parametrize("threads, n", [(2, 16), (3, 16), (2, 7), (4, 3)])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_gradients_and_loss_equal_the_whole_batch(threads, n, dtype, rtol):
    rng = np.random.default_rng(0)
    model = _residual_net(rng).astype(dtype)
    x, y = rng.standard_normal((n, 1, 8, 8)).astype(dtype), rng.integers(0, 3, n)
    loss = SoftmaxCrossEntropy()
    scores = model.forward(x)
    value = loss.forward(scores, y)
    model.backward_params(loss.backward())
    whole = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()

    step = SplitStep(model, SoftmaxCrossEntropy(), threads)
    try:
        split_scores, split_value = step.forward(x, y)
        step.backward()
    finally:
        step.close()
    np.testing.assert_allclose(split_scores, scores, rtol=rtol, atol=rtol)
    assert split_value == pytest.approx(value, rel=rtol)
    for p, g in zip(model.parameters(), whole, strict=True):
        np.testing.assert_allclose(p.grad, g, rtol=rtol, atol=rtol * np.abs(g).max())
    assert all(not r.grad.any() for rep in step.replicas[1:] for r in rep.parameters())  # handed over


def test_eligibility():
    rng = np.random.default_rng(0)
    assert why_not_split(_residual_net(rng)) is None
    assert why_not_split(small_net(dropout=0.2)) == "layer '3' (Dropout) mixes or randomizes examples"
    bn = ck.Sequential(ck.Conv2d(1, 2, 3), ck.BatchNorm2d(2))
    assert "(BatchNorm2d) mixes or randomizes examples" in why_not_split(bn)
    with pytest.raises(ValueError, match=r"SplitStep: layer '1' \(BatchNorm2d\) mixes or randomizes "
                                         r"examples; train it with threads=1"):
        SplitStep(bn, SoftmaxCrossEntropy(), 2)
    with pytest.raises(ValueError, match=r"SplitStep: Received threads=1; expected an int >= 2"):
        SplitStep(_residual_net(rng), SoftmaxCrossEntropy(), 1)


class Scale(ck.Layer):
    """A layer class made here and listed nowhere: it treats each example on its own."""

    def forward(self, x):
        return 2 * x

    def backward(self, dy):
        return 2 * dy

    def output_shape(self, input_shape):
        return input_shape


def test_a_new_layer_class_is_eligible_without_being_listed_anywhere():
    rng = np.random.default_rng(0)
    model = ck.Sequential(ck.Conv2d(1, 2, 3, rng=rng), Scale(), ck.Flatten(),
                          ck.Linear(2 * 6 * 6, 3, rng=rng)).astype(np.float64)
    assert why_not_split(model) is None
    x, y = rng.standard_normal((6, 1, 8, 8)), rng.integers(0, 3, 6)
    loss = SoftmaxCrossEntropy()
    loss.forward(model.forward(x), y)
    model.backward_params(loss.backward())
    whole = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    step = SplitStep(model, SoftmaxCrossEntropy(), 2)
    try:
        step.forward(x, y)
        step.backward()
    finally:
        step.close()
    for p, g in zip(model.parameters(), whole, strict=True):
        np.testing.assert_allclose(p.grad, g, rtol=1e-12, atol=1e-12 * np.abs(g).max())


@pytest.mark.parametrize("layer", [ck.BatchNorm1d(4), ck.BatchNorm2d(4), ck.Dropout(0.1)], ids=type)
def test_batch_norm_and_dropout_make_a_model_ineligible_at_any_depth(layer):
    name = type(layer).__name__
    assert layer.mixes_examples and not ck.Conv2d(1, 4, 3).mixes_examples
    inner = ck.Sequential(ck.Identity(), layer)
    for model in (inner, ck.Sequential(ck.Conv2d(4, 4, 1), ck.Residual(inner)),
                  ck.Sequential(ck.Concat(ck.Identity(), inner))):
        reason = why_not_split(model)
        assert reason is not None and reason.endswith(f"({name}) mixes or randomizes examples")

    class Mine(type(layer)):  # a subclass inherits the attribute: nothing to list either
        pass
    assert why_not_split(ck.Sequential(Mine(4) if name != "Dropout" else Mine(0.1))) is not None


def _train(threads, model, epochs=3):
    x, y = blobs(96)
    history = fit(model, SoftmaxCrossEntropy(), SGD(model, lr=0.05, momentum=0.9), ArrayLoader(x, y),
                  epochs=epochs, quiet=True, parallel=Threads(threads))
    return history, [p.data.copy() for p in model.parameters()]


def test_fit_with_threads_trains_like_one_thread_and_repeats_itself():
    one = _train(1, _residual_net(np.random.default_rng(3)))
    two = _train(2, _residual_net(np.random.default_rng(3)))
    again = _train(2, _residual_net(np.random.default_rng(3)))
    assert two[0]["train_accuracy"][-1] >= 0.9
    np.testing.assert_allclose(two[0]["train_loss"], one[0]["train_loss"], rtol=1e-4)
    for a, b, c in zip(one[1], two[1], again[1], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)
        np.testing.assert_array_equal(b, c)  # a fixed slicing and summation order: bitwise repeatable


def test_fit_with_threads_runs_ineligible_models_whole():
    """Dropout draws from the model's own generator: split, replicas would draw differently."""
    one = _train(1, small_net(seed=4, dropout=0.3), epochs=2)
    two = _train(4, small_net(seed=4, dropout=0.3), epochs=2)
    for a, b in zip(one[1], two[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_fit_with_threads_stops_on_nan():
    model = _residual_net(np.random.default_rng(5))
    x, y = blobs(32)
    x[5] = np.nan
    with pytest.raises(TrainingDiverged, match=r"the loss became nan at epoch 1, step 1"):
        fit(model, SoftmaxCrossEntropy(), SGD(model, lr=0.05), ArrayLoader(x, y, shuffle=False), quiet=True,
            parallel=Threads(2))
