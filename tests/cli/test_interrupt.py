"""Ctrl-C during `cnnkit train`: the real command in a subprocess, SIGINT sent to its whole process group as
a terminal does. The workers ignore it, the command prints one line saying where it stopped and how to
resume, exits 130, and a run interrupted in its first epoch can be resumed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from cnnkit.io import load_checkpoint

CNNKIT = shutil.which("cnnkit")
pytestmark = pytest.mark.skipif(CNNKIT is None, reason="the cnnkit console script is not installed")


def _group_is_gone(pgid, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _group_size(pgid) -> int:
    """How many live processes are in process group ``pgid`` (read from /proc)."""
    count = 0
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            count += fields[0] != "Z" and int(fields[2]) == pgid
    return count


def test_ctrl_c_in_epoch_one_stops_cleanly_and_leaves_a_resumable_run(tmp_path):
    run = tmp_path / "run"
    # The embedded set's 10,000 images take several seconds an epoch: the interrupt lands in epoch 1.
    command = [CNNKIT, "train", "--epochs", "2", "--out", str(run), "--no-report", "--threads", "2"]
    train = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        header = [train.stdout.readline() for _ in range(2)]
        assert "2 processes (batch slices)" in header[1], header  # the worker processes get the signal too
        deadline = time.monotonic() + 60  # the workers started: training is under way, not still spawning
        while _group_size(train.pid) < 3 and time.monotonic() < deadline and train.poll() is None:
            time.sleep(0.05)
        time.sleep(0.5)
        os.killpg(train.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, err = train.communicate(timeout=120)
    finally:
        if train.poll() is None:
            os.killpg(train.pid, signal.SIGKILL)
    assert train.returncode == 130, err
    assert err.splitlines() == [f"interrupted in epoch 1; resume with: cnnkit train --resume {run}"], err
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err
    assert _group_is_gone(train.pid), "a worker process outlived the command"

    settings = json.loads((run / "run.json").read_text())
    assert settings["train"]["epochs"] == 2 and settings["input_shape"] == [1, 28, 28]
    assert settings["commands"][-1].startswith("cnnkit train --epochs 2 --out ")
    state = load_checkpoint(run / "checkpoint.npz")
    assert state.epoch == 0 and state.extra["metadata"]["normalize"]["mean"] == settings["normalize"]["mean"]

    resumed = subprocess.run([CNNKIT, "train", "--resume", str(run), "--epochs", "1", "--limit", "300",
                              "--no-report", "--quiet"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "test accuracy" in resumed.stdout
    assert load_checkpoint(run / "checkpoint.npz").epoch == 1
    commands = json.loads((run / "run.json").read_text())["commands"]
    assert len(commands) == 2 and "--resume" in commands[1]

