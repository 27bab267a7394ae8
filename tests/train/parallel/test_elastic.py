"""Elastic resume: a checkpoint written by N ranks continues on M ranks (M = 1 included) exactly as one
process with M x the batch and M x the learning rate continues it; the schedule keeps its place."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason='needs the [mpi] extra: pip install "cnnkit[mpi]"')
sys.path.insert(0, str(Path(__file__).parent))
from mpi_helpers import MPIEXEC, assert_same_weights, checkpoint_weights, cnnkit_train, environment  # noqa: E402

SMALL = ("--limit", 240, "--optimizer", "sgd", "--threads", 1)


def run(command, n=None):
    if n is not None:
        command = [MPIEXEC, "-n", str(n), *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, env=environment())
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def two_rank_checkpoint(tmp_path_factory):
    """Epoch 1 of 2 by 2 ranks x 16 images at 0.025 x 2 (the run directory)."""
    out = tmp_path_factory.mktemp("elastic") / "two"
    run(cnnkit_train("--distributed", *SMALL, "--epochs", 1, "--batch-size", 16, "--lr", 0.025,
                     "--out", out), n=2)
    return out


@pytest.mark.parametrize("ranks", [3, 1])
def test_m_ranks_from_an_n_rank_checkpoint_equal_one_process_with_m_times_the_batch(
        two_rank_checkpoint, tmp_path, ranks):
    distributed, single = tmp_path / "distributed", tmp_path / "single"
    shutil.copytree(two_rank_checkpoint, distributed)
    shutil.copytree(two_rank_checkpoint, single)
    said = run(cnnkit_train("--distributed", "--resume", distributed, "--epochs", 2), n=ranks)
    assert f"resuming on {ranks} rank(s) a checkpoint written by 2: effective batch 32 -> {16 * ranks}, " \
           f"learning rate 0.05 -> {0.025 * ranks:g}" in said
    run(cnnkit_train("--resume", single, "--epochs", 2, "--batch-size", 16 * ranks, "--lr", 0.025 * ranks))
    a, b = checkpoint_weights(single), checkpoint_weights(distributed)
    assert_same_weights(a, b)
    assert np.abs(a["conv1.weight"] - checkpoint_weights(two_rank_checkpoint)["conv1.weight"]).max() > 1e-4
    # epoch 2 starts halfway down the cosine of this run: half of this run's peak rate
    for run_directory in (single, distributed):
        records = json.loads((run_directory / "history.json").read_text())["records"]
        assert [r["epoch"] for r in records] == [1, 2]
        assert math.isclose(records[-1]["lr"], 0.025 * ranks / 2, rel_tol=1e-6)
