"""`cnnkit report RUN` on a folder with nothing to report: one line naming the folder and what it lacks,
exit status 1, and no page written (it used to write a 0.1 MB page of empty sections)."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_main

from cnnkit import models
from cnnkit.io import save


def lenet(path, **saved):
    return save(models.get("lenet5", rng=np.random.default_rng(0)), path / "checkpoint.npz", **saved)


def refused(capsys, tmp_path, run, *more):
    code, out, err = run_main(["report", run, *more], capsys)
    assert code == 1 and out == "" and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not list(tmp_path.rglob("*.html"))  # no page, in the run or anywhere else
    return err.strip()


@pytest.mark.parametrize("command", ["train", "finetune"])
def test_a_run_stopped_in_its_first_epoch_is_refused_with_the_resume_command(tmp_path, capsys, command):
    run = tmp_path / "run"  # as Ctrl-C in epoch 1 leaves it: run.json and the epoch-0 checkpoint
    lenet(run, epoch=0, extra={"metadata": {command: {"epochs": 2}, "data": "embedded"}})
    assert refused(capsys, tmp_path, run) == (
        f"cnnkit: error: report: {run} has no finished epoch to report (its checkpoint.npz is from before "
        f"epoch 1, and there is no history.json); continue the run first: cnnkit {command} --resume {run}")
    assert refused(capsys, tmp_path, run, "--out", tmp_path / "elsewhere.html").endswith(f"--resume {run}")


def test_folders_that_are_not_runs_are_refused(tmp_path, capsys):
    assert f"report: {tmp_path} is not a run directory: it has no checkpoint.npz" in \
        refused(capsys, tmp_path, tmp_path)
    missing = tmp_path / "nowhere"
    assert f"report: {missing} is not a directory (nothing there); pass the run directory" in \
        refused(capsys, tmp_path, missing)
    checkpoint = lenet(tmp_path / "run", epoch=3)
    assert f"{checkpoint} is not a directory; give its folder, {checkpoint.parent};" in \
        refused(capsys, tmp_path, checkpoint)
    bare = tmp_path / "bare"
    lenet(bare)  # ck.save from Python: no epoch, no history
    assert f"report: {bare} has no training history to report" in refused(capsys, tmp_path, bare)
