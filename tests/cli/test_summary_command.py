"""cnnkit summary: zoo models, specs and saved models; formats; memory per batch and the largest batch."""

import csv
import io
import json

import pytest
from typer.testing import CliRunner

import cnnkit
from cnnkit.analysis import summary
from cnnkit.cli import app, main

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, ["summary", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_table_with_totals_memory_and_the_largest_batch():
    out = invoke("lenet5", "--batch-size", "64", "--memory", "1MB")
    assert out.startswith("lenet5 on 1x28x28")
    assert "conv1" in out and "fc3" in out and "Total params: 61,706" in out
    s = summary(cnnkit.models.get("lenet5"), (1, 28, 28))
    assert (
        "Memory for a batch of 64 (training, float32): " in out and f"({s.memory_bytes(64):,} bytes)" in out
    )
    assert f"Largest batch that fits in 1MB = 1.00 MiB (training): {s.max_batch_size(2**20):,}" in out


def test_a_spec_with_an_input_size_and_csv_output():
    out = invoke(
        "INPUT -> [CONV -> RELU -> POOL]*2 -> FC",
        "--input",
        "1x16x16",
        "--num-classes",
        "3",
        "--format",
        "csv",
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["name"] for r in rows] == [
        "input",
        "conv1",
        "relu1",
        "pool1",
        "conv2",
        "relu2",
        "pool2",
        "flatten",
        "fc1",
    ]
    assert rows[0]["output_shape"] == "1x16x16" and rows[-1]["output_shape"] == "3"


def test_json_and_markdown_and_optimizer_state():
    data = json.loads(invoke("mobilenet_v2", "-f", "json", "--memory", "1GB", "--optimizer", "adam"))
    s = summary(cnnkit.models.get("mobilenet_v2"), (3, 224, 224))
    assert data["total_params"] == 3_504_872 and data["total_macs"] == 300_774_272
    assert data["memory_bytes"] == s.memory_bytes(1, optimizer="adam")
    assert data["max_batch_size"] == s.max_batch_size("1GB", optimizer="adam")
    markdown = invoke("cifar_net", "-f", "markdown", "--inference")
    assert (
        markdown.startswith("| Layer | Type |")
        and "- Memory for a batch of 1 (inference, float32)" in markdown
    )


def test_a_saved_model_needs_its_input_size(tmp_path, capsys):
    path = cnnkit.save(cnnkit.models.get("lenet5"), tmp_path / "lenet.npz")
    assert "Total params: 61,706" in invoke(str(path), "--input", "1x28x28")
    code, err = run_main([str(path)], capsys)
    assert code == 2 and "lenet.npz does not record its input size; give it, e.g. --input 3x32x32" in err


def test_a_run_uses_the_input_shape_it_recorded(tmp_path):
    model = cnnkit.models.get("lenet5")
    cnnkit.save(model, tmp_path / "run" / "checkpoint.npz", extra={"metadata": {"input_shape": [1, 28, 28]}})
    out = invoke(str(tmp_path / "run"))
    assert out.startswith(f"{tmp_path / 'run'} on 1x28x28") and "Total params: 61,706" in out


def run_main(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["summary", *args])
    out, err = capsys.readouterr()
    return exit_info.value.code, err


def test_errors_are_short_and_point_at_the_problem(capsys):
    code, err = run_main(["resnet19"], capsys)
    assert code == 1 and "'resnet19' is not a zoo model, a file or a spec. Did you mean resnet18" in err
    code, err = run_main(["INPUT -> CONVV -> FC"], capsys)
    assert code == 2 and err.splitlines()[-2:] == ["  INPUT -> CONVV -> FC", "           ^^^^^"]
    # (VGG's pools round down like torchvision's since its adaptive head came: LeNet-5's still refuse)
    code, err = run_main(["lenet5", "--input", "1x30x30"], capsys)
    assert (
        code == 1
        and "lenet5 cannot take a 1x30x30 input: MaxPool2d" in err
        and "5.5 is not an integer" in err
    )
    code, err = run_main(["lenet5", "--input", "3xa"], capsys)
    assert code == 2 and "'3xa': give positive sizes C x H x W, e.g. 1x28x28 or 3x224x224" in err
    code, err = run_main(["lenet5", "--memory", "4 parsecs"], capsys)
    assert code == 2 and "'4 parsecs': expected a size, such as 512MB, 4GB or 8GiB" in err
    assert "Traceback" not in err
