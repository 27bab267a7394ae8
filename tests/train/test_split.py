"""Batch slices on threads (cnnkit.train.split): the same gradients as the whole batch, the same training."""

import numpy as np
import pytest
from train_helpers import ArrayLoader, blobs, small_net

import cnnkit as ck
from cnnkit.losses import SoftmaxCrossEntropy
from cnnkit.optim import SGD
from cnnkit.train import TrainingDiverged, fit
from cnnkit.train.split import SplitStep, why_not_split


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


def _train(threads, model, epochs=3):
    x, y = blobs(96)
    history = fit(model, SoftmaxCrossEntropy(), SGD(model, lr=0.05, momentum=0.9), ArrayLoader(x, y),
                  epochs=epochs, quiet=True, threads=threads)
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
            threads=2)
