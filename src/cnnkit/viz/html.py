"""HTML for Jupyter: the summary table, a model's layer tree, a history's epochs and curves.

Jupyter shows an object by calling its ``_repr_html_`` (or ``_repr_png_``). The classes keep one-line
methods that call the functions here, so the markup lives in one module and the core stays free of it.
Everything is plain HTML with inline styles: ``<details>`` makes the tree collapsible without a script, so
it works in JupyterLab, VS Code and a notebook rendered on a web page alike, and nothing leaks a style into
the rest of the notebook.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

NUMBER = "text-align: right; font-variant-numeric: tabular-nums; padding: 1px 8px"
TEXT = "text-align: left; padding: 1px 8px"
MUTED = "color: #666"
DEPTH_OPEN = 2  # containers this deep or shallower start unfolded; deeper ones start folded


def _e(value) -> str:
    return html.escape(str(value))


# -- the summary table --------------------------------------------------------------------------------------
def summary_html(summary) -> str:
    """The table of :class:`cnnkit.analysis.Summary` as HTML: one row per layer, then the totals."""
    header = "".join(f'<th style="{TEXT if i < 3 else NUMBER}">{_e(h)}</th>'
                     for i, h in enumerate(summary._HEADER))
    rows = []
    for row in summary.rows:
        cells = summary._cells(row, True)
        rows.append("<tr>" + "".join(f'<td style="{TEXT if i < 3 else NUMBER}">{_e(c)}</td>'
                                     for i, c in enumerate(cells)) + "</tr>")
    footer = "".join(f"<li>{_e(line)}</li>" for line in summary._footer())
    shape = "x".join(map(str, summary.input_shape))
    return (f'<div class="cnnkit-summary"><div><b>{_e(summary.model_name)}</b> on {_e(shape)}: '
            f"{len(summary.rows) - 1} layers</div>"
            f'<table style="border-collapse: collapse"><thead><tr>{header}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
            f'<ul style="margin: 4px 0; {MUTED}">{footer}</ul></div>')


# -- a model's tree -----------------------------------------------------------------------------------------
def layer_html(layer) -> str:
    """A collapsible tree of ``layer``: each node's name and type, each leaf's arguments, every parameter's
    shape, and the parameter count of every subtree (frozen ones said so)."""
    total = layer.num_parameters()
    trainable = layer.num_parameters(trainable_only=True)
    frozen = f", {total - trainable:,} frozen" if total != trainable else ""
    return (f'<div class="cnnkit-layer" style="font-family: ui-monospace, monospace; font-size: 12px">'
            f"{_node(layer, '', 0)}"
            f'<div style="{MUTED}">{total:,} parameters{frozen}. Output shapes, MACs and memory: '
            f"cnnkit.summary(model, input_shape)</div></div>")


def _node(layer, name, depth) -> str:
    children = layer.named_children()
    count = layer.num_parameters()
    kind = _e(type(layer).__name__)
    label = f"<b>{_e(name)}</b>: {kind}" if depth else f"<b>{kind}</b>"
    if not children:
        params = ", ".join(f"{_e(n)} {'x'.join(map(str, p.shape))}{'' if p.trainable else ' (frozen)'}"
                           for n, p in layer.params.items())
        counts = f' <span style="{MUTED}">{count:,} params: {params}</span>' if params else ""
        return f'<div style="margin-left: 1.2em">{label}({_e(layer.extra_repr())}){counts}</div>'
    inner = "".join(_node(child, child_name, depth + 1) for child_name, child in children)
    opened = " open" if depth < DEPTH_OPEN else ""
    return (f'<details{opened} style="margin-left: {1.2 if depth else 0}em"><summary>{label} '
            f'<span style="{MUTED}">{len(children)} children, {count:,} params</span></summary>'
            f"{inner}</details>")


# -- a history: its epochs and curves -----------------------------------------------------------------------
class Picture:
    """A PNG that shows itself in Jupyter (``_repr_png_``) and can be written with :meth:`save`.

    ``series``: what was drawn, name -> 1-D array (as :func:`cnnkit.viz.history` returns).
    """

    def __init__(self, png: bytes, series=None):
        self.png = png
        self.series = series or {}

    def _repr_png_(self) -> bytes:
        return self.png

    def save(self, path) -> Path:
        path = Path(path)
        path.write_bytes(self.png)
        return path

    def __repr__(self):
        return f"Picture(PNG, {len(self.png):,} bytes; series: {', '.join(self.series) or 'none'})"


def history_plot(history, *, save=None, figsize=None, dpi=100, title=None) -> Picture:
    """The loss, accuracy and learning-rate curves of ``history`` as a :class:`Picture` (needs matplotlib)."""
    from cnnkit.viz.plots import history as draw

    buffer = io.BytesIO()
    series = draw(history, save=buffer, figsize=figsize, dpi=dpi, title=title)
    picture = Picture(buffer.getvalue(), series)
    if save is not None:
        picture.save(save)
    return picture


def history_html(history) -> str:
    """The epochs as a table, and the curves inline when matplotlib is installed and there is something to
    draw."""
    columns = history.columns
    if not columns:
        return "<div>History: no epochs yet</div>"
    head = "".join(f'<th style="{NUMBER}">{_e(c)}</th>' for c in columns)
    body = "".join("<tr>" + "".join(f'<td style="{NUMBER}">{_e(_number(r.get(c)))}</td>' for c in columns)
                   + "</tr>" for r in history.records)
    picture = ""
    try:
        png = history_plot(history).png
        picture = (f'<img alt="training curves" src="data:image/png;base64,'
                   f'{base64.b64encode(png).decode("ascii")}">')
    except (ImportError, ValueError):  # no matplotlib, or no loss/accuracy/lr series: the table says it all
        pass
    stopped = f'<div style="{MUTED}">{_e(history.stopped)}</div>' if history.stopped else ""
    return (f'<div class="cnnkit-history"><div><b>History</b>: {len(history)} epochs</div>{picture}'
            f'<table style="border-collapse: collapse"><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
            f"</table>{stopped}</div>")


def _number(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)
