"""`cnnkit finetune --resume RUN`: a fine-tuning run stopped by Ctrl-C continues where it stopped, as
`cnnkit train --resume` does, and ends exactly where the same run without the interruption ends."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time

import numpy as np
import pytest
from cli_helpers import interrupt, run_main

from cnnkit import models
from cnnkit.cli import runs
from cnnkit.data import Preprocessing
from cnnkit.io import load_checkpoint, save

CNNKIT = shutil.which("cnnkit")


@pytest.fixture
def pretrained(tmp_path):
    """A LeNet-5 for 5 classes with its input recipe: fine-tuning on the 10 digits gives it a new head."""
    recipe = Preprocessing((1, 28, 28), mean=[0.13], std=[0.31], classes=list("01234"))
    return save(models.get("lenet5", num_classes=5, rng=np.random.default_rng(0)), tmp_path / "lenet5.npz",
                preprocessing=recipe)


def finetune_args(source, run):
    return ["finetune", source, "--limit", "200", "--epochs", "3", "--freeze-until", "pool1", "--lr", "0.01",
            "--out", run, "--no-report", "--quiet"]


def test_an_interrupted_finetune_resumes_to_the_uninterrupted_result(pretrained, tmp_path, capsys,
                                                                     monkeypatch):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    code, _, err = run_main(finetune_args(pretrained, straight), capsys)
    assert code == 0, err

    def ctrl_c(self, epoch, step, loss):  # Ctrl-C in the third step of epoch 2 (0-based epoch 1)
        if (epoch, step) == (1, 3):
            os.kill(os.getpid(), signal.SIGINT)

    with monkeypatch.context() as patch:
        patch.setattr(runs.Where, "on_batch_end", ctrl_c)
        code, out, err = run_main(finetune_args(pretrained, stopped), capsys)
    assert code == 130
    assert err.splitlines() == [f"interrupted in epoch 2; resume with: cnnkit finetune --resume {stopped}"]
    assert load_checkpoint(stopped).epoch == 1 and not (stopped / "metrics.json").exists()

    code, out, err = run_main(["finetune", "--resume", stopped, "--no-report"], capsys)
    assert code == 0, err
    assert out.startswith(f"cnnkit finetune: resuming {stopped} ({pretrained}) on embedded (200 train")
    assert f"resumed from {stopped / 'checkpoint.npz'} after epoch 1" in out
    assert "test accuracy" in out and "after 3 epochs of fine-tuning" in out

    a, b = load_checkpoint(straight), load_checkpoint(stopped)
    assert a.epoch == b.epoch == 3
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        np.testing.assert_array_equal(x, y, err_msg=name)  # bitwise: same weights, same optimizer steps
    for key, value in a.optimizer["state"].items():
        np.testing.assert_array_equal(value, b.optimizer["state"][key], err_msg=key)  # the momentum buffers
    assert [n for n, p in b.model.named_parameters() if not p.trainable] == ["conv1.weight", "conv1.bias"]
    records = [[{k: v for k, v in r.items() if k != "time"} for r in c.extra["fit"]["history"]["records"]]
               for c in (a, b)]
    assert records[0] == records[1]
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (straight, stopped)]
    assert metrics[0]["test_accuracy"] == metrics[1]["test_accuracy"] and metrics[1]["epochs"] == 3
    assert metrics[1]["frozen_parameters"] == 2
    commands = json.loads((stopped / "run.json").read_text())["commands"]
    assert len(commands) == 2 and commands[1].endswith(f"--resume {stopped} --no-report")
    assert {"history.json", "history.csv", "summary.txt"} <= {p.name for p in stopped.iterdir()}


def test_resume_errors(pretrained, tmp_path, capsys):
    run = tmp_path / "run"
    code, _, err = run_main(["finetune", "--resume", run], capsys)
    assert code == 1 and f"{run}: no such checkpoint" in err, err
    code, _, err = run_main(["finetune"], capsys)
    assert code == 2 and "give the network to fine-tune" in err and "--resume RUN" in err
    save(models.get("lenet5", rng=np.random.default_rng(0)), run / "checkpoint.npz",
         extra={"metadata": {"train": {"model": "lenet5"}, "commands": ["cnnkit train"]}})
    code, _, err = run_main(["finetune", "--resume", run], capsys)
    assert code == 1 and f"was written by cnnkit train; continue it with: cnnkit train --resume {run}" in err
    code, _, err = run_main(["finetune", pretrained, "--resume", run], capsys)
    assert code == 2 and "leave out SOURCE" in err
    code, _, err = run_main(["finetune", "--resume", run, "--freeze-until", "conv1"], capsys)
    assert code == 2 and "leave out --freeze-until" in err
    save(models.get("lenet5", rng=np.random.default_rng(0)), run / "checkpoint.npz",
         extra={"metadata": {"finetune": {"source": "x.npz"}}})
    code, _, err = run_main(["train", "--resume", run], capsys)
    assert code == 1 and f"was written by cnnkit finetune; continue it with: cnnkit finetune --resume {run}" \
        in err


@pytest.mark.skipif(CNNKIT is None, reason="the cnnkit console script is not installed")
def test_ctrl_c_in_a_real_finetune_prints_the_resume_line(pretrained, tmp_path):
    run = tmp_path / "run"

    def in_epoch_two(process):
        if not process.stdout.readline().startswith("epoch 1/2  loss"):  # epoch 1's summary line
            return False
        while load_checkpoint(run).epoch != 1:  # written atomically: a reader sees epoch 0 or 1, whole
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.05)
        return True

    command = [CNNKIT, "finetune", str(pretrained), "--limit", "2000", "--epochs", "2", "--out", str(run),
               "--no-report"]
    code, _, err = interrupt(command, in_epoch_two)
    assert code == 130, err
    # Where it lands depends on the machine's speed: in epoch 2, or in the test evaluation after it.
    where = "(in epoch 2|in the test evaluation after epoch 2)"
    resume = f"resume with: cnnkit finetune --resume {re.escape(str(run))}"
    assert re.fullmatch(rf"interrupted {where}; {resume}\n", err), err
    assert load_checkpoint(run).epoch in (1, 2)
