"""Batch slices on worker processes (cnnkit.train.parallel.processes): the same gradients and training as the
whole batch, and clear errors when a worker fails or dies."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from train_helpers import ArrayLoader, blobs, small_net

import cnnkit as ck
from cnnkit.losses import SoftmaxCrossEntropy
from cnnkit.optim import SGD
from cnnkit.train import TrainingDiverged, fit
from cnnkit.train.parallel import Processes
from cnnkit.train.parallel.processes import ProcessSplitStep


def _net(rng):
    body = ck.Sequential(ck.Conv2d(4, 4, 3, padding=1, rng=rng), ck.ReLU(),
                         ck.Conv2d(4, 4, 3, padding=1, rng=rng))
    return ck.Sequential(ck.Conv2d(1, 4, 3, padding=1, rng=rng), ck.Residual(body, activation=ck.ReLU()),
                         ck.MaxPool2d(2), ck.Flatten(), ck.Linear(4 * 4 * 4, 3, rng=rng))


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_gradients_and_loss_equal_the_whole_batch_for_several_batch_sizes(dtype, rtol):
    rng = np.random.default_rng(0)
    model = _net(rng).astype(dtype)
    step = ProcessSplitStep(model, SoftmaxCrossEntropy(), 3)
    try:
        for n in (16, 7, 40, 2):  # a smaller last batch, then a larger one (a new shared block), then tiny
            x, y = rng.standard_normal((n, 1, 8, 8)).astype(dtype), rng.integers(0, 3, n)
            loss = SoftmaxCrossEntropy()
            model.zero_grad()
            scores = model.forward(x)
            value = loss.forward(scores, y)
            model.backward_params(loss.backward())
            whole = [p.grad.copy() for p in model.parameters()]
            model.zero_grad()
            split_scores, split_value = step.forward(x, y)
            step.backward()
            np.testing.assert_allclose(split_scores, scores, rtol=rtol, atol=rtol, err_msg=str(n))
            assert split_value == pytest.approx(value, rel=rtol)
            for p, g in zip(model.parameters(), whole, strict=True):
                assert np.abs(g).max() > 0
                np.testing.assert_allclose(p.grad, g, rtol=rtol, atol=rtol * np.abs(g).max())
            for p in model.parameters():  # the next step must see the updated weights
                p.data = p.data - dtype(0.1) * p.grad
    finally:
        step.close()


def test_arguments_are_checked():
    bn = ck.Sequential(ck.Conv2d(1, 2, 3), ck.BatchNorm2d(2))
    with pytest.raises(ValueError, match=r"ProcessSplitStep: layer '1' \(BatchNorm2d\) mixes or randomizes "
                                         r"examples; train it with processes=1"):
        ProcessSplitStep(bn, SoftmaxCrossEntropy(), 2)
    with pytest.raises(ValueError, match=r"ProcessSplitStep: Received processes=1; expected an int >= 2"):
        ProcessSplitStep(_net(np.random.default_rng(0)), SoftmaxCrossEntropy(), 1)


def test_a_failing_worker_raises_its_error_here():
    model = _net(np.random.default_rng(1))
    step = ProcessSplitStep(model, SoftmaxCrossEntropy(), 2)
    try:
        x, y = np.zeros((8, 1, 8, 8)), np.array([0, 1, 2, 0, 1, 2, 0, 7])  # class 7: only the worker's half
        with pytest.raises(RuntimeError, match=r"(?s)worker 1 failed:.*Traceback.*7"):
            step.forward(x, y)
    finally:
        step.close()


def test_a_dead_worker_is_reported_not_waited_for():
    model = _net(np.random.default_rng(2))
    step = ProcessSplitStep(model, SoftmaxCrossEntropy(), 2)
    try:
        os.kill(step._workers[0].pid, signal.SIGKILL)
        step._workers[0].join(timeout=10)
        x, y = np.zeros((8, 1, 8, 8)), np.zeros(8, np.int64)
        with pytest.raises(RuntimeError, match=r"worker 1 exited \(exit code -9\)"):
            step.forward(x, y)
    finally:
        step.close()


def _train(model, epochs=3, parallel=None):
    x, y = blobs(96)
    history = fit(model, SoftmaxCrossEntropy(), SGD(model, lr=0.05, momentum=0.9), ArrayLoader(x, y),
                  epochs=epochs, quiet=True, parallel=parallel)
    return history, [p.data.copy() for p in model.parameters()]


def test_fit_with_processes_trains_like_one_process_and_repeats_itself():
    one = _train(_net(np.random.default_rng(3)))
    two = _train(_net(np.random.default_rng(3)), parallel=Processes(2))
    again = _train(_net(np.random.default_rng(3)), parallel=Processes(2))
    assert two[0]["train_accuracy"][-1] >= 0.9
    np.testing.assert_allclose(two[0]["train_loss"], one[0]["train_loss"], rtol=1e-4)
    for a, b, c in zip(one[1], two[1], again[1], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)
        np.testing.assert_array_equal(b, c)  # fixed slices and summation order: bitwise repeatable


def test_fit_with_processes_runs_ineligible_models_whole_and_stops_on_nan():
    one = _train(small_net(seed=4, dropout=0.3), epochs=1)
    two = _train(small_net(seed=4, dropout=0.3), epochs=1, parallel=Processes(2))
    for a, b in zip(one[1], two[1], strict=True):
        np.testing.assert_array_equal(a, b)
    model = _net(np.random.default_rng(5))
    x, y = blobs(32)
    x[12] = np.nan  # in the worker's half of the first batch of 16
    with pytest.raises(TrainingDiverged, match=r"the loss became nan at epoch 1, step 1"):
        fit(model, SoftmaxCrossEntropy(), SGD(model, lr=0.05), ArrayLoader(x, y, shuffle=False), quiet=True,
            parallel=Processes(2))


# A training run on two processes that sends itself SIGINT (what Ctrl-C does) at one moment, then exits as
# `cnnkit train` does on Ctrl-C. Python's resource tracker, a process of its own, says at exit whether a
# shared block was left registered ("leaked shared_memory objects") or unregistered twice (a KeyError).
CTRL_C_RUN = """
import multiprocessing, os, signal, sys
import numpy as np
import cnnkit as ck
from cnnkit.losses import SoftmaxCrossEntropy
from cnnkit.optim import SGD
from cnnkit.train import Callback, fit
from cnnkit.train.parallel import Processes
from cnnkit.train.parallel.processes import ProcessSplitStep

