"""Data-parallel training over MPI: 2 ranks x batch B equal 1 process x batch 2B; a dead rank ends the job."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason='needs the [mpi] extra: pip install "cnnkit[mpi]"')
sys.path.insert(0, str(Path(__file__).parent))
from mpi_helpers import assert_same_weights  # noqa: E402

JOB = Path(__file__).with_name("mpi_job.py")
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
SRC = str(Path(__file__).resolve().parents[3] / "src")


def run(args, n=None, timeout=120):
    cmd = [sys.executable, str(JOB), *map(str, args)]
    if n is not None:
        cmd = [MPIEXEC, "-n", str(n), *cmd]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": SRC}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_two_ranks_equal_one_process_with_double_batch(tmp_path):
    steps = 6
    one = run([tmp_path / "one.npz", 32, steps])
    assert one.returncode == 0, one.stderr
    two = run([tmp_path / "two.npz", 16, steps], n=2)
    assert two.returncode == 0, two.stderr
    a, b = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert_same_weights(a, b)
    # and the training really moved the weights (a job that does nothing would also "agree")
    start = run([tmp_path / "start.npz", 32, 0])
    assert start.returncode == 0, start.stderr
    assert np.abs(np.load(tmp_path / "start.npz")["0.weight"] - a["0.weight"]).max() > 1e-3


def test_synchronized_batch_norm_equals_one_process_with_double_batch(tmp_path):
    """With sync_batchnorm the ranks normalise over the global batch: the same as one process with 2B."""
    one = run([tmp_path / "one.npz", 32, 6, "--batchnorm"])
    assert one.returncode == 0, one.stderr
    two = run([tmp_path / "two.npz", 16, 6, "--batchnorm", "--sync-bn"], n=2)
    assert two.returncode == 0, two.stderr
    a, b = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert_same_weights(a, b)
    assert int(b["1.num_batches_tracked"]) == 6
    # kept per rank (the default), batch statistics differ from the double batch's, and so do the weights
    local = run([tmp_path / "local.npz", 16, 6, "--batchnorm"], n=2)
    assert local.returncode == 0, local.stderr
    c = np.load(tmp_path / "local.npz")
    assert np.abs(c["1.running_mean"] - a["1.running_mean"]).max() > 1e-4


def test_a_killed_rank_stops_the_whole_job(tmp_path):
    began = time.monotonic()
    result = run([tmp_path / "never.npz", 16, 1000, "--die-at", 3], n=2, timeout=90)
    assert result.returncode != 0
    assert time.monotonic() - began < 60
    assert not (tmp_path / "never.npz").exists()


def test_cnnkit_train_distributed_writes_one_run_directory(tmp_path):
    """`mpiexec -n 2 cnnkit train --distributed`: rank 0 alone prints and writes the run directory."""
    out = tmp_path / "run"
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "cnnkit", "train", "--distributed", "--limit", "1000",
           "--epochs", "1", "--no-report", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": SRC}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stderr
    assert "2 ranks x batch 32 = effective batch 64" in result.stdout
    assert "0.002 x 2 = 0.004" in result.stdout
    assert result.stdout.count("test accuracy") == 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", "history.csv", "history.json",
                                                     "metrics.json", "run.json", "summary.txt"]
    import json
    assert json.loads((out / "metrics.json").read_text())["test_accuracy"] > 0.3


def test_a_last_line_waits_until_the_launcher_has_read_it(tmp_path):
    """Before MPI_Abort a rank waits until hydra's proxy has read its output (mpiexec forwards nothing after
    the abort): True once the pipe is empty, False when nobody reads it within the grace; files pass."""
    import threading

    from cnnkit.train.parallel.supervisor import wait_until_read

    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"rank 1 of 4 on node1: Allreduce did not complete\n")
        assert wait_until_read(0.2, fds=(write_end,)) is False  # nobody read it
        reader = threading.Timer(0.1, os.read, (read_end, 1000))  # a launcher that is late
        reader.start()
        assert wait_until_read(30, fds=(write_end,)) is True
        reader.join()
    finally:
        os.close(read_end)
        os.close(write_end)
    with open(tmp_path / "log", "w") as file:  # a file (or a terminal) is never waited for
        file.write("line\n")
        file.flush()
        assert wait_until_read(30, fds=(file.fileno(),)) is True
