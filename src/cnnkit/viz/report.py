"""The training report: one self-contained ``report.html`` for a run directory.

Everything is in the one file: the pictures are PNGs embedded as base64 ``data:`` URIs and the styling is
inline, so the report opens from disk in any browser with no server and no network, and can be mailed or
archived as is. It reads what ``cnnkit train`` leaves in its run directory:

    checkpoint.npz   the trained model; ``extra["metadata"]`` holds the dataset name (``data``), ``classes``,
                     ``normalize`` ({"mean": [...], "std": [...]}) and the command's settings (``train``)
    history.json     one record per epoch (cnnkit.train.History)
    metrics.json     the final test metrics
    summary.txt      the model summary table

and, to show the network at work, the test split of the run's dataset (or ``data=`` given by the caller).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from pathlib import Path

import numpy as np

from cnnkit.viz._draw import finish, grid_shape, new_figure, show_image
from cnnkit.viz._run import probabilities, scores
from cnnkit.viz.activations import activations
from cnnkit.viz.filters import filters
from cnnkit.viz.occlusion import occlusion
from cnnkit.viz.plots import confusion_counts, confusion_matrix, history
from cnnkit.viz.saliency import saliency

REPORT_NAME = "report.html"
SECTIONS = ("summary", "curves", "confusion", "filters", "activations", "occlusion", "confused", "settings")
TITLES = {"summary": "Summary", "curves": "Training curves", "confusion": "Confusion matrix",
          "filters": "First-layer filters", "activations": "Activations",
          "occlusion": "Occlusion and saliency", "confused": "Most confused examples", "settings": "Settings"}


def png(draw, *args, dpi=100, **kwargs) -> str:
    """Call a viz function with ``save=`` an in-memory file; return the PNG as base64 text."""
    buffer = io.BytesIO()
    draw(*args, save=buffer, dpi=dpi, **kwargs)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# -- reading a run directory ---------------------------------------------------------------------------------
def read_run(run_dir) -> dict:
    """The pieces of a run directory as Python objects; a missing file gives None (the report says so)."""
    from cnnkit.io import load_checkpoint

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"report: {run_dir} is not a directory; pass the run directory that "
                                f"`cnnkit train` wrote (it holds checkpoint.npz).")
    checkpoint = run_dir / "checkpoint.npz"
    if not checkpoint.exists():
        raise FileNotFoundError(f"report: no checkpoint.npz in {run_dir}; a report needs the trained model.")
    ckpt = load_checkpoint(checkpoint)
    extra = ckpt.extra or {}
    metadata = dict(extra.get("metadata") or {})
    if ckpt.preprocessing is not None:  # the model's own record (also for a model saved from Python)
        metadata["preprocessing"] = ckpt.preprocessing.to_dict()
    hist = _read_json(run_dir / "history.json") or (extra.get("fit") or {}).get("history")
    settings = dict(metadata.get("train") or {})  # what `cnnkit train` was asked, defaults filled in
    summary = run_dir / "summary.txt"
    return {"dir": run_dir, "model": ckpt.model, "epoch": ckpt.epoch, "metadata": metadata, "history": hist,
            "metrics": _read_json(run_dir / "metrics.json") or {}, "settings": settings,
            "summary": summary.read_text(encoding="utf-8") if summary.exists() else None,
            "optimizer": (ckpt.header.get("optimizer") or {}), "version": ckpt.version}


def _read_json(path):
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def dataset_name(metadata):
    """The dataset a run trained on, as ``cnnkit.data.load`` names it, or None."""
    return metadata.get("data") or metadata.get("dataset") or (metadata.get("train") or {}).get("data")


def model_input(images, metadata):
    """uint8 images (N, C, H, W) -> float32 as the model saw them in training: [0, 1], then normalised
    per channel with ``metadata["preprocessing"]`` (see :class:`cnnkit.data.Preprocessing`), else with
    ``metadata["normalize"]`` ({"mean": [...], "std": [...]} or (mean, std)) if any."""
    if metadata.get("preprocessing"):
        from cnnkit.data.preprocessing import Preprocessing

        return Preprocessing.from_dict(metadata["preprocessing"]).apply(images)
    x = np.asarray(images).astype(np.float32)
    if np.asarray(images).dtype == np.uint8:
        x *= np.float32(1 / 255)
    normalize = metadata.get("normalize")
    if isinstance(normalize, dict):
        normalize = (normalize.get("mean"), normalize.get("std"))
    if normalize and normalize[0] is not None:
        mean, std = (np.asarray(v, np.float32).reshape(1, -1, 1, 1) for v in normalize)
        x = (x - mean) / std
    return x


def load_test_data(run, data=None, limit=10_000, root=None):
    """(x normalised float32, raw images, labels, classes) of the run's test split, or None if unnamed.

    ``data`` may be an ``ArrayDataset`` (uint8 images, labels, classes) or a tuple (images, labels); else
    the split is loaded with ``cnnkit.data.load(metadata["data"], "test", root)``, cut to the run's own
    ``--limit`` if it had one.
    """
    meta = run["metadata"]
    if data is None:
        name = dataset_name(meta)
        if not name:
            return None
        from cnnkit.data import load

        saved_root = run["settings"].get("root")  # the run's --root, so that it reopens anywhere
        data = load(name, "test", root if root is not None or not saved_root else saved_root)
        limit = min(limit, run["settings"].get("limit") or limit)
    images, labels = (data.images, data.labels) if hasattr(data, "images") else data[:2]
    classes = getattr(data, "classes", None) or meta.get("classes")
    images, labels = np.asarray(images)[:limit], np.asarray(labels, dtype=np.int64)[:limit]
    return model_input(images, meta), images, labels, list(classes) if classes is not None else None


# -- writing -----------------------------------------------------------------------------------------------
def write_report(run_dir, *, out=None, data=None, root=None, examples=3, limit=10_000) -> Path:
    """Write ``run_dir/report.html`` (or ``out``): summary, curves, confusion matrix, filters, activations,
    occlusion and saliency maps, the most confused test examples and the run's settings, in one file.

    Args:
        run_dir: a directory written by ``cnnkit train`` (checkpoint.npz, history.json, metrics.json,
            summary.txt); only checkpoint.npz is required.
        out: where to write the HTML (default ``run_dir/report.html``).
        data: the test set to show, if not the run's own (an ArrayDataset or (uint8 images, labels)).
        root: the folder datasets are read from (as ``cnnkit train --root``; default $CNNKIT_DATA or
            ~/.cache/cnnkit).
        examples: how many test images get activation, occlusion and saliency maps.
        limit: how many test images are classified for the confusion matrix and the confused examples.

    Returns:
        The path of the report.

    Raises:
        FileNotFoundError: no run directory or no checkpoint in it. ImportError: matplotlib is missing
        (``pip install "cnnkit[viz]"``).
    """
    started = time.perf_counter()
    run = read_run(run_dir)
    model = run["model"]
    try:
        test = load_test_data(run, data, limit, root)
        data_note = None if test is not None else "the run does not name its dataset, so no test images"
    except (OSError, ValueError, KeyError) as e:  # the dataset is not on this machine: report the rest
        test, data_note = None, f"the test data could not be loaded ({e})"
    sections = {}
    predictions = probabilities(scores(model, test[0])) if test is not None else None
    classes = (test[3] if test is not None else None) or run["metadata"].get("classes")

    sections["summary"] = _summary(run, test, predictions)
    sections["curves"] = _curves(run)
    sections["confusion"] = _confusion(run, test, predictions, classes)
    sections["filters"] = _filters(model)
    if test is not None:
        chosen = _pick_examples(test[2], predictions, examples)
        sections["activations"] = _activations(model, test, chosen, predictions, classes)
        sections["occlusion"] = _occlusion(model, test, chosen, predictions, classes)
        sections["confused"] = _confused(test, predictions, classes)
    else:
        for key in ("activations", "occlusion", "confused"):
            sections[key] = f"<p class='note'>Not shown: {html.escape(data_note)}.</p>"
    sections["settings"] = _settings(run)

    path = Path(out) if out is not None else Path(run_dir) / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_page(run, sections, time.perf_counter() - started), encoding="utf-8")
    return path


def _img(b64, alt, width=None):
    style = f" style='max-width:{width}px'" if width else ""
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{b64}'{style}>"


def _table(rows, header=None):
    def cells(values, tag):
        return "<tr>" + "".join(f"<{tag}>{html.escape(_fmt(v))}</{tag}>" for v in values) + "</tr>"
    head = "" if header is None else cells(header, "th")
    return "<table>" + head + "".join(cells(row, "td") for row in rows) + "</table>"


def _fmt(value):
    if isinstance(value, Percent):
        return f"{value:.2%}"
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(_rounded(value))
    return "\u2014" if value is None else str(value)


def _rounded(value):
    """Floats inside lists and dicts to 4 significant digits (normalisation statistics, betas)."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


