"""``cnnkit bench [OPTIONS]``: the benchmark suite of a source checkout, cnnkit against PyTorch.

The suite lives in the repository's ``benchmarks/`` folder, next to ``src/`` (it is not installed with the
package, and it needs PyTorch: ``pip install -e ".[bench]"``). This command finds that folder from the
current directory (or from an editable install) and runs ``python -m benchmarks`` with the same options;
its options, ``--help`` included, are the harness's own, so they are parsed (and listed) in one place.
An installed package without a checkout gets one line saying where and what to run instead.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from cnnkit.cli.app import app

HELP = ("-h", "--help")


def find_checkout(start: Path | None = None) -> Path | None:
    """The directory holding ``benchmarks/harness.py``: ``start`` (default the current directory) or one of
    its parents, else the checkout an editable install of cnnkit points into; None if there is none."""
    import cnnkit

    start = Path.cwd() if start is None else Path(start)
    for root in (start, *start.parents, Path(cnnkit.__file__).resolve().parents[2]):
        if (root / "benchmarks" / "harness.py").is_file():
            return root
    return None


def load_suite():
    """The checkout's ``benchmarks.__main__.main``, or None when no checkout (or no benchmarks) is found."""
    root = find_checkout()
    if root is None:
        return None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        from benchmarks.__main__ import main
    except ModuleNotFoundError as e:
        if e.name in ("benchmarks", "benchmarks.__main__"):
            return None
        raise
    return main


def needs_checkout(args) -> str:
    """The one-line error of an installed package: the suite is in the source tree, here is how to run it."""
    command = " ".join(["python -m benchmarks", *map(shlex.quote, args)])
    return ("cnnkit bench needs a source checkout of cnnkit (its benchmarks/ folder is not installed with "
            f"the package); in the checkout run: pip install -e \".[bench]\" && {command}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "help_option_names": []})
def bench(ctx: typer.Context):
    """Time cnnkit against PyTorch, rewrite docs/performance.md; options as [bold]python -m benchmarks[/bold].

    Examples: [bold]cnnkit bench[/bold] (everything, on two configurations, ~15 min);
    [bold]cnnkit bench --suites conv --cases g=64 --configs cpu:1 --output -[/bold] (one case, no file).
    Unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE first where they are set: they halve NumPy's matrix multiply.
    Runs from a source checkout and needs PyTorch: pip install -e ".\\[bench]".
    """
    args = list(ctx.args)
    asks_help = any(a in HELP for a in args)
    run_suite = load_suite()
    if run_suite is None:
        if asks_help:  # what the command is, and where its options can be listed
            typer.echo(ctx.get_help())
            typer.echo(needs_checkout(args))
            raise typer.Exit(0)
        raise FileNotFoundError(needs_checkout(args))
    try:  # the harness parses (and lists) its options before it imports PyTorch
        code = run_suite(args, prog="cnnkit bench")
    except ModuleNotFoundError as e:
        if e.name != "torch":
            raise
        message = 'cnnkit bench compares against PyTorch; install it with: pip install -e ".[bench]"'
        raise ImportError(message) from None
    raise typer.Exit(code)
