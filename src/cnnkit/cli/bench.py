"""``cnnkit bench [OPTIONS]``: the benchmark suite of a source checkout, cnnkit against PyTorch.

The suite lives in the repository's ``benchmarks/`` folder, next to ``src/`` (it is not installed with the
package, and it needs PyTorch: ``pip install -e ".[bench]"``). This command finds that folder from the
current directory (or from an editable install) and runs ``python -m benchmarks`` with the same options.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from cnnkit.cli.app import app


def find_checkout(start: Path | None = None) -> Path | None:
    """The directory holding ``benchmarks/harness.py``: ``start`` (default the current directory) or one of
    its parents, else the checkout an editable install of cnnkit points into; None if there is none."""
    import cnnkit

    start = Path.cwd() if start is None else Path(start)
    for root in (start, *start.parents, Path(cnnkit.__file__).resolve().parents[2]):
        if (root / "benchmarks" / "harness.py").is_file():
            return root
    return None


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context):
    """Time cnnkit against PyTorch, rewrite docs/performance.md; options as [bold]python -m benchmarks[/bold].

    Examples: [bold]cnnkit bench[/bold] (everything, on two configurations, ~15 min);
    [bold]cnnkit bench --suites conv --cases g=64 --configs cpu:1 --output -[/bold] (one case, no file).
    Unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE first where they are set: they halve NumPy's matrix multiply.
    Runs from a source checkout and needs PyTorch: pip install -e ".\\[bench]".
    """
    root = find_checkout()
    if root is None:
        raise FileNotFoundError("cnnkit bench runs the benchmarks/ folder of a cnnkit source checkout, which "
                                "is not installed with the package; run it inside the repository")
    try:
        import torch  # noqa: F401 -- the suite's other contender
    except ImportError:
        message = 'cnnkit bench compares against PyTorch; install it with: pip install "cnnkit[bench]"'
        raise ImportError(message) from None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks.__main__ import main as run_benchmarks

    raise typer.Exit(run_benchmarks(list(ctx.args)))
