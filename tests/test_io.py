"""Checkpoints: round trip of weights, optimizer state, epoch, RNG, extra; never a pickle; atomic writes."""

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.io import CheckpointError, load_checkpoint
from cnnkit.layers import BatchNorm2d, Conv2d, Dropout, Flatten, Linear, ReLU, Residual, Sequential
from cnnkit.optim import Adam

SRC = Path(__file__).resolve().parents[1] / "src"


def _net(seed=0):
    r = np.random.default_rng(seed)
    body = Sequential(conv1=Conv2d(4, 4, 3, padding=1, rng=r), bn1=BatchNorm2d(4))
    block = Residual(body, activation=ReLU())
    return Sequential(Conv2d(1, 4, 3, padding=1, rng=r), block, Flatten(), Dropout(0.3, rng=r),
                      Linear(4 * 6 * 6, 5, rng=r))


def _step(net, opt, seed):
    x = np.random.default_rng(seed).standard_normal((3, 1, 6, 6)).astype(np.float32)
    y = net(x)
    opt.zero_grad()
    net.backward(np.ones_like(y))
    opt.step()


def test_round_trip_weights_optimizer_epoch_rng_extra(tmp_path):
    net = _net()
    net[1].get("conv1").weight.trainable = False
    opt = Adam(net, lr=0.01)
    for s in range(2):
        _step(net, opt, s)
    mean = np.array([0.5], np.float32)
    extra = {"classes": ["a", "b"], "normalize": {"mean": mean}, "note": [1, 2.5, None]}
    path = ck.save(net, tmp_path / "sub" / "model.npz", optimizer=opt, epoch=7, extra=extra)
    ckpt = load_checkpoint(path)
    assert ckpt.epoch == 7 and ckpt.version == ck.__version__
    assert ckpt.extra["classes"] == ["a", "b"] and ckpt.extra["note"] == [1, 2.5, None]
    np.testing.assert_array_equal(ckpt.extra["normalize"]["mean"], [0.5])
    assert ckpt.extra["normalize"]["mean"].dtype == np.float32
    model = ckpt.model
    assert model.config() == net.config() and not model.training
    for (k, a), b in zip(net.state_dict().items(), model.state_dict().values(), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b), k
    assert [p.trainable for p in model.parameters()] == [p.trainable for p in net.parameters()]
    # The optimizer continues exactly, and dropout draws the same masks as the original would.
    opt2 = Adam(model, lr=0.5).load_state_dict(ckpt.optimizer)
    model.train()
    _step(net, opt, 5)
    _step(model, opt2, 5)
    for a, b in zip(net.state_dict().values(), model.state_dict().values(), strict=True):
        assert np.array_equal(a, b)
    assert [f.name for f in tmp_path.joinpath("sub").iterdir()] == ["model.npz"]   # no temp file left


def test_float64_and_run_directory(tmp_path):
    net = Conv2d(2, 3, 3).astype(np.float64)
    ck.save(net, tmp_path / "checkpoint.npz")
    model = ck.load(tmp_path)   # a run directory holding checkpoint.npz
    assert model.weight.data.dtype == np.float64 and np.array_equal(model.weight.data, net.weight.data)


def _good_file(tmp_path):
    return ck.save(_net(), tmp_path / "good.npz", epoch=1)


