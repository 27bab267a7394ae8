"""``cnnkit viz filters|activations|occlusion|saliency CHECKPOINT [IMAGE]``: one picture from a saved model.

IMAGE is an image file (PNG, JPEG, ...; resized and converted like ``cnnkit predict`` does) or ``test:N``,
the N-th image of the test split the model was trained on (the default is ``test:0``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cnnkit.cli.app import app
from cnnkit.cli.paths import check_output_file

viz_app = typer.Typer(
    help="Pictures of a trained model: its filters, activations, occlusion and saliency maps (PNG).",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help, as the main app's
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(viz_app, name="viz")

CheckpointArg = Annotated[Path, typer.Argument(
    metavar="CHECKPOINT", help="A checkpoint .npz, a run directory or an ONNX file.")]
ImageArg = Annotated[str, typer.Argument(
    help="An image file, or test:N for the N-th test image of the model's dataset.")]
LayerOpt = Annotated[str | None, typer.Option(
    "--layer", "-l", help="Dotted layer name, as in the model summary (default: the first convolution).")]
TargetOpt = Annotated[int | None, typer.Option(
    "--target", "-t", min=0, help="Class index to explain (default: the predicted class).")]
RootOpt = Annotated[Path | None, typer.Option(metavar="DIR", help="Folder holding the datasets (for test:N).",
                                              show_default="the run's own")]




def out_option(default: str):
    return Annotated[Path, typer.Option("--out", "-o", metavar="FILE", help="PNG file to write.",
                                        show_default=default)]


FiltersOut, ActivationsOut = out_option("filters.png"), out_option("activations.png")
OcclusionOut, SaliencyOut = out_option("occlusion.png"), out_option("saliency.png")


def _load(checkpoint: Path, out: Path):
    """(model, metadata); ``out`` is checked first, so that an unwritable one fails before any work."""
    from cnnkit.cli.onnx_source import is_onnx, load_onnx_checkpoint
    from cnnkit.io import load_checkpoint

    check_output_file(out)
    ckpt = load_onnx_checkpoint(checkpoint) if is_onnx(checkpoint) else load_checkpoint(checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    metadata = dict(ckpt.extra.get("metadata") or {})
    if ckpt.preprocessing is not None:  # the model's own record, also for a model saved from Python
        metadata["preprocessing"] = ckpt.preprocessing.to_dict()
    return ckpt.model, metadata


def _image(spec: str, metadata: dict, root: Path | None):
    """x float32 (C, H, W), as the model takes it, for an image file or ``test:N``."""
    import numpy as np

    from cnnkit.viz.report import dataset_name, model_input

    if spec.startswith("test:"):
        index = spec[5:]
        name = dataset_name(metadata)
        if not index.isdigit():
            raise ValueError(f"{spec!r}: expected test:N with N a non-negative integer, e.g. test:0.")
        if not name:
            raise ValueError("the checkpoint does not name its dataset (cnnkit train saves it); "
                             "pass an image file.")
        from cnnkit.cli.evaluate import saved_root
        from cnnkit.data import load

        test = load(name, "test", root if root is not None else saved_root(metadata))
        i = int(index)
        if i >= len(test):
            raise ValueError(f"{spec!r}: the {name} test split has {len(test)} images "
                             f"(test:0 .. test:{len(test) - 1}).")
        return model_input(test.images[i:i + 1], metadata)[0]
    from cnnkit.cli.predict import MNIST_LIKE, read_image

    preprocessing = metadata.get("preprocessing")
    shape = preprocessing["input_shape"] if preprocessing else metadata.get("input_shape")
    if not shape:
        raise ValueError("the checkpoint has no input_shape metadata (cnnkit train saves it), so an image "
                         "file cannot be resized for it; use test:N.")
    notes = []
    pixels = read_image(Path(spec), shape, None, dataset_name(metadata) in MNIST_LIKE, notes)
    if notes:
        typer.echo(f"note: {spec}: {', '.join(notes)}", err=True)
    return model_input(pixels[None].astype(np.uint8), metadata)[0]


def _first_conv(model) -> str:
    from cnnkit.layers import Conv2d

    for name, layer in model.named_layers():
        if isinstance(layer, Conv2d):
            return name
    raise ValueError("the model has no Conv2d layer; name one with --layer.")


def _explained(checkpoint, image, root, target, out):
    """(model, x, target class, a description) for the occlusion and saliency commands."""
    from cnnkit.viz._run import scores

    model, metadata = _load(checkpoint, out)
    x = _image(image, metadata, root)
    predicted = int(scores(model, x[None]).argmax())
    chosen = predicted if target is None else target
    classes = metadata.get("classes")
    label = str(classes[chosen]) if classes and chosen < len(classes) else str(chosen)
    name = f" ({label})" if label != str(chosen) else ""
    verdict = " (predicted)" if target is None else f", predicted {predicted}"
    return model, x, chosen, f"class {chosen}{name}{verdict}"


def _done(out: Path, what: str):
    typer.echo(f"wrote {out} ({what})")


@viz_app.command("filters")
def filters_command(checkpoint: CheckpointArg, layer: LayerOpt = None,
                    out: FiltersOut = Path("filters.png"),
                    mode: Annotated[str, typer.Option(help="auto, rgb, channels or mean.")] = "auto"):
    """The filters of a convolution layer as a grid of tiles."""
    from cnnkit.viz import filters

    model, _ = _load(checkpoint, out)
    name = layer or _first_conv(model)
    tiles = filters(model.get(name), mode=mode, save=out, title=f"{name}: {model.get(name)!r}")
    _done(out, f"{len(tiles)} filters of {name}")


@viz_app.command("activations")
def activations_command(checkpoint: CheckpointArg, image: ImageArg = "test:0", layer: LayerOpt = None,
                        out: ActivationsOut = Path("activations.png"), root: RootOpt = None):
    """The activation maps of one image at a layer, one tile per channel."""
    from cnnkit.viz import activations

    model, metadata = _load(checkpoint, out)
    x = _image(image, metadata, root)
    name = layer or _first_conv(model)
    result = activations(model, x, name, save=out)
    _done(out, f"layer {name}, shape {tuple(result.shape)}")


@viz_app.command("occlusion")
def occlusion_command(checkpoint: CheckpointArg, image: ImageArg = "test:0", target: TargetOpt = None,
                      patch: Annotated[int, typer.Option(min=1, help="Side of the grey square (px).")] = 8,
                      stride: Annotated[int, typer.Option(min=1, help="Step between patch positions.")] = 2,
                      overlay: Annotated[bool, typer.Option(help="Only the map over the image.")] = False,
                      score: Annotated[str, typer.Option(
                          help="probability, or logit for a very confident model.")] = "probability",
                      out: OcclusionOut = Path("occlusion.png"), root: RootOpt = None):
    """Slide a grey patch over the image: how much does the class probability drop at each place?"""
    from cnnkit.viz import occlusion

    model, x, target, what = _explained(checkpoint, image, root, target, out)
    heat = occlusion(model, x, target, patch=patch, stride=stride, score=score, overlay=overlay, save=out)
    _done(out, f"{what}; largest drop {heat.max():.3f}")


@viz_app.command("saliency")
def saliency_command(checkpoint: CheckpointArg, image: ImageArg = "test:0", target: TargetOpt = None,
                     out: SaliencyOut = Path("saliency.png"), root: RootOpt = None):
    """The gradient of the class score with respect to each input pixel."""
    from cnnkit.viz import saliency

    model, x, target, what = _explained(checkpoint, image, root, target, out)
    saliency(model, x, target, save=out)
    _done(out, what)
