"""ONNX files in the commands: ``cnnkit summary/viz/export/finetune model.onnx``; an imported LeNet-5
fine-tunes exactly as the same network loaded from a cnnkit checkpoint."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from cnnkit import models
from cnnkit.analysis import summary
from cnnkit.cli import main
from cnnkit.io import save

onnx = pytest.importorskip("onnx")
from cnnkit.interop.onnx import export, load, run  # noqa: E402

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def run_main(args, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.fixture
def lenet(tmp_path):
    """A LeNet-5 saved as a checkpoint, and the same network exported to ONNX."""
    model = models.get("lenet5", rng=np.random.default_rng(0))
    checkpoint = save(model, tmp_path / "lenet.npz", extra={"metadata": {"input_shape": [1, 28, 28]}})
    export(model, tmp_path / "lenet.onnx", (1, 28, 28))
    return model, checkpoint, tmp_path / "lenet.onnx"


def test_summary_of_an_onnx_file(lenet, capsys):
    model, _, path = lenet
    code, out, err = run_main(["summary", path], capsys)
    assert code == 0, err
    expected = summary(model, (1, 28, 28))
    assert out.startswith(f"{path} on 1x28x28") and f"Total params: {expected.total_params:,}" in out
    assert f"({expected.total_macs:,}; FLOPs" in out
    code, out, err = run_main(["summary", path, "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["total_macs"] == expected.total_macs


def test_summary_of_a_model_zoo_network_from_the_onnx_wheel(capsys):
    path = os.path.join(LIGHT, "light_squeezenet.onnx")
    code, out, err = run_main(["summary", path, "--format", "csv"], capsys)  # the file's 3x224x224
    assert code == 0, err
    rows = out.splitlines()
    assert rows[0].startswith("name,type,output_shape,params") and len(rows) > 60
    assert any(",Concatenate,128x55x55," in row for row in rows)  # the fire modules' joins
    code, out, err = run_main(["summary", path, "--input", "3x112x112"], capsys)  # another size: --input
    assert code == 0, err
    assert "on 3x112x112" in out and "128x27x27" in out


def test_summary_errors_for_onnx_files(tmp_path, capsys):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    (tmp_path / "dynamic.onnx").write_bytes(helper.make_model(graph).SerializeToString())
    code, _, err = run_main(["summary", tmp_path / "dynamic.onnx"], capsys)
    assert code == 2 and "leaves its input size open; give it, e.g. --input 3x224x224" in err
    code, out, err = run_main(["summary", tmp_path / "dynamic.onnx", "--input", "3x8x8"], capsys)
    assert code == 0, err
    (tmp_path / "broken.onnx").write_bytes(b"not a protobuf at all")
    code, _, err = run_main(["summary", tmp_path / "broken.onnx"], capsys)
    assert code == 1 and "is not a readable ONNX model" in err and "Traceback" not in err


def test_viz_export_of_an_onnx_file(lenet, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from PIL import Image

    model, _, path = lenet
    code, out, err = run_main(["viz", "filters", path, "--out", tmp_path / "filters.png"], capsys)
    assert code == 0, err
    assert "6 filters of conv1" in out and (tmp_path / "filters.png").stat().st_size > 0
    Image.fromarray(np.tile(np.arange(28, dtype=np.uint8) * 9, (28, 1))).save(tmp_path / "digit.png")
    code, out, err = run_main(["viz", "activations", path, tmp_path / "digit.png", "--layer", "pool1",
                               "--out", tmp_path / "act.png"], capsys)
    assert code == 0, err
    assert "layer pool1, shape (6, 14, 14)" in out

    code, out, err = run_main(["export", path, "-f", "onnx", "--out", tmp_path / "again.onnx"], capsys)
    assert code == 0, err
    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(run(tmp_path / "again.onnx", x), model.eval().forward(x), rtol=1e-4, atol=1e-5)
    code, _, err = run_main(["export", path, "-f", "onnx", "--out", path], capsys)
    assert code == 2 and "is the file being read" in err
    code, out, err = run_main(["export", path, "-f", "safetensors", "--out", tmp_path / "w.safetensors"],
                              capsys)
    assert code == 0 and "10 tensors (61,706 parameters)" in out


def test_an_imported_lenet_fine_tunes_like_the_native_one(lenet, tmp_path, capsys):
    _, checkpoint, path = lenet
    assert list(load(path).state_dict()) == list(models.get("lenet5").state_dict())  # the same names
    results = {}
    for name, source in (("native", checkpoint), ("onnx", path)):
        run_dir = tmp_path / name
        code, out, err = run_main(["finetune", source, "--data", "embedded", "--limit", "500", "--epochs",
                                   "3", "--lr", "0.03", "--head-lr-mult", "1", "--seed", "0",
                                   "--out", run_dir, "--quiet"], capsys)
        assert code == 0, err
        results[name] = json.loads((run_dir / "metrics.json").read_text())
    assert results["onnx"]["test_accuracy"] == results["native"]["test_accuracy"]
    assert results["onnx"]["test_loss"] == pytest.approx(results["native"]["test_loss"], rel=1e-5)
    assert results["native"]["test_accuracy"] > 0.5  # it learned (10 classes: chance is 0.1)
    code, _, err = run_main(["finetune", path, "--model", "lenet5", "--data", "embedded", "--out",
                             tmp_path / "bad"], capsys)
    assert code == 2 and "an ONNX file carries its architecture" in err
