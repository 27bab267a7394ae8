"""Helpers shared by the interop and transfer tests: small zoo models with non-trivial batch-norm state."""

from __future__ import annotations

from cnnkit import models
from cnnkit.layers import BatchNorm1d, BatchNorm2d


def randomize_batch_norms(model, rng):
    """Give every batch norm a random affine transform and running statistics (a fresh one is identity-like,
    which would hide a mistake in how they are carried over)."""
    for _, layer in model.named_layers():
        if isinstance(layer, BatchNorm1d | BatchNorm2d):
            C = layer.num_features
            layer.weight.data[...] = rng.uniform(0.5, 1.5, C)
            layer.bias.data[...] = rng.normal(0.0, 0.1, C)
            layer.running_mean[...] = rng.normal(0.0, 0.1, C)
            layer.running_var[...] = rng.uniform(0.5, 1.5, C)
            layer.num_batches_tracked[...] = 7
    return model


def small_zoo_model(name: str, rng, num_classes: int = 10):
    """(model in eval mode, input shape of one example): the zoo model at the smallest square size >= 32 that
    it can take, so that every model runs in well under a second."""
    channels = models.default_input_shape(name)[0]
    for size in range(32, 128):
        try:
            model = models.get(name, num_classes=num_classes, input_shape=(channels, size, size), rng=rng)
            model.output_shape((2, channels, size, size))
        except ValueError:  # ShapeError is a ValueError: this size does not tile the network's windows
            continue
        return randomize_batch_norms(model, rng).eval(), (channels, size, size)
    raise AssertionError(f"{name}: no input size between 32 and 127 fits")
