"""``cnnkit evaluate CHECKPOINT``: loss, accuracy, top-5 and the confusion matrix on a dataset split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cnnkit.cli.app import app
from cnnkit.cli.datasets import DATA_HELP, DOWNLOAD_HELP, ROOT_HELP, load_split


def checkpoint_normalization(preprocessing):
    """(mean, std) of a checkpoint's preprocessing, or None (then images are only scaled to [0, 1])."""
    if preprocessing is None or preprocessing.mean is None:
        return None
    return preprocessing.mean, preprocessing.std


def saved_root(metadata: dict) -> Path | None:
    """The --root a run was trained with, so that evaluate, report and viz find the same data."""
    root = (metadata.get("train") or metadata.get("finetune") or {}).get("root")
    return Path(root) if root else None


def confusion_table(confusion, classes) -> str:
    """The confusion matrix as text: rows are true classes, columns predictions.

    >>> import numpy as np
    >>> print(confusion_table(np.array([[3, 1], [0, 2]]), ["a", "b"]))
    true\\pred  a  b
    a          3  1
    b          0  2
    """
    names = [str(c)[:10] for c in classes]
    width = max(len(str(int(confusion.max()))), *(len(n) for n in names))
    first = max(len("true\\pred"), *(len(n) for n in names))
    lines = ["true\\pred".ljust(first) + "".join(f" {n:>{width}}" for n in names)]
    for name, row in zip(names, confusion, strict=True):
        lines.append(name.ljust(first) + "".join(f" {int(v):>{width}}" for v in row))
    return "\n".join(lines)


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(
        metavar="CHECKPOINT", help="A checkpoint .npz or a run directory.")],
    data: Annotated[str | None, typer.Option(
        "--data", "-d", show_default="the data it was trained on", help=DATA_HELP)] = None,
    split: Annotated[str, typer.Option(help="train or test.")] = "test",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1)] = 500,
    limit: Annotated[int | None, typer.Option(min=1, help="Use only the first N images.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    root: Annotated[Path | None, typer.Option(
        metavar="DIR", help=ROOT_HELP, show_default="the run's own")] = None,
    download: Annotated[bool, typer.Option("--download", help=DOWNLOAD_HELP)] = False,
):
    """Evaluate a saved model: accuracy, top-5, loss, confusion matrix.

    Images are prepared as the model was trained (its saved input shape and normalization).
    """
    from cnnkit.data import DataLoader
    from cnnkit.io import load_checkpoint
    from cnnkit.losses import SoftmaxCrossEntropy
    from cnnkit.train import evaluate as run_evaluation

    ckpt = load_checkpoint(checkpoint)
    metadata = ckpt.extra.get("metadata", {})
    data = data or metadata.get("data")
    if data is None:
        raise typer.BadParameter("the checkpoint does not say which data it was trained on; pass --data.",
                                 param_hint="'--data'")
    dataset = load_split(data, split, root if root is not None else saved_root(metadata), limit, download)
    preprocessing = ckpt.preprocessing
    if preprocessing is None:
        typer.echo(f"note: {ckpt.path} records no preprocessing (input shape, normalization): images are "
                   f"only scaled to [0, 1].", err=True)
    elif tuple(dataset.image_shape) != preprocessing.input_shape:
        raise ValueError(f"{data} images are {'x'.join(map(str, dataset.image_shape))} but the model was "
                         f"trained on {'x'.join(map(str, preprocessing.input_shape))}.")
    loader = DataLoader(dataset, batch_size, normalize=checkpoint_normalization(preprocessing))
    result = run_evaluation(ckpt.model, loader, SoftmaxCrossEntropy())
    metrics = {k: v for k, v in result.items() if k != "confusion"}
    if as_json:
        typer.echo(json.dumps({**metrics, "confusion": result["confusion"].tolist()}))
        return
    top5 = f", top-5 {result['top5']:.2%}" if "top5" in result else ""
    typer.echo(f"{data}/{split}: accuracy {result['accuracy']:.2%}{top5}, loss {result['loss']:.4f} "
               f"on {result['n']:,} images (checkpoint epoch {ckpt.epoch})")
    if len(dataset.classes) <= 20:
        typer.echo(confusion_table(result["confusion"], dataset.classes))