class Exploit:
    """Unpickling this would create a file: the proof that nothing was unpickled is that it does not exist."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_object_arrays_and_pickles_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    header = np.frombuffer(b'{"format": "cnnkit-checkpoint", "format_version": 1}', np.uint8)
    obj = np.empty(1, dtype=object)
    obj[0] = Exploit(str(marker))
    with open(tmp_path / "evil.npz", "wb") as f:
        np.savez(f, __cnnkit__=header, **{"model/weight": obj})
    with pytest.raises(CheckpointError, match=r"evil.npz: refused: the array 'model/weight' is an object "
                                              r"array, which only unpickling could read; cnnkit never"):
        ck.load(tmp_path / "evil.npz")
    (tmp_path / "pickle.npz").write_bytes(pickle.dumps(Exploit(str(marker))))
    with pytest.raises(CheckpointError, match=r"pickle.npz: this is pickle data \(a Python pickle\), not a "
                                              r"cnnkit checkpoint \(.npz\); cnnkit never unpickles files"):
        ck.load(tmp_path / "pickle.npz")
    assert not marker.exists()
    with pytest.raises(TypeError, match="is an object array, which could only be stored by pickling"):
        ck.save(Conv2d(1, 1, 1), tmp_path / "x.npz", extra={"bad": obj})


def test_truncated_corrupt_and_foreign_files(tmp_path):
    good = _good_file(tmp_path)
    data = good.read_bytes()
    (tmp_path / "half.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="half.npz: truncated or corrupt checkpoint"):
        ck.load(tmp_path / "half.npz")
    flipped = bytearray(data)
    middle = len(flipped) // 3
    flipped[middle:middle + 64] = bytes(64)
    (tmp_path / "flipped.npz").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="flipped.npz: (truncated or corrupt|corrupt)"):
        ck.load(tmp_path / "flipped.npz")
    np.savez(tmp_path / "plain.npz", w=np.ones(3))
    with pytest.raises(CheckpointError, match=r"plain.npz: is an .npz file but not a cnnkit .* holds w\)"):
        ck.load(tmp_path / "plain.npz")
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(CheckpointError, match=r"single.npy: this is a single NumPy array \(.npy\), not a "):
        ck.load(tmp_path / "single.npy")
    with pytest.raises(FileNotFoundError, match="missing.npz: no such checkpoint file"):
        ck.load(tmp_path / "missing.npz")


def test_files_of_another_kind_are_named_before_parsing(tmp_path):
    """A PNG, a text file or an empty file where a checkpoint goes: said what it is, not "corrupt"."""
    (tmp_path / "digit.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(CheckpointError, match=r"digit.png: this is a PNG image, not a cnnkit checkpoint "
                                              r"\(.npz\)"):
        ck.load(tmp_path / "digit.png")
    (tmp_path / "notes.npz").write_text("loss 0.1\n")
    with pytest.raises(CheckpointError, match=r"notes.npz: this is a text file, not a cnnkit checkpoint"):
        ck.load(tmp_path / "notes.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.npz: this is an empty file, not a cnnkit checkpoint"):
        ck.load(tmp_path / "empty.npz")


def test_newer_format_and_unknown_layer_are_clear_errors(tmp_path):
    def write(header):
        with open(tmp_path / "h.npz", "wb") as f:
            np.savez(f, __cnnkit__=np.frombuffer(header.encode(), np.uint8))

    write('{"format": "cnnkit-checkpoint", "format_version": 99, "cnnkit_version": "9.0"}')
    with pytest.raises(CheckpointError, match="cnnkit 9.0 in format version 99; this cnnkit reads up to 1"):
        ck.load(tmp_path / "h.npz")
    write('{"format": "cnnkit-checkpoint", "format_version": 1, "architecture": {"type": "os.system"}}')
    with pytest.raises(CheckpointError, match="cannot rebuild the architecture: Unknown layer type 'os.sys"):
        ck.load(tmp_path / "h.npz")


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import cnnkit as ck
    net = ck.Sequential(ck.Conv2d(64, 64, 3), ck.Conv2d(64, 64, 3))   # 300 kB of weights, 8 MB of pad
    path, i = sys.argv[1], 0
    while True:
        i += 1
        net[0].bias.data[0] = i                  # the epoch number, to see that the file is whole
        ck.save(net, path, epoch=i, extra={"pad": np.full(2_000_000, i, np.float32)})
        print(i, flush=True)
""")


