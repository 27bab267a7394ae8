"""``cnnkit summary MODEL_OR_SPEC``: the layer table, totals, memory per batch and the largest batch."""

from __future__ import annotations

import difflib
import json
import re
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from cnnkit.cli.app import app

SPEC_DEFAULT_INPUT = (3, 32, 32)


class Format(str, Enum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


def parse_input(text: str) -> tuple[int, ...]:
    """``"3x224x224"`` (or ``"3,224,224"``) -> (3, 224, 224): one example's shape, channels first.

    One number is a vector's length (an MLP's input); two numbers are an image without its channel axis,
    which no model takes, so they are refused with the form to use.

    >>> parse_input("3x224x224"), parse_input("1, 28, 28"), parse_input("784")
    ((3, 224, 224), (1, 28, 28), (784,))
    """
    parts = [p for p in re.split(r"[x,\s]+", text.strip().lower()) if p]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise typer.BadParameter(f"{text!r}: give positive sizes C x H x W, e.g. 1x28x28 or 3x224x224.",
                                 param_hint="'--input'")
    if len(parts) == 2:
        raise typer.BadParameter(f"{text!r} has no channel axis: give C x H x W, e.g. 1x28x28 (grayscale) or "
                                 f"3x{parts[0]}x{parts[1]} (RGB).", param_hint="'--input'")
    return tuple(int(p) for p in parts)


def resolve_model(model: str, input_shape, num_classes):
    """(network, input shape) for a zoo name, a saved checkpoint, an ONNX file or a spec in the notes'
    notation."""
    from cnnkit import build, models
    from cnnkit.build import SpecError
    from cnnkit.cli.onnx_source import is_onnx, load_onnx_checkpoint
    from cnnkit.errors import ShapeError

    if model in models.names():
        shape = input_shape or models.default_input_shape(model)
        kwargs = {"input_shape": shape, **({} if num_classes is None else {"num_classes": num_classes})}
        try:
            return models.get(model, **kwargs), shape
        except ShapeError as e:
            raise ShapeError(f"{model} cannot take a {'x'.join(map(str, shape))} input: {e}") from None
    if is_onnx(model) and Path(model).is_file():  # an ONNX file: its declared input size unless told another
        ckpt = load_onnx_checkpoint(model, input_shape)
        return ckpt.model, tuple(ckpt.extra["metadata"]["input_shape"])
    if Path(model).exists():  # a checkpoint or a run directory: its own input shape unless told another
        from cnnkit.io import load_checkpoint

        ckpt = load_checkpoint(model)
        saved = ckpt.extra.get("metadata", {}).get("input_shape")
        if input_shape is None and not saved:
            raise typer.BadParameter(f"{model} does not record its input size; give it, e.g. --input 3x32x32",
                                     param_hint="'--input'")
        return ckpt.model, input_shape or tuple(saved)
    if re.fullmatch(r"[\w.-]+", model) and not re.search(r"(?i)^(input|conv|pool|fc)", model):
        close = difflib.get_close_matches(model.lower(), models.names(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"{model!r} is not a zoo model, a file or a spec.{hint} Zoo models: "
                       f"{', '.join(models.names())}; a spec looks like "
                       f"'INPUT -> [CONV -> RELU -> POOL]*2 -> FC'.")
    shape = input_shape or SPEC_DEFAULT_INPUT
    try:
        return build(model, shape, 10 if num_classes is None else num_classes), shape
    except SpecError as e:
        # Printed as is: the caret under the offending token needs the line breaks a one-line error drops.
        typer.echo(f"cnnkit summary: error: {e}", err=True)
        raise typer.Exit(2) from None


@app.command()
def summary(
    model: Annotated[str, typer.Argument(
        metavar="MODEL_OR_SPEC",
        help="A zoo model (resnet50, vgg16, ...), a saved model, an ONNX file, or a spec in the notes' "
             "notation such as "
             "'INPUT -> [[CONV -> RELU]*2 -> POOL]*3 -> [FC -> RELU] -> FC'.")],
    input: Annotated[str | None, typer.Option(  # noqa: A002 -- the option is called --input
        "--input", "-i", metavar="CxHxW", show_default="the model's own (3x32x32 for a spec)",
        help="One example's shape, C x H x W, e.g. 3x224x224.")] = None,
    num_classes: Annotated[int | None, typer.Option(
        "--num-classes", min=1, show_default="the model's own (10 for a spec)")] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", "-b", min=1, help="Batch for the memory line.")] = 1,
    memory: Annotated[str | None, typer.Option(
        "--memory", "-m", metavar="SIZE",
        help="A budget such as 4GB or 8GiB (powers of 1024): print the largest batch that fits.")] = None,
    optimizer: Annotated[str | None, typer.Option(
        help="Count its state in training memory: sgd, momentum, nesterov, rmsprop, adagrad, adam, "
             "adamw.")] = None,
    inference: Annotated[bool, typer.Option(
        "--inference", help="Memory for inference (volumes once, no gradients), not training.")] = False,
    output_format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
):
    """Print a model's layers (output shape, parameters, MACs, activations, receptive field) and memory.

    MACs are multiply-adds of conv and FC layers; FLOPs = 2 x MACs.
    Memory follows the notes' rule: every stored volume x 4 bytes, x 2 in training (its gradient), plus
    the parameters (in training also their gradients and the optimizer's state).
    """
    from cnnkit.analysis import summary as summarize
    from cnnkit.analysis.summary import human_bytes, parse_bytes

    net, shape = resolve_model(model, parse_input(input) if input else None, num_classes)
    result = summarize(net, shape)
    training = not inference
    need = result.memory_bytes(batch_size, training, optimizer)
    mode = "training" + (f" with {optimizer}" if optimizer else "") if training else "inference"
    lines = [f"Memory for a batch of {batch_size} ({mode}, float32): {human_bytes(need)} ({need:,} bytes)"]
    fits = None
    if memory is not None:
        try:
            budget = parse_bytes(memory)
        except ValueError as e:  # "Received memory='4': a number needs a unit..." in the shell's words
            raise typer.BadParameter(f"{memory!r}: {str(e).split(': ', 1)[1]}", param_hint="'--memory'") \
                from None
        fits = result.max_batch_size(budget, training, optimizer)
        within = f"{memory} = {human_bytes(budget)}"
        lines.append(f"Largest batch that fits in {within} ({mode}): {fits:,}" if fits else
                     f"Nothing fits in {within} ({mode}): the parameters alone need "
                     f"{human_bytes(result.memory_bytes(0, training, optimizer))}.")
    if output_format is Format.csv:
        typer.echo(result.to_csv(), nl=False)
    elif output_format is Format.json:
        data = {**result.to_dict(), "batch_size": batch_size, "training": training, "memory_bytes": need}
        if memory is not None:
            data["max_batch_size"] = fits
        typer.echo(json.dumps(data, indent=1))
    elif output_format is Format.markdown:
        typer.echo(result.to_markdown() + "".join(f"- {line}\n" for line in lines), nl=False)
    else:
        typer.echo(f"{model} on {'x'.join(map(str, shape))}")
        typer.echo("\n".join([str(result), *lines]))
