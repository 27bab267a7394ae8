"""Ctrl-C of `cnnkit train` on two worker processes, at several moments of their start-up and first steps:
every time one line on stderr and exit 130 -- in particular no "leaked shared_memory objects" warning and
no KeyError from Python's resource tracker, which checks at exit that every shared block was unlinked once.
"""

from __future__ import annotations

import re
import shutil
import time

import pytest
from cli_helpers import interrupt

CNNKIT = shutil.which("cnnkit")
pytestmark = pytest.mark.skipif(CNNKIT is None, reason="the cnnkit console script is not installed")


# Seconds after the run's epoch-0 checkpoint appears: the workers are then about to be spawned, starting up
# (importing cnnkit), or stepping. Where the signal lands does not matter to the assertions.
@pytest.mark.parametrize("wait", [0.0, 0.3, 1.0, 2.5])
def test_ctrl_c_with_two_workers_prints_one_line_and_no_resource_tracker_warning(tmp_path, wait):
    run = tmp_path / "run"

    def resumable(process):  # the checkpoint is written atomically: once it exists, the run can resume
        if (run / "checkpoint.npz").exists():
            time.sleep(wait)
            return True
        time.sleep(0.01)
        return False

    # 8 epochs: on a fast machine epoch 1 may be over before the signal (1 s of the 2.5 s wait in CI)
    code, _, err = interrupt([CNNKIT, "train", "--epochs", "8", "--out", str(run), "--no-report",
                              "--threads", "2"], resumable)
    assert code == 130, err
    assert len(err.splitlines()) == 1, err
    hint = rf"interrupted in epoch [1-8]; resume with: cnnkit train --resume {re.escape(str(run))}"
    assert re.fullmatch(hint, err.strip()), err
