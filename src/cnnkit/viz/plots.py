"""Training curves and an annotated confusion matrix."""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np

from cnnkit.viz._draw import finish, new_figure
from cnnkit.viz._picture import picture


def history_dict(history) -> dict[str, np.ndarray]:
    """The per-epoch series of a ``cnnkit.train.History``, a history.json's content, or a dict of lists.

    Only numeric series are kept: name -> 1-D float array, in the order given.
    """
    if isinstance(history, Mapping):
        source = history
    elif hasattr(history, "to_dict"):
        source = history.to_dict()
    elif isinstance(getattr(history, "history", None), Mapping):
        source = history.history
    else:
        source = vars(history)
    records = source.get("records", source.get("epochs"))
    if isinstance(records, list) and records and isinstance(records[0], Mapping):
        # History's per-epoch records [{"epoch": 1, "train_loss": ...}, ...] become one series per key.
        keys = dict.fromkeys(k for r in records for k in r)
        source = {k: [np.nan if r.get(k) is None else r[k] for r in records] for k in keys}
    series = {}
    for name, values in source.items():
        if name in ("epoch", "epochs"):
            continue
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if array.ndim == 1 and array.size:
            series[name] = array
    return series


def _panel_of(name):
    low = name.lower()
    if "loss" in low:
        return "loss"
    if "acc" in low or "top5" in low:
        return "accuracy"
    if low in ("lr", "learning_rate") or low.endswith("_lr"):
        return "learning rate"
    return None


def history(history, *, save=None, figsize=None, dpi=100, title=None):
    """Loss and accuracy curves per epoch (training and validation on one panel each; the learning rate too).

    Args:
        history: a ``cnnkit.train.History`` (records with ``train_loss``, ``val_loss``, ``train_accuracy``,
            ``val_accuracy``, ``lr`` ...), the content of a run's history.json, or a dict name -> list.
        save: path (or binary file) for a PNG.

    Returns:
        dict name -> 1-D array of the series that were plotted.

    Raises:
        ValueError: when the history holds no loss, accuracy or learning-rate series.

    >>> sorted(history({"loss": [2.0, 1.0], "val_accuracy": [0.5, 0.8]}))
    ['loss', 'val_accuracy']
    """
    series = {k: v for k, v in history_dict(history).items() if _panel_of(k)}
    if not series:
        raise ValueError("history: found no loss, accuracy or learning-rate series; expected names such as "
                         "'loss', 'val_loss', 'accuracy', 'val_accuracy', 'lr'.")
    return picture(series, functools.partial(_draw_history, figsize=figsize, dpi=dpi, title=title), save)


def _draw_history(series, save, *, figsize, dpi, title):
    panels = [p for p in ("loss", "accuracy", "learning rate") if any(_panel_of(k) == p for k in series)]
    fig = new_figure(figsize or (4.2 * len(panels) + 0.4, 3.6), dpi)
    fig.set_facecolor("white")
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)[0])
    for ax, panel in zip(axes, panels, strict=True):
        for name, values in series.items():
            if _panel_of(name) != panel:
                continue
            epochs = np.arange(1, len(values) + 1)
            style = "--" if name.lower().startswith(("val", "test")) else "-"
            marker = "o" if len(values) <= 30 else None
            ax.plot(epochs, values, style, marker=marker, markersize=3, label=name)
        ax.set_xlabel("epoch", fontsize=9)
        ax.set_ylabel(panel, fontsize=9)
        ax.set_title(panel, fontsize=10)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if panel == "learning rate" and all(v.min() > 0 for k, v in series.items() if _panel_of(k) == panel):
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    finish(fig, save)


def confusion_counts(y_true, y_pred, num_classes=None):
    """(K, K) counts: entry [i, j] is how many examples of true class i were predicted as class j."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"confusion_matrix: y_true {y_true.shape} and y_pred {y_pred.shape} must be 1-D and "
                         f"of the same length.")
    K = num_classes or int(max(y_true.max(initial=-1), y_pred.max(initial=-1)) + 1)
    counts = np.zeros((K, K), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def confusion_matrix(y_true=None, y_pred=None, *, counts=None, classes=None, normalize=False, save=None,
                     figsize=None, dpi=100, title=None, max_annotated=20):
    """The confusion matrix as an annotated picture: rows are true classes, columns predictions.

    Args:
        y_true, y_pred: 1-D integer labels; or ``counts``, an existing (K, K) matrix.
        classes: K class names for the axes (default 0..K-1).
        normalize: colour (and annotate) each row as fractions of that class, so rare classes are visible.
        save: path (or binary file) for a PNG. Cells are annotated with their numbers when K <= max_annotated
            (beyond that the text could not be read and would overlap); the text is white on dark cells.

    Returns:
        (K, K) int64 counts (not normalised, whatever ``normalize`` is).

    Raises:
        ValueError: for labels of different lengths, or neither labels nor counts.

    >>> confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2]).tolist()
    [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    """
    if counts is None:
        if y_true is None or y_pred is None:
            raise ValueError("confusion_matrix: pass y_true and y_pred, or counts=.")
        counts = confusion_counts(y_true, y_pred, len(classes) if classes is not None else None)
    counts = np.asarray(counts, dtype=np.int64)
    draw = functools.partial(_draw_confusion, classes=classes, normalize=normalize, figsize=figsize, dpi=dpi,
                             title=title, max_annotated=max_annotated)
    return picture(counts, draw, save)


def _draw_confusion(counts, save, *, classes, normalize, figsize, dpi, title, max_annotated):
    K = len(counts)
    names = [str(c) for c in (classes if classes is not None else range(K))]
    rows = counts.sum(axis=1, keepdims=True)
    shown = counts / np.maximum(rows, 1) if normalize else counts
    side = min(12.0, max(4.5, 0.45 * K + 2.0))
    fig = new_figure(figsize or (side + 1.2, side), dpi)
    fig.set_facecolor("white")
    ax = fig.add_subplot()
    artist = ax.imshow(shown, cmap="Blues", interpolation="nearest")
    bar = fig.colorbar(artist, ax=ax, shrink=0.8)
    bar.set_label("fraction of the true class" if normalize else "examples", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    step = max(1, -(-K // 25))  # at most 25 tick labels per axis, so they never collide
    ticks = list(range(0, K, step))
    long_names = max(len(n) for n in names) > 3
    ax.set_xticks(ticks, [names[i] for i in ticks], rotation=45 if long_names else 0,
                  ha="right" if long_names else "center", rotation_mode="anchor", fontsize=8)
    ax.set_yticks(ticks, [names[i] for i in ticks], fontsize=8)
    ax.set_xlabel("predicted class", fontsize=9)
    ax.set_ylabel("true class", fontsize=9)
    if K <= max_annotated:
        size = 8 if K <= 12 else 6
        threshold = shown.max() / 2
        for i in range(K):
            for j in range(K):
                text = f"{shown[i, j]:.2f}" if normalize else str(counts[i, j])
                ax.text(j, i, text, ha="center", va="center", fontsize=size,
                        color="white" if shown[i, j] > threshold else "black")
    total = counts.sum()
    accuracy = np.trace(counts) / total if total else float("nan")
    ax.set_title(title or f"confusion matrix ({total} examples, accuracy {accuracy:.1%})", fontsize=10)
    finish(fig, save)
