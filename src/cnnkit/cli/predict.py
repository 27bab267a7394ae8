"""``cnnkit predict CHECKPOINT IMAGE...``: the top-k classes of each image with their probabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cnnkit.cli.app import app

MNIST_LIKE = ("embedded", "mnist", "fashion-mnist")


def read_image(path: Path, input_shape, invert: bool | None, mnist_like: bool):
    """An image file as uint8 (C, H, W) shaped for the model; MNIST-style white-on-black if needed.

    With ``invert`` None, a grayscale image for an MNIST-trained model is inverted when its border is light
    (a dark digit on white paper), because MNIST digits are white on black.
    """
    import numpy as np

    from cnnkit.data.imagefolder import _pillow_image

    Image = _pillow_image()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file.")
    try:
        with Image.open(path) as img:
            img = img.convert("L" if input_shape[0] == 1 else "RGB")
            if img.size != (input_shape[2], input_shape[1]):
                img = img.resize((input_shape[2], input_shape[1]), Image.BILINEAR)
            pixels = np.asarray(img, dtype=np.uint8)
    except OSError as e:
        raise ValueError(f"{path}: not a readable image ({e}).") from e
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    if invert is None:
        border = np.concatenate([pixels[:, 0].ravel(), pixels[:, -1].ravel(), pixels[:, :, 0].ravel(),
                                 pixels[:, :, -1].ravel()])
        invert = mnist_like and input_shape[0] == 1 and border.mean() > 127
    return 255 - pixels if invert else pixels


@app.command()
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint .npz or a run directory.")],
    images: Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG, ...).")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Classes to show per image.")] = 3,
    invert: Annotated[bool | None, typer.Option(
        "--invert/--no-invert", show_default="auto",
        help="Invert gray levels (auto: for MNIST models, when the background is light).")] = None,
):
    """Classify images with a saved model: the top-k classes and their probabilities."""
    import numpy as np

    from cnnkit.io import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    metadata = ckpt.extra.get("metadata", {})
    shape = metadata.get("input_shape")
    if not shape:
        raise ValueError(f"{ckpt.path}: the checkpoint has no input_shape metadata (cnnkit train saves it).")
    classes = metadata.get("classes")
    mnist_like = metadata.get("data") in MNIST_LIKE
    x = np.stack([read_image(p, shape, invert, mnist_like) for p in images]).astype(np.float32) / 255
    norm = metadata.get("normalize")
    if norm:
        x = (x - np.float32(norm["mean"])[:, None, None]) / np.float32(norm["std"])[:, None, None]
    scores = ckpt.model.forward(x.astype(np.float32)).reshape(len(x), -1).astype(np.float64)
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    k = min(top_k, probs.shape[1])
    for path, p in zip(images, probs, strict=True):
        best = np.argsort(-p, kind="stable")[:k]
        names = [classes[i] if classes else str(i) for i in best]
        typer.echo(f"{path}: " + "  ".join(f"{n} ({p[i]:.1%})" for n, i in zip(names, best, strict=True)))