class Percent(float):
    """A fraction shown as a percentage in the tables."""


def _metric(key, value):
    return Percent(value) if ("accuracy" in key or "top5" in key) and isinstance(value, float) else value


def _summary(run, test, predictions):
    model, meta, metrics = run["model"], run["metadata"], run["metrics"]
    records = (run["history"] or {}).get("records") or []
    last = records[-1] if records else {}
    rows = [("model", run["settings"].get("model") or meta.get("model") or type(model).__name__),
            ("parameters", f"{model.num_parameters():,}"),
            ("dataset", dataset_name(meta) or "n/a"),
            ("epochs trained", run["epoch"] if run["epoch"] is not None else len(records))]
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        if last.get(key) is not None:
            rows.append((f"final {key.replace('_', ' ')}", _metric(key, last[key])))
    for key, value in metrics.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and key != "epochs":
            # evaluate()'s bare names (loss, accuracy, n) are about the test set; others carry their prefix.
            name = {"n": "test images", "loss": "test loss", "accuracy": "test accuracy", "top5": "test top5"}
            if key == "train_seconds":
                rows.append(("training time", f"{value:.1f} s"))
            else:
                rows.append((name.get(key, key.replace("_", " ")), _metric(key, value)))
    if test is not None and not any(k.endswith("accuracy") for k in metrics):
        rows.append((f"test accuracy (first {len(test[2])} images)",
                     Percent(np.mean(predictions.argmax(1) == test[2]))))
    if records and "train_seconds" not in metrics:
        total = sum(r.get("time") or 0 for r in records)
        rows.append(("training time", f"{total:.1f} s"))
    text = _table(rows)
    if run["summary"]:
        text += f"<details><summary>model summary</summary><pre>{html.escape(run['summary'])}</pre></details>"
    return text


