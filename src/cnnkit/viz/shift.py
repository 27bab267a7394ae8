"""Shift consistency: does the predicted class survive moving the image by a few pixels?

The notes warn that strided max pooling is not translation invariant: shift the input by one pixel and
the window grid lands differently on it. Zhang (2019, "Making convolutional networks shift-invariant
again") made that measurable and proposed anti-aliased pooling (``BlurPool2d``: max pool with stride 1,
then a blur with stride 2). This module measures it for any model, so the two can be compared.
"""

from __future__ import annotations

import functools
import numbers

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.viz._draw import finish, new_figure
from cnnkit.viz._picture import picture
from cnnkit.viz._run import scores


def shift_image(images, dy, dx):
    """Translate (N, C, H, W) by (dy, dx) pixels (down, right), filling the uncovered border from the edge.

    Replicating the edge keeps the background (the border of a centred digit or object) instead of inventing
    a black bar, so only the position of the content changes.
    """
    H, W = images.shape[2:]
    s = max(abs(dy), abs(dx))
    padded = np.pad(images, ((0, 0), (0, 0), (s, s), (s, s)), mode="edge")
    return padded[:, :, s - dy:s - dy + H, s - dx:s - dx + W]


def shift_consistency(model, images, max_shift=4, *, batch_size=256, save=None, figsize=None, dpi=100,
                      title=None):
    """The fraction of images whose predicted class is unchanged when shifted by (dy, dx), for every shift.

    Shape:
        images (N, C, H, W) -> (2S+1, 2S+1) with S = ``max_shift``; entry [S + dy, S + dx] is the fraction of
        the N images predicted as the same class shifted by (dy, dx) as unshifted (so the centre is 1.0).
        Given a dict of models ``{name: model}`` it returns ``{name: map}`` and draws them side by side.

    The single-number summary is the mean over the shifted entries, ``(m.sum() - 1) / (m.size - 1)``; see
    :func:`consistency`.

    Args:
        model: a cnnkit Layer giving class scores, or a dict name -> model to compare (e.g. MaxPool2d
            vs BlurPool2d).
        images: inputs exactly as the model takes them; max_shift: the largest shift in pixels, per axis.
        save: path (or binary file) for a PNG of the maps (one colour bar, the summary in each title).

    Raises:
        ValueError: for a negative max_shift or one that is not smaller than the image; ShapeError for
        images that are not (N, C, H, W).

    >>> from cnnkit.layers import Conv2d
    >>> net = Conv2d(1, 3, kernel_size=8, rng=np.random.default_rng(0))
    >>> shift_consistency(net, np.zeros((2, 1, 8, 8), np.float32), max_shift=1)
    array([[1., 1., 1.],
           [1., 1., 1.],
           [1., 1., 1.]])
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ShapeError(f"shift_consistency: expected images (N, C, H, W), received shape {images.shape}.")
    if isinstance(max_shift, bool) or not isinstance(max_shift, numbers.Integral) or max_shift < 0 \
            or max_shift >= min(images.shape[2:]):
        raise ValueError(f"shift_consistency: Received max_shift={max_shift!r}; expected an int in "
                         f"[0, {min(images.shape[2:])}).")
    models = model if isinstance(model, dict) else {"model": model}
    maps = {name: _consistency_map(m, images, max_shift, batch_size) for name, m in models.items()}
    draw = functools.partial(_draw, S=max_shift, figsize=figsize, dpi=dpi, title=title)
    return picture(maps if isinstance(model, dict) else maps["model"], draw, save)


def consistency(shift_map, within=None):
    """The mean agreement over the non-zero shifts of a :func:`shift_consistency` map, in [0, 1].

    ``within=k`` averages only the shifts of at most k pixels along each axis (``within=1``: the 8 one-pixel
    neighbours, where the notes' aliasing argument bites hardest).

    >>> m = np.array([[0.5, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 0.5]])
    >>> consistency(m), consistency(m, within=0)
    (0.5, 1.0)
    """
    m = np.asarray(shift_map, dtype=np.float64)
    S = len(m) // 2
    if within is not None and within < S:
        m = m[S - within:S + within + 1, S - within:S + within + 1]
    return float((m.sum() - 1.0) / (m.size - 1)) if m.size > 1 else 1.0


def _consistency_map(model, images, S, batch_size):
    reference = scores(model, images, batch_size).argmax(axis=1)
    out = np.ones((2 * S + 1, 2 * S + 1))
    for dy in range(-S, S + 1):
        for dx in range(-S, S + 1):
            if dy or dx:
                moved = scores(model, shift_image(images, dy, dx), batch_size).argmax(axis=1)
                out[S + dy, S + dx] = float(np.mean(moved == reference))
    return out


def _draw(maps, save, *, S, figsize, dpi, title):
    maps = maps if isinstance(maps, dict) else {"model": maps}
    n = len(maps)
    fig = new_figure(figsize or (3.8 * n + 1.2, 4.3), dpi)
    fig.set_facecolor("white")
    axes = np.atleast_1d(fig.subplots(1, n, squeeze=False)[0])
    low = min(float(m.min()) for m in maps.values())
    ticks = [0, S, 2 * S]
    for ax, (name, m) in zip(axes, maps.items(), strict=True):
        artist = ax.imshow(m, cmap="viridis", vmin=min(low, 0.9), vmax=1.0, interpolation="nearest")
        ax.set_title(f"{name}\nunchanged: {consistency(m, within=1):.1%} (1 px), "
                     f"{consistency(m):.1%} (all shifts)", fontsize=9)
        ax.set_xticks(ticks, [str(-S), "0", str(S)])
        ax.set_yticks(ticks, [str(-S), "0", str(S)])
        ax.tick_params(labelsize=8)
        ax.set_xlabel("shift right (px)", fontsize=9)
        ax.set_ylabel("shift down (px)", fontsize=9)
    bar = fig.colorbar(artist, ax=list(axes), shrink=0.85)
    bar.set_label("fraction with the same prediction", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    finish(fig, save)
