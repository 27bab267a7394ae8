"""The `cnnkit viz ...` and `cnnkit report` commands, run in-process through cnnkit.cli.main."""

import numpy as np
import pytest
from PIL import Image
from viz_models import assert_png, tiny_run

from cnnkit.cli import main

DIGITS = [str(i) for i in range(10)]


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return exit_info.value.code, out + err


@pytest.fixture
def run(tmp_path):
    # A 28x28, 10-class model whose run names the MNIST subset shipped in the package, so test:N works.
    return tiny_run(tmp_path, size=28, data="embedded", classes=DIGITS)[0]


@pytest.mark.usefixtures("matplotlib")
def test_filters_and_activations(run, tmp_path, capsys):
    code, text = run_cli(capsys, "viz", "filters", run, "--out", tmp_path / "f.png")
    assert code == 0 and "4 filters of conv1" in text
    assert_png(tmp_path / "f.png", (700, None))  # default width 7 in at 100 dpi; height follows the grid
    code, text = run_cli(capsys, "viz", "activations", run, "test:1", "--layer", "relu2",
                         "-o", tmp_path / "a.png")
    assert code == 0 and "layer relu2, shape (6, 14, 14)" in text
    assert (tmp_path / "a.png").stat().st_size > 1000


@pytest.mark.usefixtures("matplotlib")
def test_occlusion_and_saliency_of_a_test_image_and_an_image_file(run, tmp_path, capsys):
    code, text = run_cli(capsys, "viz", "occlusion", run / "checkpoint.npz", "test:2", "--patch", "6",
                         "--stride", "3", "-o", tmp_path / "o.png")
    assert code == 0 and "(predicted)" in text
    assert_png(tmp_path / "o.png", (900, 340))
    picture = tmp_path / "digit.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30), dtype=np.uint8)).save(picture)
    code, text = run_cli(capsys, "viz", "saliency", run, picture, "--target", "7", "-o", tmp_path / "s.png")
    assert code == 0 and "class 7, predicted" in text
    assert_png(tmp_path / "s.png", (900, 340))


@pytest.mark.usefixtures("matplotlib")
def test_report_command(run, capsys):
    code, text = run_cli(capsys, "report", run, "--examples", "1")
    assert code == 0 and "report.html" in text
    assert "<section id='occlusion'>" in (run / "report.html").read_text(encoding="utf-8")


def test_errors_are_one_line(run, tmp_path, capsys):
    code, text = run_cli(capsys, "viz", "activations", run, "--layer", "conv")
    assert code == 1 and "no layer named 'conv'. Did you mean 'conv1', 'conv2'" in text
    code, text = run_cli(capsys, "viz", "saliency", run, "test:x")
    assert code == 1 and "expected test:N" in text
    code, text = run_cli(capsys, "report", tmp_path / "nowhere")
    assert code == 1 and "is not a directory" in text
    assert "Traceback" not in text
