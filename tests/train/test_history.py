"""History: columns, JSON and CSV files (NaN becomes null), round trip."""

import csv
import json
import math

from cnnkit.train import History


def test_json_and_csv_files(tmp_path):
    h = History([{"epoch": 1, "train_loss": 0.5, "lr": 0.1},
                 {"epoch": 2, "train_loss": math.nan, "val_loss": 0.2}])
    h.to_json(tmp_path / "h.json")
    h.to_csv(tmp_path / "h.csv")
    data = json.loads((tmp_path / "h.json").read_text())
    assert data["records"][1] == {"epoch": 2, "train_loss": None, "val_loss": 0.2}
    rows = list(csv.DictReader((tmp_path / "h.csv").open()))
    assert list(rows[0]) == ["epoch", "train_loss", "lr", "val_loss"]
    assert rows[0]["lr"] == "0.1" and rows[1]["lr"] == ""
    back = History.from_json(tmp_path / "h.json")
    assert back["epoch"] == [1, 2] and back["val_loss"] == [None, 0.2]
    assert repr(back).startswith("History(2 epochs; last: epoch=2")
