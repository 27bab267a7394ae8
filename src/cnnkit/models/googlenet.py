"""GoogLeNet, Inception v1 (Szegedy et al. 2014), as torchvision builds it (without the auxiliary heads).

An Inception module runs four branches on the same input and concatenates their channels: a 1x1 conv;
1x1 then 3x3; 1x1 then a second 3x3 (the paper has 5x5 here; torchvision kept 3x3 so that its published
weights load, and so do we); a 3x3 max pool (stride 1) then 1x1. The 1x1 convs in front are the
bottlenecks that keep the parameter count at 6.6 M, twelve times fewer than AlexNet.

Every conv is followed by batch norm (eps 0.001) and ReLU, torchvision's ``BasicConv2d``. Names, shapes and
parameter counts are torchvision's. At 224 x 224 the 7x7 stride-2 stem rounds 112.5 down (``fit="crop"``)
and the first three max pools round 55.5, 27.5 and 13.5 up (``fit="pad"``, PyTorch's ``ceil_mode=True``).
"""

from __future__ import annotations

from cnnkit.layers import (
    BatchNorm2d,
    Concat,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
)
from cnnkit.models.registry import register


def basic_conv(in_channels, out_channels, kernel_size, stride=1, *, fit="error", rng=None):
    """conv (no bias, padding (F-1)/2) -> batch norm (eps 0.001) -> ReLU, named conv, bn, relu."""
    return Sequential(conv=Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                                  padding=(kernel_size - 1) // 2, bias=False, fit=fit, rng=rng),
                      bn=BatchNorm2d(out_channels, eps=0.001), relu=ReLU())


def inception(in_channels, ch1x1, ch3x3_reduce, ch3x3, ch5x5_reduce, ch5x5, pool_proj, *, rng=None):
    """Four branches concatenated: ch1x1 + ch3x3 + ch5x5 + pool_proj output channels, same H x W."""
    return Concat(
        branch1=basic_conv(in_channels, ch1x1, 1, rng=rng),
        branch2=Sequential(basic_conv(in_channels, ch3x3_reduce, 1, rng=rng),
                           basic_conv(ch3x3_reduce, ch3x3, 3, rng=rng)),
        branch3=Sequential(basic_conv(in_channels, ch5x5_reduce, 1, rng=rng),
                           basic_conv(ch5x5_reduce, ch5x5, 3, rng=rng)),
        branch4=Sequential(MaxPool2d(3, stride=1, padding=1), basic_conv(in_channels, pool_proj, 1, rng=rng)))


# The paper's Table 1: input channels, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
MODULES = {
    "3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


@register
def googlenet(num_classes: int = 1000, input_shape=(3, 224, 224), *, dropout: float = 0.2, rng=None):
    """GoogLeNet: stem, nine Inception modules, global average pool, dropout, one FC (6,624,904 params)."""
    def stage(*keys):
        return {f"inception{k}": inception(*MODULES[k], rng=rng) for k in keys}

    return Sequential(
        conv1=basic_conv(input_shape[0], 64, 7, stride=2, fit="crop", rng=rng),
        maxpool1=MaxPool2d(3, stride=2, fit="pad"),
        conv2=basic_conv(64, 64, 1, rng=rng), conv3=basic_conv(64, 192, 3, rng=rng),
        maxpool2=MaxPool2d(3, stride=2, fit="pad"),
        **stage("3a", "3b"), maxpool3=MaxPool2d(3, stride=2, fit="pad"),
        **stage("4a", "4b", "4c", "4d", "4e"), maxpool4=MaxPool2d(2, stride=2),
        **stage("5a", "5b"),
        avgpool=GlobalAvgPool2d(), flatten=Flatten(), dropout=Dropout(dropout, rng=rng),
        fc=Linear(1024, num_classes, rng=rng))
