"""Drawing helpers shared by the viz modules: lazy matplotlib, tile mosaics, heat maps, PNG saving.

matplotlib is an optional extra, so it is imported here, inside functions, and only when a picture is
asked for. Figures are built with ``matplotlib.figure.Figure`` on an Agg canvas rather than through
``pyplot``: no global figure list to leak, no GUI backend, and a user's interactive backend is left alone.
"""

from __future__ import annotations

import math

import numpy as np


def new_figure(figsize, dpi=100):
    """A matplotlib Figure on the Agg canvas; without matplotlib, an ImportError that names the extra."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError('cnnkit.viz draws with matplotlib, which is not installed; '
                          'install it with: pip install "cnnkit[viz]"') from e
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def finish(fig, save):
    """Write the figure as PNG to ``save`` (a path or a binary file object) if given; always free it."""
    if save is not None:
        # No bbox_inches="tight": the PNG is exactly figsize * dpi pixels, which callers and tests rely on.
        fig.savefig(save, format="png")
    fig.clear()


GAP_COLOUR = "#9fb0c8"  # between tiles: a blue-grey that no grey or viridis tile edge can merge with


def with_alpha(rgb_mosaic):
    """(h, w, 3) with NaN gaps -> (h, w, 4) RGBA, the gaps transparent (matplotlib draws NaN RGB as white)."""
    gaps = np.isnan(rgb_mosaic).any(axis=-1, keepdims=True)
    return np.concatenate([np.nan_to_num(rgb_mosaic), (~gaps).astype(np.float64)], axis=-1)


def normalize_tiles(tiles, axes):
    """Min-max scale each tile to [0, 1] over ``axes``; a constant tile becomes 0.5 (flat grey)."""
    tiles = np.asarray(tiles, dtype=np.float64)
    low = tiles.min(axis=axes, keepdims=True)
    span = tiles.max(axis=axes, keepdims=True) - low
    flat = span == 0
    return np.where(flat, 0.5, (tiles - low) / np.where(flat, 1.0, span))


def grid_shape(count, columns=None):
    """(rows, columns) of a grid for ``count`` tiles: about square to twice as wide, fewest empty cells.

    >>> [grid_shape(n) for n in (1, 6, 16, 24, 32, 64)]
    [(1, 1), (2, 3), (4, 4), (4, 6), (4, 8), (8, 8)]
    """
    count = max(count, 1)
    if columns is None:
        candidates = range(math.ceil(math.sqrt(count)), math.ceil(math.sqrt(2 * count)) + 1)
        # Least waste first; among equals, the wider grid (pages are wider than tall).
        columns = min(candidates, key=lambda c: (math.ceil(count / c) * c - count, -c))
    columns = min(columns, count)
    return math.ceil(count / columns), columns


def mosaic(tiles, rows, columns, gap=1):
    """Tiles (T, h, w[, 3]) -> one image with ``gap``-pixel NaN borders (drawn as the background colour).

    One imshow of a mosaic is much faster than a subplot per tile and keeps every tile the same size.
    """
    T, h, w = tiles.shape[:3]
    extra = tiles.shape[3:]
    out = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, *extra), np.nan)
    for i in range(T):
        r, c = divmod(i, columns)
        top, left = gap + r * (h + gap), gap + c * (w + gap)
        out[top:top + h, left:left + w] = tiles[i]
    return out


def tile_ticks(ax, rows, columns, h, w, gap=1, row_labels=None, column_labels=None, max_labels=16):
    """Put tick labels at tile centres (thinned to at most ``max_labels`` per axis so they never overlap)."""
    def place(count, size, labels, set_ticks, set_labels):
        step = max(1, math.ceil(count / max_labels))
        index = list(range(0, count, step))
        set_ticks([gap + i * (size + gap) + (size - 1) / 2 for i in index])
        set_labels([str(labels[i]) if labels is not None else str(i) for i in index])
    place(rows, h, row_labels, ax.set_yticks, ax.set_yticklabels)
    place(columns, w, column_labels, ax.set_xticks, ax.set_xticklabels)
    ax.tick_params(length=0, labelsize=8)
    for spine in ax.spines.values():
        spine.set_visible(False)


def show_image(ax, image):
    """Draw one input image (C, H, W) in grey (C=1) or colour (C=3), min-max scaled for display."""
    image = np.asarray(image, dtype=np.float64)
    if image.shape[0] == 3:
        ax.imshow(normalize_tiles(image, None).transpose(1, 2, 0), interpolation="nearest")
    else:
        ax.imshow(image.mean(axis=0), cmap="gray", interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def heatmap(fig, ax, values, *, cmap="magma", label=None, vmin=None, vmax=None, alpha=1.0, colorbar=True):
    """imshow with a colour bar of its own, labelled; returns the image artist."""
    artist = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, alpha=alpha, interpolation="nearest")
    if colorbar:
        bar = fig.colorbar(artist, ax=ax, shrink=0.85)
        if label:
            bar.set_label(label, fontsize=9)
        bar.ax.tick_params(labelsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    return artist
