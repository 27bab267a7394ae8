"""Occlusion sensitivity (Zeiler & Fergus 2014): which parts of the image does the decision rest on?"""

from __future__ import annotations

import functools
import numbers

import numpy as np

from cnnkit.viz._draw import finish, heatmap, new_figure, show_image
from cnnkit.viz._picture import picture
from cnnkit.viz._run import as_batch, check_target, probabilities, scores

SCORES = ("probability", "logit")


def patch_starts(size, patch, stride):
    """Top-left corners along one axis: every ``stride`` pixels, plus a last one flush with the far edge."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)  # so that the last rows and columns are occluded too
    return starts


def occlusion(model, x, target, patch=8, stride=4, fill="mean", *, score="probability", batch_size=256,
              overlay=False, save=None, figsize=(9.0, 3.4), dpi=100, title=None):
    """Slide a grey square over the image and record how much the target class probability drops.

    Every patch position becomes one occluded copy of the image; the copies run through the model in
    batches of ``batch_size`` (a 28x28 image with stride 1 is 441 copies, a few batches). Each pixel gets
    the mean drop over all the patch positions that cover it, so the map has the input's resolution.

    Shape:
        x (C, H, W) or (1, C, H, W) -> heat map (H, W): ``p(target | x) - mean p(target | x occluded)``.
        Positive where hiding the pixels hurts the prediction, negative where it helps.

    Args:
        model: a cnnkit Layer giving class scores (N, K) (or probabilities; softmax is applied to scores).
        x: the input as the model takes it (float, already normalised), or raw uint8 pixels, which are
            prepared with ``model.preprocessing`` (see :func:`cnnkit.viz._run.as_batch`).
        target: the class whose probability is watched.
        patch: side of the square in pixels; stride: step between positions.
        fill: the occluder's value: "mean" (each channel's mean over the image: grey), "zero", or a number.
        score: "probability" (the paper's choice) or "logit", the raw class score before softmax; use it
            for a very confident model, whose probability barely moves (a saturated softmax) anywhere.
        overlay: draw the heat map translucent over the image instead of beside it (in the PNG).
        save: path (or binary file) for a PNG of the image, the map (with colour bar) and the overlay.

    Raises:
        ValueError: for a patch larger than the image, a non-positive patch or stride, an unknown fill or
        score, or a target outside the model's classes.

    >>> from cnnkit.layers import Conv2d
    >>> net = Conv2d(1, 2, kernel_size=8, rng=np.random.default_rng(0))  # a linear readout of 8x8 images
    >>> occlusion(net, np.ones((1, 8, 8), np.float32), target=0, patch=4, stride=2).shape
    (8, 8)
    """
    batch = as_batch(x, model=model)
    _, C, H, W = batch.shape
    for name, value in (("patch", patch), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"occlusion: Received {name}={value!r}; expected a positive int.")
    if patch > min(H, W):
        raise ValueError(f"occlusion: Received patch={patch} for an image of {H}x{W}; "
                         f"use patch <= {min(H, W)}.")
    grey = _fill_value(batch[0], fill)
    if score not in SCORES:
        raise ValueError(f"occlusion: Received score={score!r}; expected 'probability' or 'logit'.")
    measure = probabilities if score == "probability" else flat_float
    base = measure(scores(model, batch))
    target = check_target(target, base.shape[1], "occlusion")

    rows, cols = patch_starts(H, patch, stride), patch_starts(W, patch, stride)
    corners = [(r, c) for r in rows for c in cols]
    drop_sum = np.zeros((H, W))
    cover = np.zeros((H, W))
    for start in range(0, len(corners), batch_size):
        chunk = corners[start:start + batch_size]
        copies = np.repeat(batch, len(chunk), axis=0)
        for i, (r, c) in enumerate(chunk):
            copies[i, :, r:r + patch, c:c + patch] = grey
        p = measure(scores(model, copies, batch_size))[:, target]
        for (r, c), pi in zip(chunk, p, strict=True):
            drop_sum[r:r + patch, c:c + patch] += base[0, target] - pi
            cover[r:r + patch, c:c + patch] += 1
    heat = drop_sum / cover  # every pixel is covered at least once (patch_starts reaches both edges)
    draw = functools.partial(_draw, image=batch[0], target=target, p=base[0, target], score=score,
                             patch=patch, stride=stride, overlay=overlay, figsize=figsize, dpi=dpi,
                             title=title)
    return picture(heat, draw, save)


def _fill_value(image, fill):
    if isinstance(fill, str):
        if fill == "mean":
            return image.mean(axis=(1, 2)).reshape(-1, 1, 1).astype(image.dtype)
        if fill == "zero":
            return np.zeros((len(image), 1, 1), image.dtype)
        raise ValueError(f"occlusion: Received fill={fill!r}; expected 'mean', 'zero' or a number.")
    if isinstance(fill, numbers.Real) and not isinstance(fill, bool):
        return np.full((len(image), 1, 1), fill, image.dtype)
    raise ValueError(f"occlusion: Received fill={fill!r}; expected 'mean', 'zero' or a number.")


def flat_float(s):
    return np.asarray(s, dtype=np.float64)


def _draw(heat, save, *, image, target, p, score, patch, stride, overlay, figsize, dpi, title):
    fig = new_figure(figsize, dpi)
    fig.set_facecolor("white")
    limit = float(np.abs(heat).max()) or 1.0
    panels = fig.subplots(1, 2 if overlay else 3)
    show_image(panels[0], image)
    what = f"p(class {target})" if score == "probability" else f"logit of class {target}"
    panels[0].set_title(f"input, {what} = {p:.3f}", fontsize=9)
    label = "drop in p(target)" if score == "probability" else "drop in the target's logit"
    if not overlay:
        heatmap(fig, panels[1], heat, cmap="RdBu_r", vmin=-limit, vmax=limit, label=label)
        panels[1].set_title(f"occlusion map (patch {patch}, stride {stride})", fontsize=9)
    show_image(panels[-1], image)
    heatmap(fig, panels[-1], heat, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.6,
            label=label, colorbar=overlay)
    panels[-1].set_title("overlay: red = evidence for the class", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    finish(fig, save)
