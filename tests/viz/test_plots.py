import json

import numpy as np
import pytest
from viz_models import assert_png

from cnnkit.viz import confusion_matrix, history
from cnnkit.viz.plots import history_dict

CURVES = {"loss": [2.3, 1.1, 0.7], "val_loss": [1.5, 0.9, 0.8], "accuracy": [0.3, 0.7, 0.8],
          "val_accuracy": [0.5, 0.72, 0.75], "lr": [0.1, 0.1, 0.01], "seconds": [3.0, 3.1, 2.9]}


class FakeHistory:
    def __init__(self, data):
        self.history = data


def test_history_series_from_a_dict_an_object_and_per_epoch_records():
    series = history(CURVES)
    assert list(series) == ["loss", "val_loss", "accuracy", "val_accuracy", "lr"]  # "seconds" is not plotted
    np.testing.assert_allclose(series["val_loss"], [1.5, 0.9, 0.8])
    assert list(history(FakeHistory(CURVES))) == list(series)
    records = {"records": [{"epoch": i + 1, **{k: v[i] for k, v in CURVES.items()}} for i in range(3)]}
    records["records"][1]["val_loss"] = None  # NaN is written as null in history.json
    series = history_dict(json.loads(json.dumps(records)))
    np.testing.assert_allclose(series["accuracy"], CURVES["accuracy"])
    np.testing.assert_allclose(series["val_loss"], [1.5, np.nan, 0.8])
    assert "epoch" not in series


def test_history_from_a_real_training_history():
    from cnnkit.train.history import History

    h = History([{"epoch": e, "train_loss": 1 / e, "train_accuracy": 0.5, "val_loss": 0.9, "lr": 0.1,
                  "time": 2.0} for e in (1, 2)])
    assert list(history(h)) == ["train_loss", "train_accuracy", "val_loss", "lr"]


@pytest.mark.usefixtures("matplotlib")
def test_history_png(tmp_path):
    path = tmp_path / "curves.png"
    history(CURVES, save=path, figsize=(9, 3), dpi=50)
    assert_png(path, (450, 150))


def test_history_without_curves_says_what_it_expected():
    with pytest.raises(ValueError, match="no loss, accuracy or learning-rate series"):
        history({"seconds": [1.0]})


def test_confusion_counts():
    counts = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], classes=["a", "b", "c", "d"])
    np.testing.assert_array_equal(counts, [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]])
    assert counts.dtype == np.int64


@pytest.mark.usefixtures("matplotlib")
@pytest.mark.parametrize("classes", [10, 100])
def test_confusion_png(tmp_path, classes):
    rng = np.random.default_rng(0)
    y = rng.integers(0, classes, 500)
    pred = np.where(rng.random(500) < 0.8, y, rng.integers(0, classes, 500))
    path = tmp_path / "cm.png"
    names = [f"class-{i}" for i in range(classes)]
    counts = confusion_matrix(y, pred, classes=names, normalize=True, save=path, figsize=(6, 5), dpi=50)
    assert counts.sum() == 500
    assert_png(path, (300, 250))


def test_confusion_errors():
    with pytest.raises(ValueError, match="must be 1-D and of the same length"):
        confusion_matrix([0, 1], [0])
    with pytest.raises(ValueError, match="pass y_true and y_pred, or counts="):
        confusion_matrix()


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if matplotlib were not installed
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    assert confusion_matrix([0, 1], [1, 1]).tolist() == [[0, 1], [0, 1]]  # the arrays need no matplotlib
    with pytest.raises(ImportError, match=r'pip install "cnnkit\[viz\]"'):
        confusion_matrix([0, 1], [1, 1], save=tmp_path / "cm.png")
