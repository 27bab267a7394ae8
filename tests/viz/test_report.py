import base64
import io
import re

import pytest
from PIL import Image
from viz_models import tiny_run

from cnnkit.viz.report import SECTIONS, write_report


def embedded_pngs(text):
    return [base64.b64decode(b) for b in re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)]


@pytest.mark.usefixtures("matplotlib")
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
    assert ">circle<" in text and "55.00%" in text and "&lt;fc&gt;" in text and ">tiny-net<" in text


@pytest.mark.usefixtures("matplotlib")
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
