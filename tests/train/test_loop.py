"""fit and evaluate: learning, metrics, bitwise resume, NaN handling, early stopping, schedules, output."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from train_helpers import ArrayLoader, blobs, small_net

import cnnkit as ck
from cnnkit.io import load_checkpoint
from cnnkit.losses import SoftmaxCrossEntropy
from cnnkit.optim import SGD, Adam, StepLR
from cnnkit.train import Callback, EarlyStopping, TrainingDiverged, evaluate, fit


@pytest.fixture
def data():
    x, y = blobs(96)
    xv, yv = blobs(48, seed=1)
    return ArrayLoader(x, y), ArrayLoader(xv, yv, shuffle=False)


def test_fit_learns_and_records_history(data, capsys):
    train, val = data
    net = small_net()
    history = fit(net, SoftmaxCrossEntropy(), Adam(net, lr=0.01), train, val, epochs=4)
    assert len(history) == 4 and history["epoch"] == [1, 2, 3, 4]
    assert history["train_loss"][-1] < history["train_loss"][0] / 2
    assert history["val_accuracy"][-1] >= 0.9
    assert set(history.last) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
                                 "time"}
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[-1].startswith("epoch 4/4  loss ") and "val_acc" in lines[-1]
    assert "img/s" in lines[-1]
    assert net.training  # fit leaves the model in training mode; evaluate restored it after validation


def test_quiet_prints_nothing(data, capsys):
    net = small_net()
    fit(net, SoftmaxCrossEntropy(), SGD(net, lr=0.1), data[0], epochs=1, quiet=True)
    assert capsys.readouterr().out == ""


FIT_IN_A_FRESH_PROCESS = textwrap.dedent("""
    from train_helpers import ArrayLoader, blobs, small_net
    from cnnkit import runtime
    from cnnkit.losses import SoftmaxCrossEntropy
    from cnnkit.optim import SGD
    from cnnkit.train import fit
    net = small_net()
    fit(net, SoftmaxCrossEntropy(), SGD(net, lr=0.1), ArrayLoader(*blobs(32)), quiet=True)
    print(runtime.settings()["keep_freed_memory"])
""")


def test_fit_leaves_the_malloc_policy_alone():
    """keep_freed_memory is process-wide and permanent: the CLI asks for it (and the worker processes for
    themselves); fit must not. A fresh interpreter, because another test may have turned it on here."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, *sys.path])}
    out = subprocess.run([sys.executable, "-c", FIT_IN_A_FRESH_PROCESS], capture_output=True, text=True,
                         env=env, check=True)
    assert out.stdout.split() == ["False"]


def test_evaluate_metrics_by_hand():
    """Scores chosen so the predictions are known: confusion, accuracy, top-5 and loss follow by hand."""
    class Fixed(ck.Identity):
        pass

    scores = np.array([[5, 0, 0, 0, 0, 1], [0, 5, 0, 0, 0, 1], [1, 5, -1, 2, 3, 4], [0, 0, 0, 0, 0, 1]],
                      np.float32)
    y = np.array([0, 1, 2, 5])
    result = evaluate(Fixed(), [(scores[:2], y[:2]), (scores[2:], y[2:])], SoftmaxCrossEntropy())
    expected = np.zeros((6, 6), np.int64)
    expected[0, 0] = expected[1, 1] = expected[2, 1] = expected[5, 5] = 1
    np.testing.assert_array_equal(result["confusion"], expected)
    assert result["accuracy"] == 0.75 and result["n"] == 4
    assert result["top5"] == 0.75   # row 3's true class 2 has the lowest score: outside its top 5
    logp = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    assert result["loss"] == pytest.approx(-logp[np.arange(4), y].mean(), rel=1e-6)


def test_evaluate_restores_mode_and_rejects_empty(data):
    net = small_net()
    net.train()
    evaluate(net, data[1])
    assert all(layer.training for layer in net.layers())
    with pytest.raises(ValueError, match="the loader yielded no batches"):
        evaluate(net, [])


def _train(epochs, tmp_path, *, resume=None, net_seed=0, name="ck.npz"):
    x, y = blobs(80)
    net = small_net(seed=net_seed)
    opt = SGD(net, lr=0.05, momentum=0.9, nesterov=True)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    fit(net, SoftmaxCrossEntropy(), opt, ArrayLoader(x, y, seed=7), epochs=epochs, scheduler=sched,
        checkpoint=tmp_path / name, resume=resume, quiet=True)
    return net, opt


def test_bitwise_resume(tmp_path):
    """2 epochs in one go == 1 epoch, save, a fresh process-like restart (other init), resume, 1 epoch."""
    straight, opt_a = _train(2, tmp_path, name="straight.npz")
    _train(1, tmp_path, name="half.npz")
    resumed, opt_b = _train(2, tmp_path, resume=tmp_path / "half.npz", net_seed=99, name="half.npz")
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert np.array_equal(a, b), k
    assert opt_a.lr == opt_b.lr == 0.0125
    assert np.array_equal(opt_a.state[0]["momentum_buffer"], opt_b.state[0]["momentum_buffer"])
    hist_a = load_checkpoint(tmp_path / "straight.npz").extra["fit"]["history"]["records"]
    hist_b = load_checkpoint(tmp_path / "half.npz").extra["fit"]["history"]["records"]
    assert [r["train_loss"] for r in hist_a] == [r["train_loss"] for r in hist_b]


