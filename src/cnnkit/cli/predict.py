"""``cnnkit predict CHECKPOINT IMAGE...``: the top-k classes of each image with their probabilities.

IMAGE may be a file, a folder (every image in it) or a glob pattern ('photos/*.jpg'). Each image is read as
the model was trained: converted to its channels, resized to its input size, normalized with its saved
mean and std. A conversion that changes the picture (resizing, dropping an alpha channel, colour to gray)
is reported on stderr, one line per image.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Annotated

import typer

from cnnkit.cli.app import app

MNIST_LIKE = ("embedded", "mnist", "fashion-mnist")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def read_image(path: Path, input_shape, invert: bool | None, mnist_like: bool, notes: list | None = None):
    """An image file as uint8 (C, H, W) shaped for the model; MNIST-style white-on-black if needed.

    With ``invert`` None, a grayscale image for an MNIST-trained model is inverted when its border is light
    (a dark digit on white paper), because MNIST digits are white on black. What changed the picture on
    the way (resizing, alpha dropped, colour converted) is appended to ``notes``.
    """
    import numpy as np

    from cnnkit.data.imagefolder import _pillow_image
    from cnnkit.filetypes import describe, is_image

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file.")
    what = describe(path)
    if not is_image(what):
        raise ValueError(f"{path}: this is {what}, not an image (PNG, JPEG, ...).")
    Image = _pillow_image()
    notes = notes if notes is not None else []
    mode = "L" if input_shape[0] == 1 else "RGB"
    try:
        with Image.open(path) as img:
            if "A" in img.mode or img.mode == "P" and "transparency" in img.info:
                notes.append("alpha channel dropped")
            if img.mode not in ("L", "1", "I", "I;16", "LA") and mode == "L":
                notes.append("colour converted to grayscale")
            elif img.mode in ("L", "1", "LA") and mode == "RGB":
                notes.append("grayscale repeated into RGB")
            img = img.convert(mode)
            (w, h), (W, H) = img.size, (input_shape[2], input_shape[1])
            if (w, h) != (W, H):
                stretched = " (aspect ratio changed)" if w * H != h * W else ""
                notes.append(f"resized from {w}x{h} to {W}x{H}{stretched}")
                img = img.resize((input_shape[2], input_shape[1]), Image.BILINEAR)
            pixels = np.asarray(img, dtype=np.uint8)
    except OSError as e:
        raise ValueError(f"{path}: not a readable image ({e}).") from e
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    if invert is None:
        border = np.concatenate([pixels[:, 0].ravel(), pixels[:, -1].ravel(), pixels[:, :, 0].ravel(),
                                 pixels[:, :, -1].ravel()])
        invert = mnist_like and input_shape[0] == 1 and border.mean() > 127
        if invert:
            notes.append("inverted (dark on light, unlike MNIST)")
    return 255 - pixels if invert else pixels


def image_paths(specs) -> list[Path]:
    """Files as given, folders as their image files, glob patterns as what they match (sorted)."""
    paths = []
    for spec in map(str, specs):
        if any(c in spec for c in "*?["):
            found = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
            if not found:
                raise FileNotFoundError(f"{spec}: the pattern matches no file.")
            paths += found
        elif Path(spec).is_dir():
            found = sorted(p for p in Path(spec).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"{spec}: the folder holds no image ({', '.join(IMAGE_SUFFIXES)}).")
            paths += found
        else:
            paths.append(Path(spec))
    return paths


def preprocessing_for(ckpt, input: str | None, mean: str | None, std: str | None, classes: str | None):
    """The checkpoint's saved preprocessing, with what the options set in its place (for bare weights)."""
    from cnnkit.cli.summary import parse_input
    from cnnkit.data import Preprocessing

    saved = ckpt.preprocessing
    if input is None and saved is None:
        raise ValueError(f"{ckpt.path} records no input shape (a bare weights file); give it with --input, "
                         f"e.g. --input 1x28x28, and --mean/--std if the model was trained on normalized "
                         f"images.")
    shape = parse_input(input) if input is not None else saved.input_shape
    if len(shape) != 3:
        raise typer.BadParameter(f"{input!r}: predict reads images; give C x H x W, e.g. 1x28x28.",
                                 param_hint="'--input'")
    numbers = {name: _floats(text, name) for name, text in (("--mean", mean), ("--std", std))}
    if (mean is None) != (std is None):
        raise typer.BadParameter("give --mean and --std together.", param_hint="'--mean'")
    keep = saved is not None and saved.input_shape[0] == shape[0]  # its statistics fit these channels
    return Preprocessing(shape, mean=numbers["--mean"] if mean else saved.mean if keep else None,
                         std=numbers["--std"] if std else saved.std if keep else None,
                         classes=classes.split(",") if classes else saved.classes if saved else None)


