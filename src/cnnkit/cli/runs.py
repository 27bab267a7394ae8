"""What ``cnnkit train`` and ``cnnkit finetune`` share about a run directory.

- ``--resume RUN``: the settings saved in the run become the defaults (:func:`saved_settings`,
  :func:`merge_settings`);
- Ctrl-C: one line saying where the run stopped and how to resume it (:class:`Where`,
  :func:`resume_hint`), exit status 130;
- a finished run: metrics.json, history.json, history.csv, summary.txt, the result line and report.html
  (:func:`finish_run`).
"""

from __future__ import annotations

import contextlib
import json
import shlex
from pathlib import Path

import typer

from cnnkit.cli.app import Interrupted, UserError
from cnnkit.train.callbacks import Callback

COMMANDS = ("train", "finetune")  # the key each one stores its settings under in the run's metadata


def saved_settings(metadata: dict, command: str, path: Path) -> tuple[dict, list]:
    """The settings ``cnnkit COMMAND`` stored in a run, and the command lines that made it (oldest first).

    Raises:
        UserError: the run was written by the other command (its settings and optimizer would not fit).
    """
    other = next((c for c in COMMANDS if c != command and c in metadata and command not in metadata), None)
    if other is not None:
        raise UserError(f"{path} was written by cnnkit {other}; continue it with: cnnkit {other} --resume "
                        f"{shlex.quote(str(path.parent))}")
    return metadata.get(command, {}), metadata.get("commands", [])


def merge_settings(given: dict, saved: dict, defaults: dict) -> dict:
    """Each setting as given on the command line, else as saved in the resumed run, else its default.

    >>> merge_settings({"lr": None, "epochs": 5}, {"lr": 0.1, "epochs": 2}, {"lr": 1.0, "seed": 0})
    {'lr': 0.1, 'epochs': 5}
    """
    return {key: value if value is not None else saved.get(key, defaults.get(key))
            for key, value in given.items()}


class Where(Callback):
    """A fit callback that knows the epoch in progress (1-based), to say where Ctrl-C stopped the run.

    Args:
        epoch: the epoch that starts first (the checkpoint's epoch + 1 on a resume).
    """

    def __init__(self, epoch: int = 1):
        self.phase, self.epoch = "in epoch", epoch

    def on_epoch_begin(self, epoch: int):
        self.epoch = epoch + 1


@contextlib.contextmanager
def resume_hint(command: str, checkpoint: Path, where: Where):
    """Ctrl-C inside, once ``checkpoint`` exists: ``interrupted in epoch N; resume with: cnnkit COMMAND
    --resume RUN`` (cnnkit.cli prints it and exits with status 130). Before the run's first checkpoint
    there is nothing to resume: the plain ``cnnkit: interrupted``."""
    try:
        yield
    except Interrupted:
        if not checkpoint.exists():
            raise
        raise Interrupted(f"interrupted {where.phase} {where.epoch}; resume with: cnnkit {command} --resume "
                          f"{shlex.quote(str(checkpoint.parent))}") from None


def finish_run(run: Path, *, table, settings: dict, result: dict, history, seconds: float, doing: str,
               metrics: dict | None = None, quiet: bool = False, report: bool = True,
               root: Path | None = None):
    """Write a finished run's files, print its result line and, if asked, write report.html.

    Args:
        run: the run directory.
        table: the model's summary table (``cnnkit.analysis.summary``), for summary.txt.
        settings: the command's settings, for summary.txt.
        result: ``cnnkit.train.evaluate``'s answer on the test set.
        history: the run's History.
        seconds: the time spent in ``fit``.
        doing: "training" or "fine-tuning", for the messages.
        metrics: more entries for metrics.json.
        quiet: print only the result line.
        report: write report.html (needs cnnkit[viz]; without it, one line says so).
        root: the folder the datasets are read from, for the report's test images.
    """
    epochs = len(history) and history.last["epoch"]
    written = {"test_accuracy": result["accuracy"], "test_loss": result["loss"], "test_images": result["n"],
               "train_seconds": round(seconds, 1), "epochs": epochs, **(metrics or {})}
    if "top5" in result:
        written["test_top5"] = result["top5"]
    (run / "metrics.json").write_text(json.dumps(written, indent=2) + "\n")
    history.to_json(run / "history.json")
    history.to_csv(run / "history.csv")
    (run / "summary.txt").write_text(
        f"{table}\n\nsettings: {json.dumps(settings)}\n"
        f"test accuracy {result['accuracy']:.4f}, test loss {result['loss']:.4f} on {result['n']} images; "
        f"{doing} took {seconds:.1f} s\n")
    of = "" if doing == "training" else f" of {doing}"
    typer.echo(f"test accuracy {result['accuracy']:.2%} (loss {result['loss']:.4f}) on {result['n']:,} "
               f"images after {epochs} epoch{'s' * (epochs != 1)}{of}, {seconds:.0f} s; run saved in {run}")
    if report:
        try:
            from cnnkit.viz.report import write_report

            path = write_report(run, root=root)
        except ImportError as e:  # matplotlib is an extra: a missing one must not fail a finished run
            typer.echo(f"no report: {e}")
        else:
            if not quiet:
                typer.echo(f"report: {path}")
