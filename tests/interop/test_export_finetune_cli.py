"""``cnnkit export`` and ``cnnkit finetune``: real small runs through cnnkit.cli.main, and their errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from cnnkit import models
from cnnkit.cli import main
from cnnkit.interop.torch import load_torch_weights, to_torch
from cnnkit.io import load, load_checkpoint, save

torch = pytest.importorskip("torch")


def run_main(args, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.fixture
def checkpoint(tmp_path):
    """A LeNet-5 for 5 classes saved as `cnnkit train` saves it (with the metadata the commands read)."""
    model = models.get("lenet5", num_classes=5, rng=np.random.default_rng(0))
    metadata = {"input_shape": [1, 28, 28], "classes": list("01234"), "data": "embedded",
                "normalize": {"mean": [0.13], "std": [0.31]}}
    return save(model, tmp_path / "pretrained.npz", extra={"metadata": metadata}), model


def test_export_onnx_checks_the_file_against_cnnkit(checkpoint, tmp_path, capsys):
    path, model = checkpoint
    code, out, err = run_main(["export", path, "--format", "onnx", "--out", tmp_path / "m.onnx"], capsys)
    assert code == 0, err
    assert "ONNX opset 17, input (batch, 1, 28, 28)" in out and "onnxruntime matches cnnkit" in out
    from cnnkit.interop.onnx import run

    x = np.random.default_rng(1).standard_normal((3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(run(tmp_path / "m.onnx", x), model.eval().forward(x), rtol=1e-4, atol=1e-5)


def test_export_writes_the_preprocessing_and_defaults_to_the_run_directory(checkpoint, tmp_path, capsys):
    """RUN/model.onnx by default; the input recipe in the ONNX metadata_props and the safetensors header."""
    onnx = pytest.importorskip("onnx")
    path, model = checkpoint
    run = tmp_path / "run"
    save(model, run / "checkpoint.npz", preprocessing=load_checkpoint(path).preprocessing)
    code, out, err = run_main(["export", run], capsys)
    assert code == 0, err
    assert f"wrote {run / 'model.onnx'}" in out and "preprocessing in metadata_props (1x28x28 L" in out
    props = {p.key: p.value for p in onnx.load(run / "model.onnx").metadata_props}
    assert json.loads(props["mean"]) == pytest.approx([0.13])
    assert json.loads(props["classes"]) == list("01234")
    assert json.loads(props["cnnkit.preprocessing"])["input_shape"] == [1, 28, 28]
    code, out, err = run_main(["export", run, "--format", "safetensors"], capsys)
    assert code == 0, err
    from cnnkit.data import Preprocessing
    from cnnkit.interop.safetensors import read_metadata

    recipe = Preprocessing.from_strings(read_metadata(run / "model.safetensors"))
    assert recipe == load_checkpoint(path).preprocessing


def test_export_torch_and_safetensors_state_dicts(checkpoint, tmp_path, capsys, monkeypatch):
    path, model = checkpoint
    for fmt, name in [("torch", "m.pt"), ("safetensors", "m.safetensors")]:
        code, out, err = run_main(["export", path, "-f", fmt, "-o", tmp_path / name], capsys)
        assert code == 0, err
        assert "10 tensors (61,281 parameters)" in out
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    assert list(state) == list(to_torch(model).state_dict())
    monkeypatch.setitem(sys.modules, "torch", None)  # safetensors needs no torch
    fresh = load_torch_weights(models.get("lenet5", num_classes=5), tmp_path / "m.safetensors")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[key], value)


def test_export_errors(checkpoint, tmp_path, capsys):
    path, model = checkpoint
    code, _, err = run_main(["export", path, "--format", "keras", "--out", tmp_path / "x"], capsys)
    assert code == 2 and "'keras'; choose one of onnx, torch, safetensors" in err
    bare = save(model, tmp_path / "bare.npz")  # no metadata: the input shape is unknown
    code, _, err = run_main(["export", bare, "--format", "onnx", "--out", tmp_path / "x.onnx"], capsys)
    assert code == 2 and "does not record its input shape; give it, e.g. --input 3x32x32" in err
    shape = ["--input-shape", "1x28x28"]  # the old spelling of --input stays
    code, out, err = run_main(["export", bare, "-f", "onnx", "-o", tmp_path / "x.onnx", *shape], capsys)
    assert code == 0, err
    code, _, err = run_main(["export", bare, "-f", "onnx", "-o", tmp_path / "x.onnx", "--input-shape", "a,b"],
                            capsys)
    assert code == 2 and "'a,b': give positive sizes C x H x W" in err
    code, _, err = run_main(["export", tmp_path / "missing.npz", "-f", "onnx", "-o", tmp_path / "x"], capsys)
    assert code == 1 and "Traceback" not in err


def test_finetune_a_checkpoint_with_frozen_layers_and_a_new_head(checkpoint, tmp_path, capsys):
    path, model = checkpoint
    run = tmp_path / "run"
    code, out, err = run_main(["finetune", path, "--data", "embedded", "--limit", "200", "--epochs", "1",
                               "--freeze-until", "pool2", "--lr", "0.01", "--head-lr-mult", "10",
                               "--out", run], capsys)
    assert code == 0, err
    assert "new head fc3 (5 -> 10 classes); 4 parameters frozen up to pool2" in out
    assert "test accuracy" in out
    tuned = load_checkpoint(run)
    assert tuned.model.output_shape((1, 1, 28, 28)) == (1, 10)
    for key in ("conv1.weight", "conv2.bias"):  # frozen: exactly as pretrained
        np.testing.assert_array_equal(tuned.model.state_dict()[key], model.state_dict()[key])
    assert not np.array_equal(tuned.model.state_dict()["fc1.weight"], model.state_dict()["fc1.weight"])
    assert [n for n, p in tuned.model.named_parameters() if not p.trainable] == \
        ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"]
    metadata = tuned.extra["metadata"]
    norm = metadata["normalize"]  # the pretrained network's statistics, not the new data's
    assert norm["mean"] == pytest.approx([0.13]) and norm["std"] == pytest.approx([0.31])
    assert json.loads((run / "metrics.json").read_text())["frozen_parameters"] == 4
    # the same run directory as cnnkit train's (report.html only where matplotlib is installed)
    assert {"run.json", "history.json", "history.csv", "summary.txt"} <= {p.name for p in run.iterdir()}
    assert json.loads((run / "run.json").read_text())["commands"][0].startswith("cnnkit finetune ")
    assert tuned.preprocessing.mean == pytest.approx((0.13,)) and len(tuned.preprocessing.classes) == 10
    code, out, err = run_main(["evaluate", run, "--limit", "100"], capsys)  # the run is a normal run
    assert code == 0, err


def test_finetune_torch_weights_into_a_zoo_architecture(tmp_path, capsys):
    source = models.get("lenet5", num_classes=7, rng=np.random.default_rng(3))
    torch.save(to_torch(source).state_dict(), tmp_path / "lenet.pth")
    code, out, err = run_main(["finetune", tmp_path / "lenet.pth", "--model", "lenet5", "--limit", "100",
                               "--epochs", "1", "--out", tmp_path / "run", "--quiet"], capsys)
    assert code == 0, err
    tuned = load(tmp_path / "run")
    assert tuned.output_shape((1, 1, 28, 28)) == (1, 10)
    # not frozen, but the pretrained layers moved only a little at lr 0.005
    difference = np.abs(tuned.state_dict()["conv1.weight"] - source.state_dict()["conv1.weight"]).max()
    assert 0 < difference < 0.1


def test_finetune_errors(checkpoint, tmp_path, capsys):
    path, _ = checkpoint
    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pt")
    code, _, err = run_main(["finetune", tmp_path / "w.pt", "--limit", "10"], capsys)
    assert code == 2 and "name the architecture they fit with --model" in err
    code, _, err = run_main(["finetune", path, "--model", "lenet5", "--limit", "10"], capsys)
    assert code == 2 and "--model is only for torch weights" in err
    code, _, err = run_main(["finetune", path, "--freeze-until", "conv9", "--limit", "10", "--out",
                             tmp_path / "r"], capsys)
    assert code == 1 and "no layer named 'conv9'" in err
    code, _, err = run_main(["finetune", tmp_path / "w.pt", "--model", "lenet5", "--limit", "10"], capsys)
    assert code == 1 and "missing from the weights" in err
