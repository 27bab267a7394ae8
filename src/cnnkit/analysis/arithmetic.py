"""Per-layer ConvNet arithmetic: parameters with and without sharing, multiply-adds, stored activations.

The notes' formulas, written once and read by :func:`cnnkit.analysis.summary`:

- parameters of a convolution with parameter sharing: ``K * (F*F*C/groups + 1)`` (the +1 is the bias);
- without sharing (every output neuron has its own weights, a ``LocallyConnected2d``):
  ``H_out * W_out * K * (F*F*C + 1)``;
- multiply-adds (MACs) of a convolution: ``F*F*C/groups`` for each of the ``K * H_out * W_out`` outputs,
  the notes' ``F^2 * K * L * H * W`` with L = C/groups input channels; of a fully-connected layer
  ``in_features * out_features``. Biases, pooling, normalization and activations are not counted, the
  convention of torchvision's GFLOPS column and of fvcore. FLOPs = 2 * MACs.

Every function takes the shapes that ``Layer.output_shape`` uses (batch axis included), so the numbers
scale with the batch.
"""

from __future__ import annotations

import math

# Layers whose output the memory rule does not count: they work in place (activations, dropout) or
# return a view of their input (flatten, identity), so no new volume is stored.
IN_PLACE = frozenset({"ReLU", "ReLU6", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Softmax", "Identity",
                      "Dropout", "Flatten"})


def kind(layer) -> str:
    """The layer's class name, which is how the arithmetic recognises layers without importing them."""
    return type(layer).__name__


def is_transposed(layer) -> bool:
    return kind(layer).startswith("ConvTranspose")


def is_convolution(layer) -> bool:
    """A layer that slides shared filters: Conv1d/2d/3d (and ConvTranspose, which scatters instead)."""
    return hasattr(layer, "kernel_size") and getattr(layer, "weight", None) is not None and \
        hasattr(layer, "in_channels")


def _per_axis(value, nd):
    return tuple(value) if isinstance(value, tuple | list) else (value,) * nd


def window_hyperparameters(layer, nd: int):
    """(kernel_size, stride, dilation, padding pairs) per axis of a windowed layer, or None.

    Reads the attributes every windowed layer stores (``kernel_size``, ``stride``, ``dilation``,
    ``padding`` as (before, after) pairs); a missing stride means stride = kernel_size, as in pooling.
    """
    if not hasattr(layer, "kernel_size"):
        return None
    kernel = _per_axis(layer.kernel_size, nd)
    stride = _per_axis(getattr(layer, "stride", None) or kernel, nd)
    dilation = _per_axis(getattr(layer, "dilation", 1), nd)
    padding = tuple(tuple(p) if isinstance(p, tuple | list) else (p, p)
                    for p in _per_axis(getattr(layer, "padding", 0), nd))
    return kernel, stride, dilation, padding


def parameter_counts(layer) -> tuple[int, int]:
    """(all, trainable) parameter elements of a layer and its children, each Parameter counted once."""
    unique = {id(p): p for p in layer.parameters()}.values()
    return sum(p.size for p in unique), sum(p.size for p in unique if p.trainable)


def macs(layer, input_shape, output_shape) -> int:
    """Multiply-adds of one forward pass of ``layer`` (0 for layers without weights).

    >>> from cnnkit.layers import Conv2d
    >>> conv = Conv2d(3, 96, 11, stride=4)
    >>> macs(conv, (1, 3, 227, 227), conv.output_shape((1, 3, 227, 227)))  # 55*55*96 outputs, 11*11*3 each
    105415200
    """
    if kind(layer) == "Linear":
        return math.prod(output_shape) * layer.in_features
    if kind(layer) == "LocallyConnected2d":
        return math.prod(output_shape) * layer.in_channels * math.prod(layer.kernel_size)
    if is_transposed(layer):
        # Each input value is scattered through K/groups filters of F*F taps.
        return math.prod(input_shape) * (layer.out_channels // layer.groups) * math.prod(layer.kernel_size)
    if is_convolution(layer):
        return math.prod(output_shape) * (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
    return 0


def params_without_sharing(layer, input_shape, output_shape) -> int:
    """Parameters the layer would need if every output neuron had its own weights (and bias).

    This is the notes' count for a convolution without parameter sharing, which is what a
    ``LocallyConnected2d`` has. Layers that do not share (Linear, LocallyConnected2d) and layers without
    weights return their own parameter count.

    >>> from cnnkit.layers import Conv2d
    >>> conv = Conv2d(3, 96, 11, stride=4)
    >>> params_without_sharing(conv, (1, 3, 227, 227), (1, 96, 55, 55))  # 290,400 neurons * (363 + 1)
    105705600
    """
    if is_convolution(layer) and not is_transposed(layer) and kind(layer) != "LocallyConnected2d":
        per_neuron = (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
        per_neuron += 1 if getattr(layer, "bias", None) is not None else 0
        return math.prod(output_shape[1:]) * per_neuron
    return parameter_counts(layer)[0]


def stored_activations(layer, output_shape) -> int:
    """Elements of the new volume that ``layer`` adds to memory, per batch (0 for in-place layers)."""
    return 0 if kind(layer) in IN_PLACE else math.prod(output_shape)
