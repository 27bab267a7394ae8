"""The activation maps of one input at a named layer, as a grid (the notes' "layer activations")."""

from __future__ import annotations

import functools

import numpy as np

from cnnkit.viz._draw import GAP_COLOUR, finish, grid_shape, mosaic, new_figure, show_image
from cnnkit.viz._picture import picture
from cnnkit.viz._run import as_batch, capture


def activations(model, x, layer, *, max_channels=64, save=None, figsize=None, dpi=100, title=None):
    """Run ``model`` on one image and return the output of the layer named ``layer``.

    Shape:
        x (C, H, W) or (1, C, H, W) -> the layer's output for that one image without the batch axis, e.g.
        (C_l, H_l, W_l) for a conv or pool layer and (F,) for a Linear layer; that is
        ``model.get(layer).output_shape(...)[1:]``.

    Args:
        model: a cnnkit Layer (Sequential, a zoo model, ...); it runs in eval mode, then its mode is restored.
        x: the input as the model takes it (float, already normalised), or raw uint8 pixels, which are
            prepared with ``model.preprocessing`` (see :func:`cnnkit.viz._run.as_batch`).
        layer: the dotted name of a descendant, as in ``model.get(layer)`` (e.g. ``"features.0"``).
        max_channels: how many channel maps the picture shows at most (the array has them all).
        save: path (or binary file) for a PNG: the input, then one tile per channel on one shared colour
            scale (a dead channel is visibly flat), with a colour bar.

    Raises:
        KeyError: for an unknown layer name (the message suggests close names).

    >>> from cnnkit.layers import Conv2d, Sequential
    >>> net = Sequential(Conv2d(1, 4, 3), Conv2d(4, 2, 3))
    >>> activations(net, np.zeros((1, 8, 8), np.float32), "0").shape
    (4, 6, 6)
    """
    batch = as_batch(x, model=model)
    out = capture(model, batch, layer)[0]
    draw = functools.partial(_draw, image=batch[0], layer=layer, max_channels=max_channels, figsize=figsize,
                             dpi=dpi, title=title)
    return picture(out, draw, save)


def _draw(out, save, *, image, layer, max_channels, figsize, dpi, title):
    maps = out.reshape(1, 1, -1) if out.ndim == 1 else out.reshape(-1, *out.shape[-2:])
    shown = maps[:max_channels].astype(np.float64)
    rows, columns = grid_shape(len(shown)) if out.ndim > 1 else (1, 1)
    grid = mosaic(shown, rows, columns)
    if figsize is None:
        aspect = grid.shape[0] / grid.shape[1]
        figsize = (9.0, min(12.0, max(2.8, 6.5 * aspect + 1.0)))
    fig = new_figure(figsize, dpi)
    fig.set_facecolor("white")
    ax_in, ax = fig.subplots(1, 2, width_ratios=[1, 3.2])
    show_image(ax_in, image)
    ax_in.set_title(f"input {tuple(image.shape)}", fontsize=9)
    low, high = float(np.nanmin(shown)), float(np.nanmax(shown))
    artist = ax.imshow(grid, cmap="viridis", vmin=low, vmax=high if high > low else low + 1,
                       interpolation="nearest", aspect="auto" if out.ndim == 1 else "equal")
    ax.set_facecolor(GAP_COLOUR)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    count = len(maps) if out.ndim > 1 else out.shape[0]
    what = f"{min(len(maps), max_channels)} of {count} channels" if len(maps) > max_channels \
        else (f"{count} channels" if out.ndim > 1 else f"{count} features")
    ax.set_xlabel(f"{what}, row by row; one colour scale for all", fontsize=9)
    bar = fig.colorbar(artist, ax=ax, shrink=0.8)
    bar.set_label("activation", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    ax.set_title(title or f"activations of layer {layer!r}, shape {tuple(out.shape)}", fontsize=10)
    finish(fig, save)
