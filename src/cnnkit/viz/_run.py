"""Running a model for a picture: eval mode that is put back afterwards, batched scores, layer capture."""

from __future__ import annotations

import contextlib

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.fast.dispatch import no_grad


@contextlib.contextmanager
def evaluating(model):
    """Eval mode (no dropout, batch norm running statistics) for the block; each layer's flag is restored."""
    flags = [(layer, layer.training) for layer in model.layers()]
    model.eval()
    try:
        yield model
    finally:
        for layer, flag in flags:
            layer.training = flag


def as_batch(x, name="x", model=None):
    """One image (C, H, W) or a batch of one (1, C, H, W) -> (1, C, H, W) floating array.

    Raw integer pixels (a uint8 image as a dataset stores it) are prepared as the model was trained:
    ``model.preprocessing`` (scaling to [0, 1], then its normalization) if it has one, else scaled to
    [0, 1]. A floating array is taken as already prepared.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        preprocessing = getattr(model, "preprocessing", None)
        x = preprocessing.apply(x) if preprocessing is not None else x.astype(np.float32) / np.float32(255)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ShapeError(f"{name}: expected one image (C, H, W) or (1, C, H, W), received shape {x.shape}.")
    return x


def flat_scores(y):
    """Model output (N, K) or (N, K, 1, 1) (a conv readout) -> (N, K)."""
    if y.ndim > 2 and all(s == 1 for s in y.shape[2:]):
        y = y.reshape(y.shape[:2])
    if y.ndim != 2:
        raise ShapeError(f"expected the model to output class scores (N, K), received shape {y.shape}.")
    return y


def scores(model, x, batch_size=256):
    """Class scores (N, K) for a batch, run ``batch_size`` images at a time in eval mode, without caches."""
    with evaluating(model), no_grad():
        parts = [flat_scores(model.forward(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    return np.concatenate(parts)


def probabilities(s):
    """Softmax over classes, unless the scores already are probabilities (the model ends in Softmax)."""
    s = np.asarray(s, dtype=np.float64)
    if s.min() >= 0 and np.allclose(s.sum(axis=1), 1.0, atol=1e-4):
        return s
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def check_target(target, classes, owner):
    if not (isinstance(target, int | np.integer) and 0 <= target < classes):
        raise ValueError(f"{owner}: Received target={target!r}; expected a class index in [0, {classes}).")
    return int(target)


def capture(model, x, layer_name):
    """Run ``model`` on ``x`` and return the output of the descendant ``layer_name`` (as a forward hook).

    The layer's ``forward`` is wrapped on the instance for the duration of one call, so containers of any
    shape (Sequential, Residual, Concat) report it without knowing about hooks. It runs under
    ``cnnkit.no_grad()``, so the model keeps no caches afterwards.
    """
    layer = model.get(layer_name)
    seen = []
    original = layer.forward

    def recording(inp):
        out = original(inp)
        seen.append(out)
        return out

    layer.forward = recording
    try:
        with evaluating(model), no_grad():
            model.forward(x)
    finally:
        del layer.forward
    if not seen:
        raise RuntimeError(f"layer {layer_name!r} did not run during the forward pass.")
    return seen[0]
