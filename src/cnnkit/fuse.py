"""Batch norm folded into the convolution before it, for inference: ``cnnkit.fuse(model)``.

In eval mode a batch norm is a fixed affine map per channel, ``y = (z - mean) / sqrt(var + eps) * gamma +
beta``, and when ``z`` is a convolution's output the map can be applied to the convolution's weights once
instead of to every activation: with ``s = gamma / sqrt(var + eps)``, filter k becomes ``s_k * W_k`` and
its bias ``s_k * (b_k - mean_k) + beta_k``. The fused network skips one pass over every activation that
followed a convolution (and one array of that size) and computes the same function up to float32 rounding.
"""

from __future__ import annotations

import copy

import numpy as np

from cnnkit.layers.activation import Identity
from cnnkit.layers.base import Layer, Parameter, Residual, Sequential
from cnnkit.layers.conv import Conv1d, Conv2d, Conv3d
from cnnkit.layers.graph import Graph
from cnnkit.layers.norm import _BatchNorm

__all__ = ["fold_batch_norm", "fuse"]

_BATCH_NORM_RANK = {Conv1d: 3, Conv2d: 4, Conv3d: 5}  # the input rank the batch norm after it sees


def fuse(model: Layer) -> Layer:
    """A copy of ``model`` for inference, in eval mode, with every foldable batch norm folded into the
    convolution before it and taken out (Sequential chains, Residual bodies; a Graph's batch norm node
    becomes an Identity).

    Foldable: a ``BatchNorm1d/2d/3d`` with running statistics (``track_running_stats=True``) right after a
    ``Conv1d/2d/3d`` of as many output channels, and nothing else reading the convolution's output (a
    Graph). Everything else is copied as it is. The model itself is not changed.

    The copy equals ``model.eval()`` up to float32 rounding (the folded weights are computed in float64);
    in training mode it would not (batch statistics cannot be folded), so train the original and fuse again.

    Args:
        model: a cnnkit Layer (a zoo model, a Sequential, a Graph, ...).

    Raises:
        TypeError: model is not a cnnkit Layer.

    >>> from cnnkit.layers import BatchNorm2d, Conv2d, ReLU, Sequential
    >>> fuse(Sequential(Conv2d(3, 8, 3, bias=False), BatchNorm2d(8), ReLU()))
    Sequential(
      (0): Conv2d(3->8, kernel_size=3, stride=1, padding=0)
      (2): ReLU()
    )
    """
    if not isinstance(model, Layer):
        raise TypeError(f"fuse: expected a cnnkit Layer, received {type(model).__name__}.")
    fused = copy.deepcopy(model).eval()
    for layer in fused.layers():
        # Residual.named_children lists its body's children, so its body chain is reached here
        chain = layer.body if isinstance(layer, Residual) else layer
        if isinstance(chain, Sequential):
            _fuse_chain(chain)
        elif isinstance(chain, Graph):
            _fuse_graph(chain)
    for layer in fused.layers():
        layer._cache = None  # a deep copy of a model that ran forward also copied its caches
    return fused


def foldable(conv: Layer, norm: Layer) -> bool:
    """True if ``norm`` right after ``conv`` can be folded into it (see :func:`fuse`)."""
    rank = _BATCH_NORM_RANK.get(type(conv))
    return (rank is not None and isinstance(norm, _BatchNorm) and norm.track_running_stats
            and rank in norm.layouts and norm.num_features == conv.out_channels)


def fold_batch_norm(conv, norm) -> None:
    """Fold ``norm``'s eval-mode affine map into ``conv``'s weight and bias, in place (a bias is added if
    the convolution had none). The arithmetic is done in float64 and stored in the weight's dtype."""
    dtype = conv.weight.data.dtype
    scale = 1 / np.sqrt(norm.running_var.astype(np.float64) + norm.eps)
    shift = -norm.running_mean.astype(np.float64) * scale
    if norm.weight is not None:
        scale, shift = scale * norm.weight.data, shift * norm.weight.data + norm.bias.data
    bias = np.zeros(conv.out_channels) if conv.bias is None else conv.bias.data.astype(np.float64)
    weight = conv.weight.data * scale.reshape(-1, *(1,) * (conv.weight.data.ndim - 1))
    conv.weight = Parameter(weight.astype(dtype), trainable=conv.weight.trainable)
    conv.bias = Parameter((bias * scale + shift).astype(dtype))
    conv._init_args["bias"] = True  # the recipe (config) now builds a convolution with a bias


def _fuse_chain(chain: Sequential) -> None:
    names = list(chain._layers)
    for before, name in zip(names[:-1], names[1:]):
        conv, norm = chain._layers.get(before), chain._layers[name]
        if conv is not None and foldable(conv, norm):
            fold_batch_norm(conv, norm)
            del chain._layers[name]


def _fuse_graph(graph: Graph) -> None:
    readers: dict[str, int] = {}
    for sources in graph._edges.values():
        for source in sources:
            readers[source] = readers.get(source, 0) + 1
    for name, layer in list(graph._nodes.items()):
        (source, *more) = graph._edges[name]
        conv = graph._nodes.get(source)
        if (not more and conv is not None and foldable(conv, layer) and readers[source] == 1
                and source not in graph.outputs):
            fold_batch_norm(conv, layer)
            graph.replace(name, Identity())