def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)

moment = sys.argv[1]
if moment == "while a worker starts":  # the signal comes during Process.start(), SIGINT blocked or not
    start = multiprocessing.get_context("spawn").Process.start
    def starting(self):
        ctrl_c()
        start(self)
    multiprocessing.get_context("spawn").Process.start = starting
if moment == "in the first step":  # the worker has just been handed its first batch, still starting up
    send = ProcessSplitStep._send
    def sending(self, i, message):
        send(self, i, message)
        if message[0] == "step":
            ctrl_c()
    ProcessSplitStep._send = sending

class AtStep(Callback):
    def on_batch_end(self, epoch, step, loss):
        if moment == "in epoch 2" and (epoch, step) == (1, 3):
            ctrl_c()

rng = np.random.default_rng(0)
model = ck.Sequential(ck.Conv2d(1, 4, 3, padding=1, rng=rng), ck.ReLU(), ck.MaxPool2d(2), ck.Flatten(),
                      ck.Linear(4 * 4 * 4, 3, rng=rng))
x, y = rng.standard_normal((70, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 70)
batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 70, 16)]  # a last batch of 6: a new shared block
try:
    fit(model, SoftmaxCrossEntropy(), SGD(model, lr=0.05), batches, epochs=3, quiet=True,
        parallel=Processes(2), callbacks=[AtStep()])
except KeyboardInterrupt:
    print("interrupted")
    sys.exit(130)
print("finished")
"""


@pytest.mark.parametrize("moment", ["while a worker starts", "in the first step", "in epoch 2", None])
def test_ctrl_c_leaves_no_shared_memory_to_the_resource_tracker(moment):
    run = subprocess.run([sys.executable, "-c", CTRL_C_RUN, str(moment)], capture_output=True, text=True,
                         timeout=300)
    assert (run.returncode, run.stdout.strip()) == ((130, "interrupted") if moment else (0, "finished")), \
        run.stderr
    assert "leaked" not in run.stderr and "KeyError" not in run.stderr, run.stderr
    assert "Traceback" not in run.stderr, run.stderr  # nor a worker's, killed in its start-up
