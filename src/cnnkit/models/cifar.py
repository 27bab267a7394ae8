"""A small CIFAR-10 network in the notes' own pattern, built from the notation by :func:`cnnkit.build`."""

from __future__ import annotations

from cnnkit.build import build
from cnnkit.models.registry import register

SPEC = "INPUT -> [[CONV -> RELU]*2 -> POOL]*3 -> [FC -> RELU] -> FC"


@register
def cifar_net(num_classes: int = 10, input_shape=(3, 32, 32), *, width: int = 32, hidden: int = 512,
              rng=None):
    """INPUT -> [[CONV -> RELU]*2 -> POOL]*3 -> [FC -> RELU] -> FC with 3x3 convs (padding 1), 2x2 pools.

    Channels ``width``, 2*width, 4*width (32, 64, 128) as the volume halves (32 -> 16 -> 8 -> 4), a hidden
    FC layer of ``hidden`` units: 1,341,226 parameters for 10 classes.
    """
    return build(SPEC, input_shape, num_classes, width=width, hidden=hidden, rng=rng)
