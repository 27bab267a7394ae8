"""ONNX files where the commands take a saved model: ``cnnkit summary/viz/finetune/export model.onnx``.

An ``.onnx`` path is imported with :func:`cnnkit.interop.onnx_import.load_with_info` and handed to the
command as a checkpoint would be: the network, and the metadata the commands read (the input shape the file
declares, and the input recipe ``cnnkit export`` wrote into it).
"""

from __future__ import annotations

from pathlib import Path

import typer


def is_onnx(path) -> bool:
    """True for a path that names an ONNX file (``.onnx``, any case)."""
    return str(path).lower().endswith(".onnx")


def load_onnx_checkpoint(path, input_shape=None, *, fallback_shape=None):
    """A :class:`cnnkit.io.Checkpoint` for an ONNX file: its network (eval mode) and metadata.

    ``input_shape`` overrides the file's; ``fallback_shape`` (a dataset's) is used where the file leaves
    its input size open.

    Raises:
        typer.BadParameter: the file leaves its input size open and no shape is given.
        FileNotFoundError, OnnxImportError: as :func:`cnnkit.interop.onnx_import.load`.
    """
    from cnnkit.interop.onnx_import import OnnxImportError, load_with_info
    from cnnkit.io import Checkpoint

    try:
        net, info = load_with_info(path, input_shape=input_shape)
    except OnnxImportError as e:
        if "dynamic dimensions" not in str(e):
            raise
        if fallback_shape is None:
            raise typer.BadParameter(f"{path} leaves its input size open; give it, e.g. --input 3x224x224.",
                                     param_hint="'--input'") from None
        input_shape = tuple(fallback_shape)
        net, info = load_with_info(path, input_shape=input_shape)
    shape = tuple(input_shape) if input_shape is not None else info["input_shape"]
    metadata = {"input_shape": list(shape), "onnx": {"producer": info["producer"], "opset": info["opset"]}}
    recipe = getattr(net, "preprocessing", None)
    if recipe is not None:
        metadata["preprocessing"] = recipe.to_dict()
        if recipe.mean is not None:
            metadata["normalize"] = {"mean": list(recipe.mean), "std": list(recipe.std)}
        if recipe.classes:
            metadata["classes"] = list(recipe.classes)
    checkpoint = Checkpoint(model=net, path=Path(path), extra={"metadata": metadata})
    if hasattr(Checkpoint, "preprocessing"):  # the file's recipe, else at least the input shape it declares
        if recipe is None:
            from cnnkit.data.preprocessing import Preprocessing

            recipe = Preprocessing(shape)
        checkpoint.preprocessing = recipe
    return checkpoint