def _curves(run):
    if not run["history"]:
        return "<p class='note'>No history.json in the run directory.</p>"
    try:
        b64 = png(history, run["history"])
    except ValueError as e:
        return f"<p class='note'>{html.escape(str(e))}</p>"
    stopped = run["history"].get("stopped") if isinstance(run["history"], dict) else None
    note = f"<p class='note'>{html.escape(stopped)}</p>" if stopped else ""
    return _img(b64, "loss and accuracy per epoch") + note


def _confusion(run, test, predictions, classes):
    counts = run["metrics"].get("confusion")
    if test is not None:
        K = predictions.shape[1]
        counts = confusion_counts(test[2], predictions.argmax(1), K)
    if counts is None:
        return "<p class='note'>No test predictions and no confusion matrix in metrics.json.</p>"
    counts = np.asarray(counts)
    names = classes if classes is not None and len(classes) == len(counts) else None
    b64 = png(confusion_matrix, counts=counts, classes=names)
    off = counts.copy()
    np.fill_diagonal(off, 0)
    worst = np.argsort(off, axis=None)[::-1][:5]
    label = (lambda i: names[i]) if names else str
    pairs = zip(*np.unravel_index(worst, off.shape), strict=True)
    rows = [(label(i), label(j), int(off[i, j])) for i, j in pairs if off[i, j] > 0]
    pairs = _table(rows, ("true class", "predicted as", "examples")) if rows else ""
    return _img(b64, "confusion matrix") + ("<h3>Most confused pairs</h3>" + pairs if pairs else "")


