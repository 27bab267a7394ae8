"""``cnnkit explain conv``: the notes' convolution demo as one self-contained HTML page (see
cnnkit.viz.conv_demo)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from cnnkit.cli.app import app
from cnnkit.cli.paths import check_output_file

explain = typer.Typer(help="Pages that show how a layer computes, number by number.", no_args_is_help=True)
app.add_typer(explain, name="explain")


def parse_volume(text: str) -> tuple[int, int, int]:
    """``"5x5x3"`` -> (C, H, W) = (3, 5, 5): the notes write a volume as width x height x depth.

    >>> parse_volume("5x5x3"), parse_volume("7x4x1")
    ((3, 5, 5), (1, 4, 7))
    """
    parts = [p for p in re.split(r"[x,\s]+", text.strip().lower()) if p]
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise typer.BadParameter(f"{text!r}: give the volume as the notes write it, width x height x depth, "
                                 f"e.g. 5x5x3.", param_hint="'--input'")
    width, height, depth = map(int, parts)
    return depth, height, width


@explain.command("conv")
def conv(
    input: Annotated[str, typer.Option(
        "--input", help="Input volume, width x height x depth as in the notes.")] = "5x5x3",
    pad: Annotated[int, typer.Option(min=0, help="Zero padding P on every side.")] = 1,
    filters: Annotated[int, typer.Option(min=1, help="Number of filters K.")] = 2,
    size: Annotated[int, typer.Option(min=1, help="Filter size F (F x F x depth).")] = 3,
    stride: Annotated[int, typer.Option(min=1, help="Stride S.")] = 2,
    pool: Annotated[int, typer.Option(min=1, help="Max-pooling window on the output.")] = 2,
    pool_stride: Annotated[int, typer.Option(min=1, help="Max-pooling stride.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the small random integers.")] = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("conv-demo.html"),
):
    """Write the convolution demo page; open it in any browser.

    It steps through the sliding window with each output written as a dot product, next to im2col's
    matrix view, then max pooling and the backward pass through the same windows, all computed by cnnkit.
    """
    import numpy as np

    from cnnkit.analysis.summary import human_bytes
    from cnnkit.errors import ShapeError
    from cnnkit.viz.conv_demo import conv_demo

    shape = parse_volume(input)
    check_output_file(out)
    try:
        demo = conv_demo(shape, padding=pad, filters=filters, kernel_size=size, stride=stride,
                         pool_size=pool, pool_stride=pool_stride, rng=np.random.default_rng(seed))
    except ShapeError as e:  # the library's advice names Python arguments; say which options those are
        raise ShapeError(f"{e} (here: change --pad, --size or --stride, or --pool and --pool-stride for the "
                         f"pooling)") from None
    out.parent.mkdir(parents=True, exist_ok=True)  # checked writable above; made only now that all went well
    demo.save(out)
    K, Ho, Wo = demo.y.shape
    typer.echo(f"wrote {out} ({human_bytes(out.stat().st_size)}): input {input} (width x height x depth) -> "
               f"output {Wo}x{Ho}x{K}, {K * Ho * Wo} dot products; open it in a browser")
