"""--download on the commands that read data (a file mirror stands in for the official servers: the MD5
check, the progress lines, the offline advice in the shell's words), the training options users expect
(--val-split, --weight-decay, --early-stopping, --schedule), and help that reads well in 80 columns."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from cnnkit import runtime
from cnnkit.cli import main
from cnnkit.data import SOURCES
from cnnkit.data.download import md5sum
from cnnkit.fast import measure
from cnnkit.io import load_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from data_helpers import write_mnist_like  # noqa: E402

CNNKIT = shutil.which("cnnkit")


def run_main(args, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """MNIST-format files served from a file:// mirror, with their real MD5s in SOURCES."""
    rng = np.random.default_rng(0)
    served = {}
    for split, n in (("train", 64), ("test", 16)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        for path in write_mnist_like(tmp_path / "mirror", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                                     labels, split):
            served[path.name] = path
    source = dataclasses.replace(SOURCES["mnist"], mirrors=((tmp_path / "mirror").as_uri() + "/",),
                                 files={name: md5sum(path) for name, path in served.items()})
    monkeypatch.setitem(SOURCES, "mnist", source)
    monkeypatch.setenv("CNNKIT_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache" / "mnist"


def test_download_fetches_checks_and_shows_progress(mirror, tmp_path, capsys):
    code, out, err = run_main(["train", "--data", "mnist", "--download", "--epochs", "1", "--no-report",
                               "--out", tmp_path / "run", "--quiet"], capsys)
    assert code == 0, err
    assert "test accuracy" in out
    assert sorted(p.name for p in mirror.iterdir()) == sorted(SOURCES["mnist"].files)  # no temporaries left
    assert "downloading train-images-idx3-ubyte.gz: " in err and "KiB" in err
    code, out, err = run_main(["evaluate", tmp_path / "run", "--download", "--json"], capsys)
    assert code == 0 and json.loads(out)["n"] == 16 and "downloading" not in err  # present: nothing fetched


def test_missing_data_and_offline_advice_speak_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNNKIT_DATA", str(tmp_path / "cache"))
    code, _, err = run_main(["train", "--data", "mnist", "--out", tmp_path / "run"], capsys)
    assert code == 1 and err.count("\n") == 1
    assert "mnist: the train files are not in" in err and "run again with --download" in err
    assert "give --root DIR (or set CNNKIT_DATA)" in err and "root=" not in err and "download=True" not in err

    def offline(url, timeout):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    code, _, err = run_main(["train", "--data", "mnist", "--download", "--out", tmp_path / "run"], capsys)
    assert code == 1 and err.count("\n") == 1
    assert "could not download https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz" \
        in err
    assert "Without a network, put train-images-idx3-ubyte.gz" in err and "give --root DIR" in err
    assert not (tmp_path / "cache" / "mnist").exists() or not any((tmp_path / "cache" / "mnist").iterdir())


def test_training_options(tmp_path, capsys):
    run = tmp_path / "run"
    code, out, err = run_main(["train", "--limit", "300", "--epochs", "3", "--val-split", "0.2",
                               "--weight-decay", "1e-4", "--early-stopping", "1", "--schedule", "none",
                               "--no-report", "--out", run], capsys)
    assert code == 0, err
    assert "adam lr 0.002 (constant), weight decay 0.0001, 60 held out to validate, early stopping after 1 " \
           "epoch without progress" in out
    records = json.loads((run / "history.json").read_text())["records"]
    assert all("val_loss" in r and r["lr"] == 0.002 for r in records)
    settings = json.loads((run / "run.json").read_text())["train"]
    chosen = [settings[key] for key in ("val_split", "weight_decay", "early_stopping", "schedule")]
    assert chosen == [0.2, 1e-4, 1, "none"]
    code, _, err = run_main(["train", "--resume", run, "--optimizer", "sgd"], capsys)
    assert code == 2 and "the run was trained with --optimizer adam; resume it with that one" in err
    code, _, err = run_main(["train", "--schedule", "linear", "--limit", "10"], capsys)
    assert code == 2 and "'linear'; choose cosine, step, none" in err


def test_dispatch_measure_times_the_kernels_and_checkpoints_them(tmp_path, capsys, monkeypatch):
    """--dispatch measure: the 3x3 layers' kernels are timed (a cache file of this machine's choices), the
    checkpoint records them for --resume, the run's settings keep the option, and the process's runtime
    is left as it was (this test runs the CLI in the test process)."""
    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    measure.reset()
    try:
        run = tmp_path / "run"
        code, _, err = run_main(["train", "-m", "INPUT -> [CONV-8 -> RELU -> POOL]*2 -> FC", "--limit", "64",
                                 "--epochs", "1", "--dispatch", "measure", "--threads", "1", "--no-report",
                                 "--quiet", "--out", run], capsys)
        assert code == 0, err
        assert runtime.settings()["dispatch"] == "rules"
        [cache] = (tmp_path / "cache").glob("dispatch-*.json")
        choices = json.loads(cache.read_text())["choices"]
        trained = {entry: c["kernel"] for entry, c in choices.items() if entry.startswith("conv train x=")}
        assert trained and len(choices) > len(trained), choices  # the test-set evaluation measures too
        assert load_checkpoint(run / "checkpoint.npz").extra["fit"]["dispatch"]["kernels"] == trained
        assert json.loads((run / "run.json").read_text())["train"]["dispatch"] == "measure"
    finally:
        measure.reset()
    code, _, err = run_main(["train", "--dispatch", "fast", "--limit", "10"], capsys)
    assert code == 2 and "'fast'; choose rules or measure" in err


@pytest.mark.parametrize("model, elementwise", [
    ("INPUT -> CONV-4 -> BN -> RELU -> POOL -> FC", 2),  # batch norm: no slices, the kernels take the cores
    ("lenet5", 1),  # slice processes hold the cores
])
def test_train_gives_the_kernels_the_cores_slices_leave(model, elementwise, tmp_path, capsys, monkeypatch):
    import cnnkit.train

    seen, fit = [], cnnkit.train.fit

    def spying_fit(*args, **kwargs):
        seen.append(runtime.elementwise_threads())
        return fit(*args, **kwargs)

    monkeypatch.setattr(cnnkit.train, "fit", spying_fit)
    code, _, err = run_main(["train", "-m", model, "--limit", "64", "--epochs", "1", "--threads", "2",
                             "--no-report", "--quiet", "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    assert seen == [elementwise] and runtime.elementwise_threads() == 1


def test_step_schedule(tmp_path, capsys):
    code, out, err = run_main(["train", "--limit", "100", "--epochs", "3", "--schedule", "step",
                               "--no-report", "--out", tmp_path / "run", "--quiet"], capsys)
    assert code == 0, err
    records = json.loads((tmp_path / "run" / "history.json").read_text())["records"]
    assert [r["lr"] for r in records] == pytest.approx([0.002, 0.0002, 0.00002])


COMMANDS = [[], ["train"], ["evaluate"], ["predict"], ["export"], ["finetune"], ["report"], ["summary"],
            ["viz"], ["viz", "filters"], ["viz", "activations"], ["viz", "occlusion"], ["viz", "saliency"]]


@pytest.mark.skipif(CNNKIT is None, reason="the cnnkit console script is not installed")
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "cnnkit")
def test_help_reads_well_in_80_columns(command):
    env = {**os.environ, "COLUMNS": "80", "TERM": "xterm-256color"}
    run = subprocess.run([CNNKIT, *command, "--help"], capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    lines = run.stdout.splitlines()
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    text = run.stdout
    for junk in ("<bool>", "<str>", "<path>", "<int", "<float", "<list", "{checkpoint}", "[bold]",
                 "[default: ("):
        assert junk not in text, junk
    assert "╭" not in text  # no Rich panels: plain text that pipes and greps well


@pytest.mark.skipif(CNNKIT is None, reason="the cnnkit console script is not installed")
def test_version():
    from cnnkit import __version__

    run = subprocess.run([CNNKIT, "--version"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout == f"cnnkit {__version__}\n"