def test_kill_during_write_leaves_a_loadable_checkpoint_and_the_next_save_removes_the_litter(tmp_path):
    """Writers saving in a loop are killed with SIGKILL at random moments: the file always loads whole, and
    the temporary files the kills leave behind are gone after the next save."""
    path = tmp_path / "checkpoint.npz"
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    r = np.random.default_rng(0)
    torn = 0   # kills that landed mid-write (they leave a temporary file behind): the case being tested
    for trial in range(8):
        # two writers at once, as two jobs sharing a folder would, both killed at one random moment
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, env=env)
                 for _ in range(2)]
        for proc in procs:
            first = proc.stdout.readline()       # one save has completed
            assert first.strip().isdigit(), first
        time.sleep(float(r.uniform(0.05, 0.3)))
        for proc in procs:
            os.kill(proc.pid, signal.SIGKILL)
        for proc in procs:
            proc.wait()
            proc.stdout.close()
        ckpt = load_checkpoint(path)
        assert ckpt.model[0].bias.data[0] == ckpt.epoch >= 1, trial
        assert np.all(ckpt.extra["pad"] == ckpt.epoch)
        # (each new writer's first save has already removed the litter of the trial before)
        litter = [f for f in tmp_path.iterdir() if f.name != "checkpoint.npz"]
        assert all(f.name.startswith(".checkpoint.npz.") and f.suffix == ".tmp" for f in litter)
        torn = len(litter)
        if torn == 2 or (torn == 1 and trial >= 3):
            break
    assert torn >= 1, "no kill landed during a write in the last trial; the test proved nothing"
    ck.save(_net(), path, epoch=99)
    assert [f.name for f in tmp_path.iterdir()] == ["checkpoint.npz"]
    assert load_checkpoint(path).epoch == 99


LIVE_WRITER = textwrap.dedent("""
    import sys
    from cnnkit.io import atomic_write

    def write(f):
        f.write(b"half a checkpoint")
        f.flush()
        print("writing", flush=True)
        sys.stdin.readline()                     # hold the temporary file open until the test says so
        f.write(b", and the rest")

    atomic_write(sys.argv[1], write)
""")


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads process start times from /proc")
def test_a_live_writers_temporary_file_and_foreign_names_are_kept(tmp_path):
    from cnnkit.io import remove_stale_temporaries, temporary_name

    path = tmp_path / "checkpoint.npz"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    live = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert live.stdout.readline() == "writing\n"
    writing = [f.name for f in tmp_path.iterdir()]
    assert len(writing) == 1 and writing[0].startswith(f".checkpoint.npz.{live.pid}.")
    # a writer that was killed but not yet reaped by its parent (a zombie) writes nothing more
    zombie = subprocess.Popen(["sleep", "60"])
    ours = temporary_name("checkpoint.npz").split(".")  # '', checkpoint, npz, pid, start, host, hex, tmp
    start = Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    os.kill(zombie.pid, signal.SIGKILL)
    time.sleep(0.1)
    stale = [f".checkpoint.npz.{zombie.pid}.{start}.{ours[5]}.0badf00d.tmp",
             f".checkpoint.npz.{os.getpid()}.{int(ours[4]) + 1}.{ours[5]}.0badf00d.tmp"]  # a reused pid
    kept = [".checkpoint.npz.1.0.another-host.0badf00d.tmp",   # another machine's pid: cannot be checked
            ".checkpoint.npz.1234567.abcdef12.tmp",             # not our pattern (older cnnkit): left alone
            "notes.tmp", ".checkpoint.npz.x.tmp"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x")
    removed = remove_stale_temporaries(tmp_path)
    zombie.wait()
    assert sorted(p.name for p in removed) == sorted(stale)
    ck.save(_net(), path, epoch=1)   # a save beside a live writer leaves its temporary file alone
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(["checkpoint.npz", *writing, *kept])
    live.communicate("go\n", timeout=30)
    assert live.returncode == 0
    assert path.read_bytes() == b"half a checkpoint, and the rest"
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(["checkpoint.npz", *kept])
