"""`mpiexec -f hostfile cnnkit train --distributed` on two hosts over TCP, and what happens when one fails.

The two hosts are network namespaces on this machine joined by a veth pair (two_hosts.py): the ranks on
node1 and node2 talk TCP through it as on two machines (they share this machine's cores, which matters
for speed, not for what is tested here). Needs root; elsewhere every test here skips with the reason.
"""

import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mpi4py", reason='needs the [mpi] extra: pip install "cnnkit[mpi]"')
sys.path.insert(0, str(Path(__file__).parent))
import two_hosts  # noqa: E402
from mpi_helpers import assert_same_weights, checkpoint_weights, cnnkit_train  # noqa: E402

DEADLINE = 10  # CNNKIT_MPI_TIMEOUT here: how long MPI_Init and each collective may wait
ENV = {"CNNKIT_MPI_TIMEOUT": str(DEADLINE)}
SMALL = ("--limit", 256, "--optimizer", "sgd", "--threads", 1)  # 4 steps of 64 images per epoch
TINY = (*SMALL, "--epochs", 2)
# 4 ranks x 0.0125 = 1 process x 0.05 (SGD's default). A rougher rate (0.2) makes the weights swing so
# much that float32 rounding (1e-7 after a step) grows past 1e-4 in 8 steps, with batch norm.
RATES = {4: ("--lr", 0.0125), 1: ("--lr", 0.05)}
LONG = ("--limit", 2000, "--epochs", 50, "--batch-size", 16, "--optimizer", "sgd", "--threads", 1)


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    reason = two_hosts.why_not()
    if reason:
        pytest.skip(reason)
    two_hosts.remove_stale()
    hosts = two_hosts.TwoHosts(tmp_path_factory.mktemp("two-hosts"))
    try:
        yield hosts
    finally:
        hosts.down()


@pytest.fixture
def hosts(network):
    network.link("up")
    try:
        yield network
    finally:
        network.kill_all()  # nothing a test started outlives it, whatever it asserted


