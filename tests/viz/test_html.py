"""Jupyter's views (cnnkit.viz.html): the summary table, a model's layer tree, a history's epochs and curves.

The HTML is parsed back with the standard library's parser and compared with the objects it shows.
"""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.layers import Conv2d, Linear, ReLU, Sequential
from cnnkit.train import History
from cnnkit.viz.html import Picture


class Parsed(HTMLParser):
    """Tags counted, table rows as lists of cell texts, and all text."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.rows, self.text, self._row, self._cell = {}, [], [], None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr":
            self.rows.append(self._row)

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def test_summary_table_is_the_text_tables():
    s = ck.summary(ck.models.get("lenet5"), (1, 28, 28))
    page = Parsed(s._repr_html_())
    assert page.rows[0] == list(s._HEADER)
    assert page.rows[1:] == [list(s._cells(r, True)) for r in s.rows]
    text = "".join(page.text)
    assert "Total params: 61,706" in text and "Sequential on 1x28x28: 12 layers" in text


def test_layer_tree_shows_every_layer_parameter_shape_and_count():
    model = ck.models.get("resnet18", num_classes=10, input_shape=(3, 32, 32))
    page = Parsed(model._repr_html_())
    containers = [layer for _, layer in model.named_layers() if layer.named_children()]
    assert page.tags["details"] == page.tags["summary"] == len(containers)  # the model itself among them
    text = "".join(page.text)
    assert "conv1: Conv2d(3->64, kernel_size=7, stride=2, padding=3, bias=False, fit='crop')" in text
    assert "9,408 params: weight 64x3x7x7" in text and f"{model.num_parameters():,} parameters" in text
    assert "layer1: Sequential 2 children, 147,968 params" in text


def test_a_leaf_a_frozen_parameter_and_escaping():
    conv = Conv2d(3, 4, 3)
    assert "".join(Parsed(conv._repr_html_()).text).startswith(
        "Conv2d(3->4, kernel_size=3, stride=1, padding=0) 112 params: weight 4x3x3x3, bias 4")
    net = Sequential(Linear(4, 2), ReLU())
    net[0].weight.trainable = False
    text = "".join(Parsed(net._repr_html_()).text)
    assert "weight 2x4 (frozen)" in text and "10 parameters, 8 frozen" in text
    assert "->" in text and "-&gt;" in net._repr_html_()  # the arrow is escaped in the markup


RECORDS = [{"epoch": 1, "train_loss": 0.9, "val_accuracy": 0.5, "lr": 0.1, "time": 1.25},
           {"epoch": 2, "train_loss": 0.4, "val_accuracy": float("nan"), "lr": 0.05, "time": 1.5}]


def test_history_table():
    html = History(RECORDS, stopped="early stopping: val_loss did not improve")._repr_html_()
    page = Parsed(html)
    assert page.rows == [["epoch", "train_loss", "val_accuracy", "lr", "time"],
                         ["1", "0.9", "0.5", "0.1", "1.25"], ["2", "0.4", "", "0.05", "1.5"]]
    assert "early stopping" in "".join(page.text)
    assert "no epochs yet" in History()._repr_html_()


@pytest.mark.usefixtures("matplotlib")
def test_history_plot_and_inline_curves(tmp_path):
    picture = History(RECORDS).plot(save=tmp_path / "curves.png", dpi=50)
    assert isinstance(picture, Picture) and picture._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "curves.png").read_bytes() == picture.png
    assert list(picture.series) == ["train_loss", "val_accuracy", "lr"]
    np.testing.assert_array_equal(picture.series["lr"], [0.1, 0.05])
    assert 'src="data:image/png;base64,' in History(RECORDS)._repr_html_()
    only_time = History([{"epoch": 1, "time": 2.0}])
    assert "<img" not in only_time._repr_html_()  # nothing to draw: the table alone
    with pytest.raises(ValueError, match="history: found no loss, accuracy or learning-rate series"):
        only_time.plot()
