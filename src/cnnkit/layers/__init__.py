"""Stateful layers: own Parameters, call a kernel from cnnkit.functional, keep the cache for backward."""

from cnnkit.layers.activation import ELU, Identity, LeakyReLU, ReLU, ReLU6, Sigmoid, Softmax, Tanh
from cnnkit.layers.base import Concat, Layer, Parameter, Residual, Sequential, from_config
from cnnkit.layers.conv import Conv1d, Conv2d, Conv3d
from cnnkit.layers.linear import Dropout, Flatten, Linear
from cnnkit.layers.norm import BatchNorm1d, BatchNorm2d, LocalResponseNorm

__all__ = [
    "Concat", "Conv1d", "Conv2d", "Conv3d", "Layer", "Parameter", "Residual", "Sequential", "from_config",
]
__all__ += [
    "BatchNorm1d", "BatchNorm2d", "Dropout", "ELU", "Flatten", "Identity", "LeakyReLU", "Linear",
    "LocalResponseNorm", "ReLU", "ReLU6", "Sigmoid", "Softmax", "Tanh",
]