def test_four_ranks_on_two_hosts_equal_one_process_with_four_times_the_batch(hosts, tmp_path):
    received = hosts.received("node2")
    four = hosts.mpiexec(hosts.hostfile("node1:2\nnode2:2\n"), "-n", 4,
                         *cnnkit_train("--distributed", *TINY, "--batch-size", 16, *RATES[4],
                                       "--out", tmp_path / "four"))
    result = two_hosts.run(four, env=ENV, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "4 ranks x batch 16 = effective batch 64" in result.stdout
    received = hosts.received("node2") - received
    one = two_hosts.run(cnnkit_train(*TINY, "--batch-size", 64, *RATES[1], "--out", tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    assert_same_weights(checkpoint_weights(tmp_path / "one"), checkpoint_weights(tmp_path / "four"))
    # the gradients crossed the veth pair: at least one model's float32 gradient per step reached node2
    parameters = sum(v.size for v in checkpoint_weights(tmp_path / "one").values())
    assert received > 8 * parameters * 4


def test_synchronized_batch_norm_across_two_hosts(hosts, tmp_path):
    model = ("--model", "CONV3-8 -> BN -> RELU -> POOL -> FC")
    four = hosts.mpiexec(hosts.hostfile(), "-n", 4,
                         *cnnkit_train("--distributed", "--sync-bn", *model, *TINY, "--batch-size", 16,
                                       *RATES[4], "--out", tmp_path / "four"))
    result = two_hosts.run(four, env=ENV, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "batch norm synchronized" in result.stdout
    one = two_hosts.run(cnnkit_train(*model, *TINY, "--batch-size", 64, *RATES[1], "--out", tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    a, b = checkpoint_weights(tmp_path / "one"), checkpoint_weights(tmp_path / "four")
    assert_same_weights(a, b)  # running mean and variance included: all 64 images' statistics
    assert int(b["bn1.num_batches_tracked"]) == 8


def wait_for_epoch(run: Path, epoch: int, job, seconds: float = 120):
    """Wait until the run's checkpoint holds ``epoch`` finished epochs (training is under way)."""
    from cnnkit.io import load_checkpoint

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert job.poll() is None, job.communicate()[1]
        if (run / "checkpoint.npz").exists() and (load_checkpoint(run).epoch or 0) >= epoch:
            return
        time.sleep(0.3)
    raise AssertionError(f"no epoch {epoch} in {run} after {seconds} s")


def test_a_rank_killed_on_the_second_host_stops_the_job_naming_rank_and_host(hosts, tmp_path):
    command = cnnkit_train("--distributed", *LONG, "--out", tmp_path / "run")
    # the default deadline (120 s): what stops the job here is mpiexec, told by the rank's supervisor
    job = two_hosts.start(hosts.mpiexec(hosts.hostfile(), "-n", 4, *command))
    try:
        wait_for_epoch(tmp_path / "run", 1, job)
        victim = hosts.rank_process("node2", 3)
        assert victim is not None
        began = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        _, stderr = job.communicate(timeout=60)
    finally:
        two_hosts.stop(job)
    assert time.monotonic() - began < 60
    assert job.returncode != 0
    assert f"rank 3 of 4 on node2 (pid {victim}) ended by signal 9 (SIGKILL)" in stderr


def test_the_link_going_down_stops_the_job_at_its_deadline_and_the_checkpoint_resumes(hosts, tmp_path):
    run = tmp_path / "run"
    job = two_hosts.start(hosts.mpiexec(hosts.hostfile(), "-n", 4, *cnnkit_train(
        "--distributed", *LONG, "--out", run)), env=ENV)
    try:
        wait_for_epoch(run, 1, job)
        proxy = hosts.proxy_process("node1")
        assert proxy is not None
        hosts.link("down")
        began = time.monotonic()
        # node1's proxy (which forwards its ranks' output to mpiexec) kept off the CPU until 2 s past the
        # deadline, as a loaded machine does: it then finds the ranks' message and their MPI_Abort both
        # waiting, and mpiexec exits on the first abort it gets (in CI this lost every line, 2 runs in 4)
        with two_hosts.paused(proxy):
            time.sleep(DEADLINE + 2)
        _, stderr = job.communicate(timeout=60)
    finally:
        two_hosts.stop(job)
    assert time.monotonic() - began < 60
    assert job.returncode != 0
    assert f"did not complete within {DEADLINE} s: another rank has failed or the network between the " \
           f"hosts is down" in stderr
    # node2 cannot be told to stop (the link is down): its ranks stop at their own deadline
    deadline = time.monotonic() + 60
    while hosts.pids("node2") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert hosts.pids("node2") == []
    hosts.link("up")
    from cnnkit.io import load_checkpoint

    done = load_checkpoint(run).epoch
    assert done >= 1
    again = two_hosts.run(hosts.mpiexec(hosts.hostfile(), "-n", 4, *cnnkit_train(
        "--distributed", "--resume", run, "--epochs", done + 1)), env=ENV, timeout=180)
    assert again.returncode == 0, again.stderr
    assert f"resumed from {run / 'checkpoint.npz'} after epoch {done}" in again.stdout
    assert load_checkpoint(run).epoch == done + 1


BAD = {  # hostfile -> the one line that says what is wrong
    "unknown host": ("node1:2\nnodex:2\n", "ssh: Could not resolve hostname nodex"),
    "no such hostfile": (None, "unable to open host file"),
    "unreachable host": ("node1:2\nnode3:2\n", "ssh: connect to host node3 port 22: No route to host"),
    "network down": ("node1:2\nnode2:2\n", 'unable to connect from "node2" to "10.77.0.1" (Network is '
                                          'unreachable)'),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_hostfile_or_an_unreachable_host_is_one_clear_error(hosts, tmp_path, case):
    text, message = BAD[case]
    hostfile = tmp_path / "missing" if text is None else hosts.hostfile(text, "bad")
    if case == "network down":
        hosts.link("down")
    result = two_hosts.run(hosts.mpiexec(hostfile, "-n", 4, *cnnkit_train("--distributed", *TINY)),
                           env=ENV, timeout=DEADLINE + 50)  # a hang would raise TimeoutExpired
    assert result.returncode != 0
    assert message in result.stderr


def test_a_rank_that_never_starts_stops_the_job_at_the_init_deadline(hosts, tmp_path):
    """node2 lacks a package: its rank fails before MPI_Init, where the other ranks would wait forever."""
    missing = [sys.executable, "-c", "import cnnkit_is_not_installed_on_this_host"]
    result = two_hosts.run(hosts.mpiexec(hosts.hostfile(), "-n", 3, *cnnkit_train("--distributed", *TINY),
                                         ":", "-n", 1, *missing), env=ENV, timeout=DEADLINE + 50)
    assert result.returncode != 0
    assert "No module named 'cnnkit_is_not_installed_on_this_host'" in result.stderr
    # the first rank whose deadline passes says so; mpiexec then stops the others
    said = rf"rank [012] of 4 on node[12]: MPI_Init did not complete within {DEADLINE} s"
    assert re.search(said, result.stderr)


def test_a_two_rank_checkpoint_resumes_on_four_ranks_across_the_hosts(hosts, tmp_path):
    """Elastic resume: 2 ranks on node1 write epoch 1; 4 ranks on two hosts continue it exactly as one
    process with 4 x the batch and 4 x the learning rate continues the same checkpoint."""
    two = hosts.mpiexec(hosts.hostfile("node1:2\n", "one-host"), "-n", 2,
                        *cnnkit_train("--distributed", *SMALL, "--epochs", 1, "--batch-size", 16,
                                      *RATES[4], "--out", tmp_path / "four"))
    result = two_hosts.run(two, env=ENV, timeout=180)
    assert result.returncode == 0, result.stderr
    shutil.copytree(tmp_path / "four", tmp_path / "one")
    four = two_hosts.run(hosts.mpiexec(hosts.hostfile(), "-n", 4, *cnnkit_train(
        "--distributed", "--resume", tmp_path / "four", "--epochs", 2)), env=ENV, timeout=180)
    assert four.returncode == 0, four.stderr
    assert "resuming on 4 rank(s) a checkpoint written by 2: effective batch 32 -> 64, learning rate " \
           "0.025 -> 0.05" in four.stdout
    one = two_hosts.run(cnnkit_train("--resume", tmp_path / "one", "--epochs", 2, "--batch-size", 64,
                                     *RATES[1]))
    assert one.returncode == 0, one.stderr
    assert_same_weights(checkpoint_weights(tmp_path / "one"), checkpoint_weights(tmp_path / "four"))
