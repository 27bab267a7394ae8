"""``cnnkit report RUN_DIR``: write the run's self-contained report.html (see cnnkit.viz.report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cnnkit.cli.app import app


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by cnnkit train.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="HTML file to write.", show_default="RUN_DIR/report.html")] = None,
    examples: Annotated[int, typer.Option(
        min=1, help="Test images that get activation, occlusion and saliency maps.")] = 3,
    root: Annotated[Path | None, typer.Option(help="Folder holding the datasets.")] = None,
):
    """Write one self-contained HTML report of a training run: open it from disk in any browser."""
    from cnnkit.viz.report import write_report

    path = write_report(run_dir, out=out, root=root, examples=examples)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
