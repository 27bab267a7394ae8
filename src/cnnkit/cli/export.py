"""``cnnkit export CHECKPOINT [--format onnx|torch|safetensors] [--out PATH]``: a model for other runtimes.

The file goes next to the checkpoint by default (``RUN/model.onnx`` for a run directory). The model's
input recipe (input shape, channel order, mean/std, class names) is written into the ONNX file's
``metadata_props`` and the safetensors header, so the exported model still says how to feed it.

onnx         a standard ONNX file (NCHW, dynamic batch), checked and, when onnxruntime is installed, run once
             against cnnkit's own output;
torch        the state dict as a ``.pt`` file (``torch.save``): keys are torchvision's for zoo models, and
             ``cnnkit.interop.to_torch(cnnkit.load(CHECKPOINT))`` builds the matching nn.Module;
safetensors  the same state dict in the safetensors format, written without torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cnnkit.cli.app import app
from cnnkit.cli.paths import check_output_file

FORMATS = {"onnx": ".onnx", "torch": ".pt", "safetensors": ".safetensors"}


def default_out(checkpoint: Path, format: str) -> Path:
    """RUN/model.onnx for a run directory, else model.onnx beside the checkpoint file."""
    folder = checkpoint if checkpoint.is_dir() else checkpoint.parent
    return folder / f"model{FORMATS[format]}"


def verify_onnx(model, path: Path, input_shape) -> float | None:
    """Relative error between onnxruntime and cnnkit on a random batch of 2; None without onnxruntime."""
    import numpy as np

    try:
        import onnxruntime  # noqa: F401 -- only checking that it is there
    except ImportError:
        return None
    from cnnkit.interop.onnx import run

    x = np.random.default_rng(0).standard_normal((2, *input_shape)).astype(np.float32)
    expected = model.eval().forward(x)
    got = run(path, x)
    return float(np.abs(got - expected).max() / max(float(np.abs(expected).max()), 1e-30))


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(
        metavar="CHECKPOINT", help="A checkpoint .npz or a run directory.")],
    format: Annotated[str, typer.Option(
        "--format", "-f", help="onnx, torch (.pt state dict) or safetensors.")] = "onnx",
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", metavar="FILE", help="The file to write.",
        show_default="model.onnx (.pt, .safetensors) beside it")
    ] = None,
    input_shape: Annotated[str | None, typer.Option(
        "--input", "--input-shape", "-i", metavar="CxHxW",
        help="One example's shape C x H x W, e.g. 3x32x32 (ONNX only).",
        show_default="the shape the checkpoint was trained on")] = None,
    opset: Annotated[int, typer.Option(min=7, help="ONNX operator set.")] = 17,
):
    """Export a saved model to ONNX, a PyTorch state dict or safetensors."""
    from cnnkit.cli.onnx_source import is_onnx, load_onnx_checkpoint
    from cnnkit.cli.summary import parse_input
    from cnnkit.io import load_checkpoint

    if format not in FORMATS:
        raise typer.BadParameter(f"{format!r}; choose one of {', '.join(FORMATS)}.", param_hint="'--format'")
    out = check_output_file(out if out is not None else default_out(checkpoint, format))
    if is_onnx(checkpoint):  # an ONNX file (from anywhere) re-exported: cnnkit's own ONNX, torch, safetensors
        if out.resolve() == checkpoint.resolve():
            raise typer.BadParameter(f"{out} is the file being read; choose another --out.",
                                     param_hint="'--out'")
        ckpt = load_onnx_checkpoint(checkpoint, parse_input(input_shape) if input_shape is not None else None)
    else:
        ckpt = load_checkpoint(checkpoint)
    model = ckpt.model.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    if format == "onnx":
        from cnnkit.interop.onnx import export as export_onnx

        saved = ckpt.preprocessing.input_shape if ckpt.preprocessing is not None else None
        if input_shape is None and not saved:
            raise typer.BadParameter("the checkpoint does not record its input shape; give it, e.g. "
                                     "--input 3x32x32.", param_hint="'--input'")
        shape = parse_input(input_shape) if input_shape is not None else tuple(saved)
        proto = export_onnx(model, out, shape, opset)
        error = verify_onnx(model, out, shape)
        check = "" if error is None else f"; onnxruntime matches cnnkit (relative error {error:.1e})"
        recipe = f"; preprocessing in metadata_props ({ckpt.preprocessing.describe()})" \
            if ckpt.preprocessing is not None else ""
        typer.echo(f"wrote {out}: ONNX opset {opset}, input (batch, {', '.join(map(str, shape))}), "
                   f"{len(proto.graph.node)} nodes{check}{recipe}")
        if error is not None and error > 1e-4:
            raise ValueError(f"the ONNX file's output differs from cnnkit's by {error:.1e} (relative); "
                             f"please report this model.")
        return
    state = {k: v for k, v in model.state_dict().items()}
    if format == "torch":
        from cnnkit.interop.torch import require_torch

        torch = require_torch()
        torch.save({k: torch.from_numpy(v.copy()) for k, v in state.items()}, out)
    else:
        from cnnkit.interop.safetensors import save_file

        recipe = ckpt.preprocessing.to_strings() if ckpt.preprocessing is not None else {}
        save_file(state, out, metadata={"format": "pt", "producer": "cnnkit", **recipe})
    typer.echo(f"wrote {out}: {len(state)} tensors ({model.num_parameters():,} parameters), keys like "
               f"{next(iter(state), '')!r}; the matching torch module: "
               f"cnnkit.interop.to_torch(cnnkit.load({str(checkpoint)!r}))")
