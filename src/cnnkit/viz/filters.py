"""The filters of a convolution layer as a grid of small pictures (the notes' first-layer filter grids)."""

from __future__ import annotations

import functools

import numpy as np

from cnnkit.viz._draw import (
    GAP_COLOUR,
    finish,
    grid_shape,
    mosaic,
    new_figure,
    normalize_tiles,
    tile_ticks,
    with_alpha,
)
from cnnkit.viz._picture import picture

MODES = ("auto", "rgb", "channels", "mean")


def filters(layer, *, mode="auto", max_filters=64, max_channels=16, save=None, figsize=None, dpi=100,
            title=None):
    """The weights of a 2-D convolution, one tile per filter, each tile min-max scaled to [0, 1].

    Shape:
        weight (K, C, F_h, F_w) ->
        ``"rgb"``      (K', F_h, F_w, 3): one colour tile per filter (a first layer on RGB input, C = 3);
        ``"channels"`` (K', C', F_h, F_w): one grey tile per filter and input channel (rows x columns);
        ``"mean"``     (K', F_h, F_w): each filter averaged over its input channels.
        K' = min(K, max_filters), C' = min(C, max_channels). ``"auto"`` is ``"rgb"`` when C = 3,
        ``"channels"`` when C is 2 or 4, and ``"mean"`` otherwise (for C = 1 that is the filters as they are).

    Args:
        layer: a ``Conv2d`` (anything with a 4-D ``weight``), or the weight array itself.
        mode: "auto", "rgb", "channels" or "mean" (above).
        max_filters, max_channels: how many filters and input channels to show at most.
        save: a path (or binary file) to write the picture to as PNG; figsize (inches) and dpi set its size.

    Returns:
        The normalised tiles (shape above). Each tile is scaled on its own, so a filter with small weights
        is as visible as one with large weights; the grid shows patterns, not magnitudes.

    Raises:
        ValueError: for an unknown mode, a weight that is not 4-D, or mode="rgb" without 3 input channels.

    >>> from cnnkit.layers import Conv2d
    >>> filters(Conv2d(3, 6, 5, rng=np.random.default_rng(0))).shape
    (6, 5, 5, 3)
    """
    weight = np.asarray(getattr(getattr(layer, "weight", None), "data", layer))
    if weight.ndim != 4:
        raise ValueError(f"filters: expected a 2-D convolution weight (K, C, F_h, F_w), received shape "
                         f"{weight.shape}; pass a Conv2d layer or its weight.")
    if mode not in MODES:
        raise ValueError(f"filters: Received mode={mode!r}; expected one of {', '.join(map(repr, MODES))}.")
    K, C = weight.shape[:2]
    if mode == "auto":
        mode = "rgb" if C == 3 else "channels" if C in (2, 4) else "mean"
    if mode == "rgb" and C != 3:
        raise ValueError(f"filters: mode='rgb' needs 3 input channels, the weight {weight.shape} has {C}; "
                         f"use mode='channels' or mode='mean'.")
    w = weight[:max_filters]
    if mode == "rgb":
        tiles = normalize_tiles(w.transpose(0, 2, 3, 1), axes=(1, 2, 3))
    elif mode == "mean":
        tiles = normalize_tiles(w.mean(axis=1), axes=(1, 2))
    else:
        tiles = normalize_tiles(w[:, :max_channels], axes=(2, 3))
    draw = functools.partial(_draw, mode=mode, K=K, C=C, figsize=figsize, dpi=dpi,
                             title=title or f"{_name(layer)} filters {tuple(weight.shape)}")
    return picture(tiles, draw, save)


def _name(layer):
    return repr(layer) if hasattr(layer, "weight") else "weight"


def _draw(tiles, save, *, mode, K, C, figsize, dpi, title):
    if mode == "channels":
        rows, columns = tiles.shape[:2]
        image = mosaic(tiles.reshape(-1, *tiles.shape[2:]), rows, columns)
    else:
        rows, columns = grid_shape(len(tiles))
        image = mosaic(tiles, rows, columns)
    h, w = tiles.shape[-2:] if mode != "rgb" else tiles.shape[1:3]
    if figsize is None:
        aspect = image.shape[0] / image.shape[1]
        figsize = (7.0, min(12.0, max(2.5, 7.0 * aspect + 0.9)))
    fig = new_figure(figsize, dpi)
    ax = fig.add_subplot()
    fig.set_facecolor("white")
    ax.set_facecolor(GAP_COLOUR)  # the NaN gaps between tiles show this colour
    ax.imshow(with_alpha(image) if mode == "rgb" else image, cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    if mode == "channels":
        tile_ticks(ax, rows, columns, h, w, column_labels=range(columns))
        ax.set_ylabel(f"filter (showing {rows} of {K})" if rows < K else "filter", fontsize=9)
        ax.set_xlabel(f"input channel (showing {columns} of {C})" if columns < C else "input channel",
                      fontsize=9)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        shown = f"{len(tiles)} of {K} filters" if len(tiles) < K else f"{K} filters"
        how = "colour = the 3 input channels" if mode == "rgb" else \
            "one input channel" if C == 1 else f"averaged over {C} input channels"
        ax.set_xlabel(f"{shown}, row by row; {how}; each tile scaled to its own min..max", fontsize=9)
    ax.set_title(title, fontsize=10)
    finish(fig, save)