def _conv_layers(model):
    from cnnkit.layers import Conv2d

    return [(name, layer) for name, layer in model.named_layers() if isinstance(layer, Conv2d)]


def _filters(model):
    convs = _conv_layers(model)
    if not convs:
        return "<p class='note'>The model has no Conv2d layer.</p>"
    name, layer = convs[0]
    b64 = png(filters, layer, title=f"{name}: {layer!r}")
    return _img(b64, f"filters of {name}", width=760)


def _pick_examples(labels, predictions, count):
    """``count`` test images to look inside: correctly classified ones of distinct classes first, then other
    correct ones, then any, each group in test-set order."""
    right = np.flatnonzero(predictions.argmax(1) == labels)
    first_of_class = [int(i) for i in right if i == right[labels[right] == labels[i]][0]]
    order = dict.fromkeys([*first_of_class, *map(int, right), *range(len(labels))])
    return list(order)[:count]


def _activation_layers(model):
    """The outputs worth showing: after the first conv (and its activation) and after the last conv."""
    names = [n for n, _ in model.named_layers()]
    convs = [n for n, _ in _conv_layers(model)]
    picked = []
    for conv in dict.fromkeys([convs[0], convs[-1]] if convs else []):
        # Prefer the layer right after the conv when it is an activation (ReLU maps are easier to read).
        following = names[names.index(conv) + 1] if names.index(conv) + 1 < len(names) else None
        kind = type(model.get(following)).__name__ if following else ""
        picked.append(following if kind in ("ReLU", "ReLU6", "LeakyReLU", "ELU", "Tanh", "Sigmoid") else conv)
    return picked


def _caption(i, labels, predictions, classes):
    name = (lambda c: classes[c]) if classes else str
    return f"test image {i}: true {name(labels[i])}, predicted {name(int(predictions[i].argmax()))} " \
           f"(p = {predictions[i].max():.3f})"


def _activations(model, test, chosen, predictions, classes):
    x, _, labels, _ = test
    layers = _activation_layers(model)
    if not layers:
        return "<p class='note'>The model has no Conv2d layer.</p>"
    parts = []
    for layer in layers:
        for i in chosen[:2] if len(layers) > 1 else chosen:
            parts.append(f"<h3>layer {html.escape(layer)}, "
                         f"{html.escape(_caption(i, labels, predictions, classes))}</h3>")
            b64 = png(activations, model, x[i], layer)
            parts.append(_img(b64, f"activations at {layer}"))
    return "".join(parts)


