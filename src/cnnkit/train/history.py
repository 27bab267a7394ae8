"""History: one record per epoch (losses, accuracies, learning rate, time), saved as JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
import math


class History:
    """What ``fit`` returns: ``history.records`` is a list of dicts, one per epoch.

    Keys: ``epoch`` (1-based), ``train_loss``, ``train_accuracy`` (and ``train_top5`` with 5+ classes),
    ``val_loss``, ``val_accuracy``, ``val_top5`` when there is a validation loader, ``lr`` and ``time``
    (seconds). ``history["val_accuracy"]`` gives one column as a list.

    >>> h = History([{"epoch": 1, "train_loss": 0.5, "lr": 0.1}, {"epoch": 2, "train_loss": 0.25, "lr": 0.1}])
    >>> h["train_loss"], len(h)
    ([0.5, 0.25], 2)
    >>> print(h.to_csv().strip())
    epoch,train_loss,lr
    1,0.5,0.1
    2,0.25,0.1
    """

    def __init__(self, records=None, *, stopped: str | None = None):
        self.records: list[dict] = [dict(r) for r in records or []]
        self.stopped = stopped  # why training ended early ("early stopping: ..."), or None

    def append(self, record: dict):
        self.records.append(dict(record))

    def __len__(self):
        return len(self.records)

    def __getitem__(self, key: str) -> list:
        return [r.get(key) for r in self.records]

    @property
    def columns(self) -> list[str]:
        """Every key that appears, in first-seen order."""
        seen: dict[str, None] = {}
        for r in self.records:
            seen.update(dict.fromkeys(r))
        return list(seen)

    @property
    def last(self) -> dict:
        return self.records[-1] if self.records else {}

    def to_dict(self) -> dict:
        return {"records": self.records, "stopped": self.stopped}

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(data.get("records", []), stopped=data.get("stopped"))

    def to_json(self, path=None) -> str:
        """The history as JSON text (NaN written as null); also written to ``path`` if given."""
        clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                 for r in self.records]
        text = json.dumps({"records": clean, "stopped": self.stopped}, indent=2)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    def to_csv(self, path=None) -> str:
        """One row per epoch, one column per key; also written to ``path`` if given."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.records)
        text = out.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        return text

    @classmethod
    def from_json(cls, path) -> History:
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def plot(self, *, save=None, figsize=None, dpi=100, title=None):
        """The loss, accuracy and learning-rate curves per epoch (see :func:`cnnkit.viz.history`), as a
        picture that Jupyter shows inline; ``save=PATH`` also writes the PNG. Needs matplotlib, the
        ``[viz]`` extra.

        Raises:
            ValueError: the history holds no loss, accuracy or learning-rate series.
        """
        from cnnkit.viz.html import history_plot

        return history_plot(self, save=save, figsize=figsize, dpi=dpi, title=title)

    def _repr_html_(self):
        """The epochs as a table, with the curves when matplotlib is installed (Jupyter)."""
        from cnnkit.viz.html import history_html

        return history_html(self)

    def __repr__(self):
        if not self.records:
            return "History(0 epochs)"
        last = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.last.items())
        return f"History({len(self)} epochs; last: {last})"
