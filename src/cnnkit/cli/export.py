"""``cnnkit export CHECKPOINT --format onnx|torch|safetensors --out PATH``: a saved model for other runtimes.

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

FORMATS = ("onnx", "torch", "safetensors")


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3,32,32"`` or ``"3x32x32"`` -> (3, 32, 32).

    >>> parse_shape("3x32x32")
    (3, 32, 32)
    """
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or any(n < 1 for n in shape):
        raise typer.BadParameter(f"{text!r}; expected positive sizes like 3,32,32 (channels, height, width).",
                                 param_hint="'--input-shape'")
    return shape


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
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint .npz or a run directory.")],
    format: Annotated[str, typer.Option(
        "--format", "-f", help="onnx, torch (.pt state dict) or safetensors.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The file to write.")],
    input_shape: Annotated[str | None, typer.Option(
        help="One example's shape C,H,W (ONNX only).", show_default="the shape the checkpoint was trained on")
    ] = None,
    opset: Annotated[int, typer.Option(min=7, help="ONNX operator set.")] = 17,
):
    """Export a saved model to ONNX, a PyTorch state dict, or safetensors."""
    from cnnkit.cli.onnx_source import is_onnx, load_onnx_checkpoint
    from cnnkit.io import load_checkpoint

    if format not in FORMATS:
        raise typer.BadParameter(f"{format!r}; choose one of {', '.join(FORMATS)}.", param_hint="'--format'")
    check_output_file(out)
    if is_onnx(checkpoint):  # an ONNX file (from anywhere) re-exported: cnnkit's own ONNX, torch, safetensors
        if out.resolve() == checkpoint.resolve():
            raise typer.BadParameter(f"{out} is the file being read; choose another --out.",
                                     param_hint="'--out'")
        ckpt = load_onnx_checkpoint(checkpoint, parse_shape(input_shape) if input_shape is not None else None)
    else:
        ckpt = load_checkpoint(checkpoint)
    model = ckpt.model.eval()
    if format == "onnx":
        from cnnkit.interop.onnx import export as export_onnx

        saved = ckpt.extra.get("metadata", {}).get("input_shape")
        if input_shape is None and not saved:
            raise typer.BadParameter("the checkpoint does not record its input shape; pass e.g. "
                                     "--input-shape 3,32,32.", param_hint="'--input-shape'")
        shape = parse_shape(input_shape) if input_shape is not None else tuple(saved)
        proto = export_onnx(model, out, shape, opset)
        error = verify_onnx(model, out, shape)
        check = "" if error is None else f"; onnxruntime matches cnnkit (relative error {error:.1e})"
        typer.echo(f"wrote {out}: ONNX opset {opset}, input (batch, {', '.join(map(str, shape))}), "
                   f"{len(proto.graph.node)} nodes{check}")
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

        save_file(state, out, metadata={"format": "pt", "producer": "cnnkit"})
    typer.echo(f"wrote {out}: {len(state)} tensors ({model.num_parameters():,} parameters), keys like "
               f"{next(iter(state), '')!r}; the matching torch module: "
               f"cnnkit.interop.to_torch(cnnkit.load({str(checkpoint)!r}))")
