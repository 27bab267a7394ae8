"""``cnnkit report RUN_DIR``: write the run's self-contained report.html (see cnnkit.viz.report).

A folder with nothing to report is refused before anything is written: one that is not a run directory
(no checkpoint.npz) or a run that has not finished an epoch (stopped in its first one).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated

import typer

from cnnkit.cli.app import UserError, app
from cnnkit.cli.paths import check_output_file


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(
        metavar="RUN", help="A run directory written by cnnkit train or cnnkit finetune.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", metavar="FILE", help="HTML file to write.", show_default="RUN/report.html")] = None,
    examples: Annotated[int, typer.Option(
        min=1, help="Test images that get activation, occlusion and saliency maps.")] = 3,
    root: Annotated[Path | None, typer.Option(metavar="DIR", help="Folder holding the datasets.",
                                              show_default="the run's own")] = None,
):
    """Write a run's self-contained HTML report (open it in any browser)."""
    check_reportable(Path(run_dir))
    check_output_file(out if out is not None else Path(run_dir) / "report.html")
    from cnnkit.analysis.summary import human_bytes
    from cnnkit.viz.report import write_report

    path = write_report(run_dir, out=out, root=root, examples=examples)
    typer.echo(f"wrote {path} ({human_bytes(path.stat().st_size)})")


def check_reportable(run_dir: Path):
    """Refuse, in one line naming the folder and what it lacks, a folder with nothing to report.

    Raises:
        UserError: no such folder, no checkpoint.npz in it, or no finished epoch (epoch 0, no history).
    """
    if not run_dir.is_dir():
        hint = " (nothing there)" if not run_dir.exists() else \
            f"; give its folder, {run_dir.parent}" if run_dir.name == "checkpoint.npz" else ""
        raise UserError(f"report: {run_dir} is not a directory{hint}; pass the run directory that cnnkit "
                        f"train or cnnkit finetune wrote (it holds checkpoint.npz).")
    if not (run_dir / "checkpoint.npz").is_file():
        raise UserError(f"report: {run_dir} is not a run directory: it has no checkpoint.npz (cnnkit train "
                        f"and cnnkit finetune write one); nothing to report.")
    header = _header(run_dir / "checkpoint.npz")
    if header is None:  # unreadable: load_checkpoint names what is wrong with it
        return
    extra = header.get("extra") or {}
    fit = extra.get("fit") or {}
    if _records(run_dir / "history.json") or (fit.get("history") or {}).get("records") or header.get("epoch"):
        return
    if header.get("epoch") == 0:  # written before the first epoch, which was then interrupted
        command = "finetune" if "finetune" in (extra.get("metadata") or {}) else "train"
        raise UserError(f"report: {run_dir} has no finished epoch to report (its checkpoint.npz is from "
                        f"before epoch 1, and there is no history.json); continue the run first: cnnkit "
                        f"{command} --resume {shlex.quote(str(run_dir))}")
    raise UserError(f"report: {run_dir} has no training history to report (no history.json, and its "
                    f"checkpoint.npz records no epoch: a model saved from Python?); train it with cnnkit "
                    f"train, or call cnnkit.viz.report.write_report on the folder from Python.")


def _header(checkpoint: Path) -> dict | None:
    """The checkpoint's JSON header, read without its arrays; None if it cannot be read."""
    import numpy as np

    from cnnkit.io import HEADER_KEY

    try:
        with np.load(checkpoint, allow_pickle=False) as npz:
            return json.loads(npz[HEADER_KEY].tobytes().decode("utf-8"))
    except Exception:  # noqa: BLE001 -- any problem is load_checkpoint's to name, with the right words
        return None


def _records(path: Path) -> list:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("records") or []
    except (OSError, ValueError, AttributeError):
        return []
