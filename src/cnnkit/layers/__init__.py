"""Stateful layers: own Parameters, call a kernel from cnnkit.functional, keep the cache for backward."""

from cnnkit.layers.base import Concat, Layer, Parameter, Residual, Sequential, from_config
from cnnkit.layers.conv import Conv1d, Conv2d, Conv3d

__all__ = [
    "Concat", "Conv1d", "Conv2d", "Conv3d", "Layer", "Parameter", "Residual", "Sequential", "from_config",
]
