"""User mistakes in the shell get one line and the right exit status, from the installed `cnnkit`: a PNG
where a checkpoint goes, an output folder that cannot be written (found before any data is read), a
memory budget without a unit, an input shape without a channel axis."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CNNKIT = shutil.which("cnnkit")
pytestmark = pytest.mark.skipif(CNNKIT is None, reason="the cnnkit console script is not installed")


def cnnkit(*args, cwd=None):
    run = subprocess.run([CNNKIT, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)
    assert "Traceback" not in run.stderr, run.stderr
    return run


def one_line(run, code):
    assert run.returncode == code, (run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


@pytest.fixture
def png(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    path = tmp_path / "digit.png"
    Image.new("L", (28, 28)).save(path)
    return path


@pytest.mark.parametrize("command", [["evaluate"], ["summary"], ["viz", "filters"], ["predict"],
                                     ["export", "--format", "onnx", "--out", "x.onnx"]])
def test_a_png_given_as_checkpoint_is_named(png, tmp_path, command):
    args = [*command[:1], png, *command[1:]] if command[0] != "viz" else [*command, png]
    if command[0] == "predict":
        args.append(png)
    line = one_line(cnnkit(*args, cwd=tmp_path), 1)
    assert line.endswith(f"{png}: this is a PNG image, not a cnnkit checkpoint (.npz).")


def test_a_text_file_given_as_checkpoint_is_named(tmp_path):
    (tmp_path / "notes.npz").write_text("loss 0.1\n")
    line = one_line(cnnkit("evaluate", tmp_path / "notes.npz"), 1)
    assert line == f"cnnkit: error: {tmp_path / 'notes.npz'}: this is a text file, not a cnnkit checkpoint " \
                   f"(.npz)."


def _unwritable_folders(tmp_path):
    """Folders made unwritable: one under a file; read-only /sys on Linux; chmod 555 unless root."""
    (tmp_path / "a-file").write_text("")
    folders = [(tmp_path / "a-file" / "run", "not a directory")]
    if Path("/sys").is_dir() and not os.access("/sys", os.W_OK):
        folders.append((Path("/sys/cnnkit-run"), ""))
    if os.geteuid() != 0:  # root writes through any mode bits
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        folders.append((locked / "run", "permission denied"))
    return folders


def test_an_unwritable_out_is_one_line_before_any_data_is_read(tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    for folder, reason in _unwritable_folders(tmp_path):
        # --data mnist with an empty --root would fail on the missing files: the folder is checked first.
        run = cnnkit("train", "--data", "mnist", "--root", empty, "--out", folder)
        line = one_line(run, 1)
        assert line.startswith(f"cnnkit: error: cannot write to {folder}: {reason}"), line
        assert line.endswith("(choose another --out)") and run.stdout == ""


def test_unwritable_outputs_of_the_other_commands(tmp_path):
    (tmp_path / "a-file").write_text("")
    blocked = tmp_path / "a-file" / "sub"
    line = one_line(cnnkit("finetune", "missing.npz", "--out", blocked), 1)
    assert line == f"cnnkit: error: cannot write to {blocked}: not a directory (choose another --out)"
    line = one_line(cnnkit("export", "missing.npz", "--format", "onnx", "--out", blocked / "m.onnx"), 1)
    assert line == f"cnnkit: error: cannot write to {blocked}: not a directory (choose another --out)"
    line = one_line(cnnkit("viz", "filters", "missing.npz", "--out", blocked / "f.png"), 1)
    assert line == f"cnnkit: error: cannot write to {blocked}: not a directory (choose another --out)"


def test_memory_sizes_are_binary_and_need_a_unit():
    line = one_line(cnnkit("summary", "lenet5", "--memory", "4"), 2)
    assert "'4': a number needs a unit, such as 512MB, 4GB or 8GiB" in line
    assert "KB, MB, GB are powers of 1024" in line
    run = cnnkit("summary", "lenet5", "--memory", "4GB")
    assert run.returncode == 0, run.stderr
    assert "Largest batch that fits in 4GB = 4.00 GiB (training): 60,465" in run.stdout  # the notes' number
    assert "Memory for a batch of 1 (training, float32): 551.44 KiB (564,672 bytes)" in run.stdout


def test_an_input_without_channels_says_c_x_h_x_w():
    line = one_line(cnnkit("summary", "resnet18", "--input", "224x224"), 2)
    assert "'224x224' has no channel axis: give C x H x W, e.g. 1x28x28 (grayscale) or 3x224x224 (RGB)" \
        in line
