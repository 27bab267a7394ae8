"""The cnnkit command: help for every command, one-line errors with exit codes, and a real small run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnkit.cli import app, main

SRC = Path(__file__).resolve().parents[2] / "src"
runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["predict"]], ids=["cnnkit", "train",
                                                                                     "evaluate", "predict"])
def test_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: cnnkit" in result.output or "Usage: root" in result.output
    if command == ["train"]:
        for option in ("--model", "--data", "--epochs", "--batch-size", "--lr", "--optimizer", "--seed",
                       "--out", "--resume", "--quiet"):
            assert option in result.output


def run_main(args, capsys):
    """(exit code, stdout, stderr) of cnnkit.cli.main(args)."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def assert_one_line(err):
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_missing_checkpoint_is_a_one_line_failure(capsys, tmp_path):
    code, _, err = run_main(["evaluate", str(tmp_path / "nope.npz")], capsys)
    assert code == 1
    assert_one_line(err)
    assert err.startswith("cnnkit: error: ") and "nope.npz: no such checkpoint file" in err


def test_unknown_model_names_the_closest(capsys, tmp_path):
    code, _, err = run_main(["train", "--model", "lenet6", "--limit", "20", "--out", str(tmp_path)], capsys)
    assert code == 1
    assert_one_line(err)
    assert "No model named 'lenet6'. Did you mean 'lenet5'" in err


@pytest.mark.parametrize("args,message", [
    (["train", "--bogus"], "No such option: --bogus"),
    (["train", "--optimizer", "adagrad"], "unknown optimizer 'adagrad'"),
    (["train", "--epochs", "0"], "--epochs"),
    (["predict"], "Missing argument 'CHECKPOINT'"),
    (["fly"], "No such command 'fly'"),
])
def test_usage_errors_exit_2(capsys, args, message):
    code, _, err = run_main(args, capsys)
    assert code == 2
    assert_one_line(err)
    assert message in err and "--help" in err


def test_corrupt_checkpoint_and_bad_image(capsys, tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    code, _, err = run_main(["predict", str(tmp_path / "bad.npz"), "x.png"], capsys)
    assert code == 1
    assert_one_line(err)
    assert "bad.npz: truncated or corrupt checkpoint" in err


def test_console_script_path_has_no_traceback(tmp_path):
    """The real process: `python -m cnnkit` with a user mistake prints one line and exits 1."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-m", "cnnkit", "evaluate", str(tmp_path / "missing.npz")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"cnnkit: error: {tmp_path / 'missing.npz'}: no such checkpoint file."


NO_REPORT = ('no report: cnnkit.viz draws with matplotlib, which is not installed; install it with: '
             'pip install "cnnkit[viz]"')


def drawing() -> bool:
    """Whether matplotlib (the viz extra) is installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_train_evaluate_predict_resume(capsys, tmp_path):
    """A small real run writes the run directory; evaluate and predict read it; resume adds an epoch."""
    run = tmp_path / "run"
    code, out, err = run_main(["train", "--epochs", "1", "--limit", "400", "--out", str(run), "--seed", "3"],
                              capsys)
    assert code == 0, err
    files = {"checkpoint.npz", "history.json", "history.csv", "metrics.json", "summary.txt", "run.json"}
    if drawing():  # the report needs matplotlib (the viz extra); training does not
        assert {p.name for p in run.iterdir()} == files | {"report.html"}
        assert out.splitlines()[-1] == f"report: {run / 'report.html'}"
    else:
        assert {p.name for p in run.iterdir()} == files
        assert out.splitlines()[-1] == NO_REPORT
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) >= {"test_accuracy", "test_loss"} and metrics["test_accuracy"] > 0.3
    assert out.splitlines()[0].startswith("cnnkit train: lenet5 (61,706 parameters) on embedded (400 train")
    assert out.splitlines()[-2].startswith(f"test accuracy {metrics['test_accuracy']:.2%}")
    assert "Total params: 61,706" in (run / "summary.txt").read_text()
    assert json.loads((run / "history.json").read_text())["records"][0]["epoch"] == 1

    code, out, err = run_main(["evaluate", str(run), "--limit", "400"], capsys)
    assert code == 0, err
    assert out.startswith(f"embedded/test: accuracy {metrics['test_accuracy']:.2%}")
    assert "true\\pred" in out

    from PIL import Image

    from cnnkit.data import load

    test = load("embedded", "test")
    Image.fromarray(test.images[0, 0]).save(tmp_path / "seven.png")            # white on black, like MNIST
    Image.fromarray(255 - test.images[1, 0]).save(tmp_path / "two_on_paper.png")  # dark on light: inverted
    code, out, err = run_main(["predict", str(run / "checkpoint.npz"), str(tmp_path / "seven.png"),
                               str(tmp_path / "two_on_paper.png"), "--top-k", "2"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{tmp_path / 'seven.png'}: ")
    assert len(lines[0].split("%)")) == 3   # two classes with probabilities

    code, out, err = run_main(["train", "--resume", str(run), "--epochs", "2", "--quiet"], capsys)
    assert code == 0, err
    quiet = out.strip().splitlines()
    assert quiet[0].startswith("test accuracy ") and quiet[1:] == ([] if drawing() else [NO_REPORT])
    history = json.loads((run / "history.json").read_text())["records"]
    assert [r["epoch"] for r in history] == [1, 2]
    assert np.isfinite(history[1]["train_loss"])


def test_bare_command_prints_help_only(capsys):
    code, out, err = run_main([], capsys)
    assert code == 2 and "Usage: cnnkit" in out and err == ""


def test_image_folder_with_a_pattern_model(capsys, tmp_path):
    """--data PATH (class folders of RGB PNGs) with a pattern-built model and augmentation."""
    from PIL import Image

    r = np.random.default_rng(0)
    for split in ("train", "test"):
        for k, name in enumerate(["red", "blue"]):
            folder = tmp_path / "shapes" / split / name
            folder.mkdir(parents=True)
            for i in range(6):
                pixels = r.integers(0, 60, (16, 16, 3), dtype=np.uint8)
                pixels[..., 0 if k == 0 else 2] += 150
                Image.fromarray(pixels).save(folder / f"{i}.png")
    run = tmp_path / "run"
    spec = "INPUT -> [CONV-8 -> RELU -> POOL]*2 -> FC"
    code, out, err = run_main(["train", "--data", str(tmp_path / "shapes"), "--model", spec, "--epochs", "2",
                               "--batch-size", "4", "--augment", "crop+flip", "--optimizer", "sgd",
                               "--out", str(run)], capsys)
    assert code == 0, err
    assert "(12 train / 12 test images of 3x16x16, 2 classes)" in out and "sgd lr 0.05" in out
    image = tmp_path / "shapes" / "test" / "blue" / "0.png"
    code, out, err = run_main(["predict", str(run), str(image), "-k", "1"], capsys)
    assert code == 0, err
    assert out.startswith(f"{image}: ") and ("blue (" in out or "red (" in out)