class NaNAt:
    """SoftmaxCrossEntropy that reports NaN at one (epoch, step)."""

    def __init__(self, epoch, step):
        self.inner, self.target, self.calls = SoftmaxCrossEntropy(), (epoch, step), []

    def forward(self, scores, y):
        value = self.inner.forward(scores, y)
        return float("nan") if self.target == self.where else value

    def backward(self):
        return self.inner.backward()


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    x, y = blobs(64)
    loader = ArrayLoader(x, y)
    net = small_net()
    loss = NaNAt(2, 3)

    class Where(Callback):
        def on_epoch_begin(self, epoch):
            self.epoch, self.step = epoch + 1, 0
            loss.where = (self.epoch, 1)

        def on_batch_end(self, epoch, step, value):
            loss.where = (epoch + 1, step + 1)

    saved = {}

    class Snapshot(Callback):
        def on_epoch_end(self, epoch, record):
            saved.update({k: v.copy() for k, v in net.state_dict().items()})

    path = tmp_path / "run" / "checkpoint.npz"
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, step 3; the last good "
                                               r"checkpoint is kept at .*checkpoint.npz \(epoch 1\)") as err:
        fit(net, loss, SGD(net, lr=0.1), loader, epochs=3, checkpoint=path, callbacks=[Where(), Snapshot()],
            quiet=True)
    assert err.value.epoch == 2 and err.value.step == 3 and len(err.value.history) == 1
    ckpt = load_checkpoint(path)
    assert ckpt.epoch == 1
    for k, v in ckpt.model.state_dict().items():
        assert np.array_equal(v, saved[k]), k


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf * 0 inside the conv warns first
def test_infinite_scores_stop_too():
    x, y = blobs(32)
    x[5] = np.inf
    net = small_net(dropout=0.0)
    with pytest.raises(TrainingDiverged, match=r"(nan|inf) at epoch 1, step 1; no checkpoint was kept"):
        fit(net, SoftmaxCrossEntropy(), SGD(net), ArrayLoader(x, y, shuffle=False), quiet=True)


def test_early_stopping_stops_and_restores_best(data, capsys):
    """Monitoring train_loss with mode 'max' never improves after epoch 1: stop after 1 + patience epochs."""
    train, _ = data
    nets = [small_net(), small_net()]
    fit(nets[0], SoftmaxCrossEntropy(), SGD(nets[0], lr=0.1), train, epochs=1, quiet=True)
    stopper = EarlyStopping(monitor="train_loss", patience=2, mode="max")
    history = fit(nets[1], SoftmaxCrossEntropy(), SGD(nets[1], lr=0.1), train, epochs=10,
                  callbacks=[stopper])
    assert len(history) == 3 and history.stopped == "early stopping after epoch 3"
    out = capsys.readouterr().out
    assert "early stopping after epoch 3: train_loss has not improved for 2 epochs (best" in out
    for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values(), strict=True):
        assert np.array_equal(a, b)


def test_early_stopping_patience_and_errors(data):
    net = small_net()
    history = fit(net, SoftmaxCrossEntropy(), SGD(net, lr=0.1), data[0], data[1], epochs=2,
                  callbacks=[EarlyStopping(patience=5)], quiet=True)
    assert len(history) == 2 and history.stopped is None
    with pytest.raises(ValueError, match=r"fit: Received 2 EarlyStopping callbacks; expected at most one"):
        fit(net, SoftmaxCrossEntropy(), SGD(net), data[0], callbacks=[EarlyStopping(), EarlyStopping()],
            quiet=True)
    with pytest.raises(TypeError, match=r"fit: Received parallel=2; expected None, cnnkit.train.parallel."
                                        r"Threads\(n\) or cnnkit.train.parallel.Processes\(n\)"):
        fit(net, SoftmaxCrossEntropy(), SGD(net), data[0], parallel=2, quiet=True)
    with pytest.raises(ValueError, match="EarlyStopping: Received patience=0"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="Invalid mode 'up'"):
        EarlyStopping(mode="up")
    with pytest.raises(TypeError, match="callbacks must be cnnkit.train.Callback objects, received builtin"):
        fit(net, SoftmaxCrossEntropy(), SGD(net), data[0], callbacks=[print], quiet=True)


def test_step_interval_schedule_and_clipping(data):
    net = small_net()
    opt = SGD(net, lr=0.1)
    sched = StepLR(opt, step_size=len(data[0]), gamma=0.5, interval="step")   # halves once per epoch
    history = fit(net, SoftmaxCrossEntropy(), opt, data[0], epochs=3, scheduler=sched, clip_norm=0.5,
                  quiet=True)
    assert history["lr"] == [0.1, 0.05, 0.025]


def test_bitwise_resume_with_cnnkit_dataloader(tmp_path):
    """The same with cnnkit.data.DataLoader (shuffle and crop+flip augmentation seeded by (seed, epoch))."""
    from cnnkit.data import ArrayDataset, DataLoader

    x, y = blobs(48)
    images = (np.clip(x, 0, 1.5) * 170).astype(np.uint8)
    ds = ArrayDataset(images, y, ["a", "b", "c"])

    def run(epochs, name, resume=None):
        net = small_net(seed=0 if resume is None else 5)
        opt = Adam(net, lr=0.01)
        loader = DataLoader(ds, 16, shuffle=True, seed=3, augment="crop+flip", normalize="auto")
        fit(net, SoftmaxCrossEntropy(), opt, loader, epochs=epochs, checkpoint=tmp_path / name, resume=resume,
            quiet=True)
        return net

    straight = run(2, "a.npz")
    run(1, "b.npz")
    resumed = run(2, "b.npz", resume=tmp_path / "b.npz")
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert np.array_equal(a, b)
