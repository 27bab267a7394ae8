"""The input recipe travels with the model through the installed `cnnkit`: a model trained and saved from
Python is evaluated with its own normalization, predict takes the recipe for bare weights and says what it
changed in an image, and a run trained with --root reopens without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.data import DataLoader, load

CNNKIT = shutil.which("cnnkit")
pytestmark = pytest.mark.skipif(CNNKIT is None, reason="the cnnkit console script is not installed")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from data_helpers import write_mnist_like  # noqa: E402


def cnnkit(*args, env=None):
    run = subprocess.run([CNNKIT, *map(str, args)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, **(env or {})})
    assert "Traceback" not in run.stderr, run.stderr
    return run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model trained by fit on normalized images and saved with ck.save, as in the README."""
    folder = tmp_path_factory.mktemp("python")
    train = load("embedded", "train")[:2000]
    loader = DataLoader(train, 64, shuffle=True, normalize="auto")
    net = ck.Sequential(ck.Flatten(), ck.Linear(784, 10, rng=np.random.default_rng(0)))
    ck.train.fit(net, ck.losses.SoftmaxCrossEntropy(), ck.optim.Adam(net, lr=0.01), loader, epochs=2,
                 quiet=True)
    ck.save(net, folder / "linear.npz")
    test = DataLoader(load("embedded", "test")[:500], 500, normalize=(loader.mean, loader.std))
    accuracy = ck.train.evaluate(net, test, ck.losses.SoftmaxCrossEntropy())["accuracy"]
    return folder / "linear.npz", accuracy, net


def test_evaluate_uses_the_normalization_saved_by_fit(trained):
    path, accuracy, _ = trained
    run = cnnkit("evaluate", path, "--data", "embedded", "--limit", "500", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert "note:" not in run.stderr


@pytest.fixture
def images(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    test = load("embedded", "test")
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(test.images[i, 0]).save(folder / f"digit{i}.png")
    wide = Image.fromarray(np.zeros((17, 300, 4), np.uint8), "RGBA")  # 300x17 RGBA
    wide.save(tmp_path / "wide.png")
    return folder, tmp_path / "wide.png"


def test_predict_takes_the_recipe_for_bare_weights(images, tmp_path):
    bare = tmp_path / "bare.npz"  # weights only: a model that was never given to fit
    ck.save(ck.Sequential(ck.Flatten(), ck.Linear(784, 10)), bare)
    folder, _ = images
    run = cnnkit("predict", bare, folder / "digit0.png")
    assert run.returncode == 1 and "records no input shape (a bare weights file); give it with --input" in \
        run.stderr
    run = cnnkit("predict", bare, folder / "digit0.png", "--input", "1x28x28", "--mean", "0.13", "--std",
                 "0.31", "--classes", ",".join("abcdefghij"), "-k", "1")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"{folder / 'digit0.png'}: ") and run.stdout.strip()[-7:-1].endswith("%")


def test_predict_reads_folders_and_patterns_prints_json_and_says_what_it_changed(trained, images):
    path, _, net = trained
    folder, wide = images
    run = cnnkit("predict", path, folder, str(folder / "digit[01].png"), wide, "--json", "-k", "2")
    assert run.returncode == 0, run.stderr
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    names = [Path(a["image"]).name for a in answers]
    assert names == ["digit0.png", "digit1.png", "digit2.png", "digit0.png", "digit1.png", "wide.png"]
    assert all(len(a["top"]) == 2 and 0 <= a["top"][0]["probability"] <= 1 for a in answers)
    x = net.preprocessing.apply(load("embedded", "test").images[:1])
    assert answers[0]["top"][0]["index"] == int(net.forward(x).argmax())
    assert run.stderr.strip() == (f"note: {wide}: alpha channel dropped, colour converted to grayscale, "
                                  f"resized from 300x17 to 28x28 (aspect ratio changed)")


def test_a_run_trained_with_root_reopens_without_it(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "elsewhere" / "mnist"
    for split, n in (("train", 60), ("test", 20)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        write_mnist_like(data, rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), labels, split)
    run_dir = tmp_path / "run"
    empty = {"CNNKIT_DATA": str(tmp_path / "empty")}
    trained = cnnkit("train", "--data", "mnist", "--root", data.parent, "--epochs", "1", "--no-report",
                     "--out", run_dir, "--quiet", env=empty)
    assert trained.returncode == 0, trained.stderr
    saved = json.loads((run_dir / "run.json").read_text())
    assert saved["train"]["root"] == str(data.parent.resolve())
    assert saved["preprocessing"]["input_shape"] == [1, 28, 28] and len(saved["preprocessing"]["mean"]) == 1
    assert saved["commands"] == [f"cnnkit train --data mnist --root {data.parent} --epochs 1 --no-report "
                                 f"--out {run_dir} --quiet"]
    again = cnnkit("evaluate", run_dir, env=empty)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("mnist/test: accuracy ") and "on 20 images" in again.stdout
