"""Saliency maps (Simonyan et al. 2014): the gradient of a class score with respect to the input pixels."""

from __future__ import annotations

import functools

import numpy as np

from cnnkit.viz._draw import finish, heatmap, new_figure, show_image
from cnnkit.viz._picture import picture
from cnnkit.viz._run import as_batch, check_target, evaluating, flat_scores

REDUCTIONS = ("max", "mean", "none")


def saliency(model, x, target, *, reduce="max", save=None, figsize=(9.0, 3.4), dpi=100, title=None):
    """|d score_target / d x| by cnnkit's own backward: the pixels the class score is most sensitive to.

    The model runs forward in eval mode on the one image, then ``backward`` is called with a one-hot
    gradient on the target score; the returned ``dx`` is the saliency. The model's parameter gradients are
    put back exactly as they were, so calling this in the middle of training changes nothing.

    Shape:
        x (C, H, W) or (1, C, H, W) -> (H, W) with ``reduce="max"`` (the largest |gradient| over the
        channels, as in the paper) or ``"mean"``; (C, H, W) signed gradient with ``reduce="none"``.

    Args:
        model: a cnnkit Layer giving class scores (N, K) (a conv readout (N, K, 1, 1) works too).
        target: the class index whose *score* (before any softmax) is differentiated.
        save: path (or binary file) for a PNG: the image, the map with a colour bar, and an overlay.

    Raises:
        ValueError: for an unknown ``reduce`` or a target outside the model's classes.

    >>> from cnnkit.layers import Conv2d
    >>> net = Conv2d(1, 2, kernel_size=8, rng=np.random.default_rng(0))
    >>> saliency(net, np.ones((1, 8, 8), np.float32), target=1).shape
    (8, 8)
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"saliency: Received reduce={reduce!r}; expected one of "
                         f"{', '.join(map(repr, REDUCTIONS))}.")
    batch = as_batch(x, model=model)
    grads = [(p, p.grad.copy()) for p in model.parameters()]
    try:
        with evaluating(model):
            y = model.forward(batch)
            s = flat_scores(y)
            target = check_target(target, s.shape[1], "saliency")
            dy = np.zeros_like(s)
            dy[0, target] = 1
            dx = model.backward(dy.reshape(y.shape))[0]
    finally:
        for p, g in grads:
            p.grad[...] = g
    magnitude = np.abs(dx)
    result = magnitude.max(axis=0) if reduce == "max" else magnitude.mean(axis=0) if reduce == "mean" else dx
    draw = functools.partial(_draw, image=batch[0], target=target, figsize=figsize, dpi=dpi, title=title)
    return picture(result, draw, save)


def _draw(result, save, *, image, target, figsize, dpi, title):
    # reduce="none" returns the signed (C, H, W) gradient; its picture is the largest |value| over channels
    shown = np.abs(result).max(axis=0) if result.ndim == 3 else result
    fig = new_figure(figsize, dpi)
    fig.set_facecolor("white")
    panels = fig.subplots(1, 3)
    show_image(panels[0], image)
    panels[0].set_title("input", fontsize=9)
    heatmap(fig, panels[1], shown, cmap="hot", vmin=0, label="|d score / d pixel|")
    panels[1].set_title(f"saliency for class {target}", fontsize=9)
    show_image(panels[2], image)
    heatmap(fig, panels[2], shown, cmap="hot", vmin=0, alpha=0.6, colorbar=False)
    panels[2].set_title("overlay", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    finish(fig, save)