def _occlusion(model, test, chosen, predictions, classes):
    x, _, labels, _ = test
    parts = ["<p>Occlusion: a grey patch slides over the image and the map shows how much the probability of "
             "the true class drops (red: the class rests on these pixels). Saliency: the magnitude of the "
             "gradient of the class score with respect to each pixel.</p>"]
    patch = max(2, min(x.shape[2:]) // 4)
    for i in chosen:
        parts.append(f"<h3>{html.escape(_caption(i, labels, predictions, classes))}</h3>")
        b64 = png(occlusion, model, x[i], int(labels[i]), patch=patch, stride=max(1, patch // 4))
        parts.append(_img(b64, "occlusion map"))
        parts.append(_img(png(saliency, model, x[i], int(labels[i])), "saliency map"))
    return "".join(parts)


def _confused(test, predictions, classes, count=16):
    _, raw, labels, _ = test
    predicted = predictions.argmax(1)
    wrong = np.flatnonzero(predicted != labels)
    if not len(wrong):
        return "<p>Every test image shown was classified correctly.</p>"
    # The mistakes the network was surest about: the highest probability given to a wrong class.
    worst = wrong[np.argsort(-predictions[wrong, predicted[wrong]], kind="stable")][:count]
    b64 = png(_draw_examples, raw[worst], [_short(i, labels, predicted, predictions, classes) for i in worst])
    return (f"<p>{len(wrong)} of {len(labels)} test images are misclassified; these are the ones the network "
            f"was most confident about.</p>" + _img(b64, "most confidently misclassified test images"))


def _short(i, labels, predicted, predictions, classes):
    name = (lambda c: str(classes[c])[:12]) if classes else str
    return f"#{i}: {name(labels[i])} \u2192 {name(predicted[i])}\np = {predictions[i, predicted[i]]:.2f}"


def _draw_examples(images, titles, *, save=None, dpi=100):
    """A grid of images with two-line titles (true -> predicted, confidence)."""
    rows, columns = grid_shape(len(images), columns=min(8, len(images)))
    fig = new_figure((1.3 * columns + 0.2, 1.65 * rows + 0.2), dpi)
    fig.set_facecolor("white")
    for k, (image, title) in enumerate(zip(images, titles, strict=True)):
        ax = fig.add_subplot(rows, columns, k + 1)
        show_image(ax, image)
        ax.set_title(title, fontsize=8.5)
    finish(fig, save)


def _settings(run):
    meta = {k: v for k, v in run["metadata"].items() if k != "train" and k not in run["settings"]}
    settings = {**run["settings"], **meta}
    optimizer = run["optimizer"]
    if optimizer.get("type"):
        groups = optimizer.get("param_groups") or [{}]
        hyper = {k: v for k, v in groups[0].items() if k not in ("params", "param_names")}
        settings.setdefault("optimizer", {"type": optimizer["type"], **hyper})
    settings.setdefault("cnnkit version", run["version"])
    rows = [(key, value if not isinstance(value, list) or len(value) <= 20 else value[:20] + ["..."])
            for key, value in settings.items()]
    return _table(rows, ("setting", "value")) if rows else "<p class='note'>No settings recorded.</p>"


STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1d2430;
       background: #f4f6f9; }
header { background: #1f3b5c; color: white; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
header p { margin: 0; opacity: 0.85; font-size: 13px; }
nav { padding: 8px 32px; background: #e3e8ef; font-size: 13px; }
nav a { margin-right: 14px; color: #1f3b5c; text-decoration: none; }
section { background: white; margin: 16px 32px; padding: 12px 24px 20px; border-radius: 6px;
          box-shadow: 0 1px 3px rgba(0,0,0,0.08); }
h2 { font-size: 18px; border-bottom: 1px solid #dde3ea; padding-bottom: 6px; }
h3 { font-size: 14px; margin: 18px 0 6px; color: #33465e; }
img { max-width: 100%; height: auto; display: block; margin: 6px 0; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border: 1px solid #dde3ea; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #eef2f6; }
td:first-child { font-weight: 600; white-space: nowrap; }
pre { font-size: 12px; background: #f7f8fa; padding: 10px; overflow-x: auto; }
.note { color: #6b7787; font-style: italic; }
"""


def _page(run, sections, seconds):
    title = f"cnnkit training report: {run['dir'].resolve().name}"
    nav = "".join(f"<a href='#{key}'>{TITLES[key]}</a>" for key in SECTIONS)
    body = "".join(f"<section id='{key}'><h2>{TITLES[key]}</h2>{sections[key]}</section>" for key in SECTIONS)
    made = time.strftime("%Y-%m-%d %H:%M")
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body><header><h1>{html.escape(title)}</h1>"
            f"<p>{html.escape(str(run['dir']))} &middot; written {made} in {seconds:.1f} s by cnnkit "
            f"{html.escape(str(run['version']))}</p></header><nav>{nav}</nav>{body}</body></html>\n")
