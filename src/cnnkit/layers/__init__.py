"""Stateful layers: own Parameters, call a kernel from cnnkit.functional, keep the cache for backward."""

from cnnkit.layers.activation import ELU, Identity, LeakyReLU, ReLU, ReLU6, Sigmoid, Softmax, Tanh
from cnnkit.layers.base import Concat, Layer, Parameter, Residual, Sequential, from_config
from cnnkit.layers.conv import Conv1d, Conv2d, Conv3d
from cnnkit.layers.conv_transpose import ConvTranspose2d
from cnnkit.layers.linear import Dropout, Flatten, Linear
from cnnkit.layers.local import LocallyConnected2d
from cnnkit.layers.norm import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from cnnkit.layers.pool import (
    AvgPool2d,
    Blur2d,
    BlurPool2d,
    GlobalAvgPool2d,
    GlobalMaxPool2d,
    LPPool2d,
    MaxPool1d,
    MaxPool2d,
)

__all__ = [
    "Concat", "Conv1d", "Conv2d", "Conv3d", "Layer", "Parameter", "Residual", "Sequential", "from_config",
]
__all__ += [
    "BatchNorm1d", "BatchNorm2d", "Dropout", "ELU", "Flatten", "Identity", "LeakyReLU", "Linear",
    "LocalResponseNorm", "ReLU", "ReLU6", "Sigmoid", "Softmax", "Tanh",
]
__all__ += [
    "AvgPool2d", "Blur2d", "BlurPool2d", "ConvTranspose2d", "GlobalAvgPool2d", "GlobalMaxPool2d", "LPPool2d",
    "LocallyConnected2d", "MaxPool1d", "MaxPool2d",
]
from cnnkit.layers.graph import Graph  # noqa: E402 -- the DAG container and its merge nodes
from cnnkit.layers.merge import (  # noqa: E402
    Add,
    Concatenate,
    Constant,
    Divide,
    MatMul,
    Multiply,
    Permute,
    Reshape,
    Slice,
    Split,
    Subtract,
)

__all__ += ["Add", "Concatenate", "Constant", "Divide", "Graph", "MatMul", "Multiply", "Permute", "Reshape",
            "Slice", "Split", "Subtract"]
from cnnkit.layers.adaptive import (  # noqa: E402 -- pooling to a fixed output size
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AdaptiveMaxPool3d,
)
from cnnkit.layers.padding import (  # noqa: E402 -- PyTorch's padding layers
    CircularPad1d,
    CircularPad2d,
    CircularPad3d,
    ConstantPad1d,
    ConstantPad2d,
    ConstantPad3d,
    ReflectionPad1d,
    ReflectionPad2d,
    ReflectionPad3d,
    ReplicationPad1d,
    ReplicationPad2d,
    ReplicationPad3d,
    ZeroPad1d,
    ZeroPad2d,
    ZeroPad3d,
)

__all__ += [
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d", "CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d", "ConstantPad2d",
    "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d",
    "ReplicationPad2d", "ReplicationPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d",
]
from cnnkit.layers.activation_more import (  # noqa: E402 -- the activations after AlexNet and VGG
    CELU,
    GELU,
    SELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LogSoftmax,
    Mish,
    PReLU,
    SiLU,
    Softplus,
    Softsign,
)

__all__ += ["CELU", "GELU", "Hardsigmoid", "Hardswish", "Hardtanh", "LogSoftmax", "Mish", "PReLU", "SELU",
            "SiLU", "Softplus", "Softsign"]
from cnnkit.layers.example_norm import (  # noqa: E402 -- normalization within each example
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LayerNorm,
)

__all__ += ["GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LayerNorm"]
from cnnkit.layers.conv_transpose import ConvTranspose1d, ConvTranspose3d  # noqa: E402
from cnnkit.layers.norm import BatchNorm3d  # noqa: E402
from cnnkit.layers.pool import (  # noqa: E402 -- the 1-D/3-D pools and max unpooling
    AvgPool1d,
    AvgPool3d,
    LPPool1d,
    LPPool3d,
    MaxPool3d,
    MaxUnpool1d,
    MaxUnpool2d,
    MaxUnpool3d,
)

__all__ += [
    "AvgPool1d", "AvgPool3d", "BatchNorm3d", "ConvTranspose1d", "ConvTranspose3d", "LPPool1d", "LPPool3d",
    "MaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
]
from cnnkit.layers.rearrange import ChannelShuffle, PixelShuffle, PixelUnshuffle, Unflatten  # noqa: E402
from cnnkit.layers.upsample import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d  # noqa: E402

__all__ += ["ChannelShuffle", "PixelShuffle", "PixelUnshuffle", "Unflatten", "Upsample",
            "UpsamplingBilinear2d", "UpsamplingNearest2d"]
