"""``cnnkit report RUN_DIR``: write the run's self-contained report.html (see cnnkit.viz.report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cnnkit.cli.app import app
from cnnkit.cli.paths import check_output_file


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(
        metavar="RUN", help="A run directory written by cnnkit train.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", metavar="FILE", help="HTML file to write.", show_default="RUN/report.html")] = None,
    examples: Annotated[int, typer.Option(
        min=1, help="Test images that get activation, occlusion and saliency maps.")] = 3,
    root: Annotated[Path | None, typer.Option(metavar="DIR", help="Folder holding the datasets.",
                                              show_default="the run's own")] = None,
):
    """Write a run's self-contained HTML report (open it in any browser)."""
    from cnnkit.analysis.summary import human_bytes
    from cnnkit.viz.report import write_report

    if out is not None or Path(run_dir).is_dir():  # a missing run is write_report's error to name
        check_output_file(out if out is not None else Path(run_dir) / "report.html")
    path = write_report(run_dir, out=out, root=root, examples=examples)
    typer.echo(f"wrote {path} ({human_bytes(path.stat().st_size)})")
