"""Receptive fields: how many input pixels one unit of each layer sees, and how far apart its units are.

The walk (:mod:`cnnkit.analysis.trace`) applies the recurrence of :class:`cnnkit.analysis.arithmetic.Field`
layer by layer, so L stacked 3x3 stride-1 convolutions see 1 + 2L pixels and L 3x3 stride-2 ones
2^(L+1) - 1. Layers without a spatial window (activations, batch norm) leave the field unchanged;
flattening before a fully-connected layer makes every unit see the whole input; Residual and Concat take
the largest field over their paths.
"""

from __future__ import annotations

from cnnkit.analysis.arithmetic import Field
from cnnkit.analysis.trace import trace


def receptive_field(model, input_shape) -> dict[str, Field]:
    """Receptive field (size, jump, start per spatial axis) of every layer, by dotted name.

    Args:
        model: a layer or container.
        input_shape: the shape of one example, without the batch axis, e.g. ``(3, 224, 224)``.

    Returns:
        ``{name: Field}`` in forward order, starting with ``"input"`` for the input itself.

    >>> from cnnkit.layers import Conv2d, Sequential
    >>> net = Sequential(*[Conv2d(1, 1, 3, padding=1) for _ in range(3)])
    >>> receptive_field(net, (1, 32, 32))["2"]
    Field(size=(7, 7), jump=(1, 1), start=(0, 0))
    """
    steps = trace(model, input_shape)
    return {step.name: step.field.public() for step in steps}
