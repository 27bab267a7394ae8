import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from cnnkit.io import save
from cnnkit.layers import Conv2d, Flatten, Linear, ReLU, Sequential
from cnnkit.train.history import History
from cnnkit.viz.report import SECTIONS, write_report

CLASSES = ["circle", "bar", "cross"]


def tiny_run(tmp_path, *, metadata=True):
    """A run directory as `cnnkit train` leaves it, for a 3-class 8x8 problem (weights untrained)."""
    rng = np.random.default_rng(0)
    model = Sequential(conv1=Conv2d(1, 4, 3, padding=1, rng=rng), relu1=ReLU(),
                       conv2=Conv2d(4, 6, 4, stride=2, padding=1, rng=rng), relu2=ReLU(),
                       flatten=Flatten(), fc=Linear(6 * 4 * 4, 3, rng=rng))
    meta = {"dataset": "tiny", "classes": CLASSES, "normalize": [[0.5], [0.25]]} if metadata else {}
    save(model, tmp_path / "checkpoint.npz", epoch=2, extra={"metadata": meta})
    History([{"epoch": 1, "train_loss": 1.1, "train_accuracy": 0.4, "val_loss": 1.0, "val_accuracy": 0.5,
              "lr": 0.1, "time": 1.5},
             {"epoch": 2, "train_loss": 0.9, "train_accuracy": 0.6, "val_loss": 0.95, "val_accuracy": 0.55,
              "lr": 0.05, "time": 1.4}]).to_json(tmp_path / "history.json")
    (tmp_path / "metrics.json").write_text(json.dumps({"loss": 0.95, "accuracy": 0.55}))
    (tmp_path / "summary.txt").write_text("conv1  Conv2d  (N, 4, 8, 8)  40 params\n<fc>  Linear")
    images = rng.integers(0, 256, (30, 1, 8, 8), dtype=np.uint8)
    labels = rng.integers(0, 3, 30)
    return tmp_path, (images, labels)


def embedded_pngs(text):
    return [base64.b64decode(b) for b in re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)]


def test_report_has_every_section_and_its_images_decode(tmp_path):
    run, data = tiny_run(tmp_path)
    path = write_report(run, data=data, examples=1)
    assert path == run / "report.html"
    text = path.read_text(encoding="utf-8")
    for key in SECTIONS:
        assert f"<section id='{key}'>" in text
    pngs = embedded_pngs(text)
    # curves, confusion, filters, activations (2 layers, 1 image), occlusion + saliency, confused examples.
    assert len(pngs) == 1 + 1 + 1 + 2 + 2 + 1
    for raw in pngs:
        with Image.open(io.BytesIO(raw)) as picture:
            picture.load()
            assert picture.format == "PNG" and min(picture.size) > 100
    # Self-contained: nothing fetched from anywhere, no scripts.
    assert "http://" not in text and "https://" not in text and "<script" not in text.lower()
    # The summary table, settings and the summary text (escaped) are there.
    assert ">circle<" in text and "55.00%" in text and "&lt;fc&gt;" in text


def test_report_without_test_data_keeps_the_other_sections(tmp_path):
    run, _ = tiny_run(tmp_path, metadata=False)
    out = tmp_path / "elsewhere.html"
    text = write_report(run, out=out).read_text(encoding="utf-8")
    for key in SECTIONS:
        assert f"<section id='{key}'>" in text
    assert text.count("the run does not name its dataset") == 3  # activations, occlusion, confused
    assert len(embedded_pngs(text)) == 2  # curves and filters; no predictions for a confusion matrix


def test_report_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        write_report(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no checkpoint.npz"):
        write_report(tmp_path)