def _floats(text: str | None, option: str):
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give one number per channel, e.g. 0.1307 or 0.485,0.456,0.406.",
                                 param_hint=f"'{option}'") from None


@app.command()
def predict(
    checkpoint: Annotated[Path, typer.Argument(
        metavar="CHECKPOINT", help="A checkpoint .npz or a run directory.")],
    images: Annotated[list[str], typer.Argument(
        metavar="IMAGE...", help="Image files (PNG, JPEG, ...), folders of them, or patterns like x/*.png.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Classes to show per image.")] = 3,
    invert: Annotated[bool | None, typer.Option(
        "--invert/--no-invert", show_default="auto",
        help="Invert gray levels (auto: for MNIST models, when the background is light).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image.")] = False,
    input: Annotated[str | None, typer.Option(  # noqa: A002 -- the option is called --input
        "--input", "-i", metavar="CxHxW", show_default="the checkpoint's",
        help="The model's input C x H x W, e.g. 1x28x28, for a checkpoint that does not record it.")] = None,
    mean: Annotated[str | None, typer.Option(
        show_default="the checkpoint's", help="Per-channel mean on the 0-1 scale, e.g. 0.1307.")] = None,
    std: Annotated[str | None, typer.Option(
        show_default="the checkpoint's", help="Per-channel standard deviation, e.g. 0.3081.")] = None,
    classes: Annotated[str | None, typer.Option(
        show_default="the checkpoint's", help="Class names, comma-separated.")] = None,
):
    """Classify images with a saved model: top-k classes, probabilities."""
    import numpy as np

    from cnnkit.io import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    metadata = ckpt.extra.get("metadata", {})
    pre = preprocessing_for(ckpt, input, mean, std, classes)
    mnist_like = metadata.get("data") in MNIST_LIKE
    paths = image_paths(images)
    pixels = []
    for path in paths:
        notes = []
        pixels.append(read_image(path, pre.input_shape, invert, mnist_like, notes))
        if notes:
            typer.echo(f"note: {path}: {', '.join(notes)}", err=True)
    x = pre.apply(np.stack(pixels))
    if pre.channels == "BGR":
        x = x[:, ::-1].copy()
    from cnnkit.fast.dispatch import no_grad

    with no_grad():  # inference: no layer keeps its input for a backward
        scores = ckpt.model.forward(x).reshape(len(x), -1).astype(np.float64)
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    k = min(top_k, probs.shape[1])
    names = list(pre.classes) if pre.classes and len(pre.classes) == probs.shape[1] else None
    for path, p in zip(paths, probs, strict=True):
        best = np.argsort(-p, kind="stable")[:k]
        labels = [names[i] if names else str(i) for i in best]
        if as_json:
            typer.echo(json.dumps({"image": str(path), "top": [
                {"class": label, "index": int(i), "probability": round(float(p[i]), 6)}
                for label, i in zip(labels, best, strict=True)]}))
        else:
            typer.echo(f"{path}: " + "  ".join(f"{n} ({p[i]:.1%})" for n, i in zip(labels, best,
                                                                                  strict=True)))
