"""ResNet (He et al. 2015): residual blocks, batch norm, global average pooling, one fully-connected layer.

Names, shapes and parameter counts are torchvision's (``conv1``, ``layer1.0.conv1``,
``layer2.0.downsample.0``, ``fc``; the stride of a bottleneck sits on its 3x3 conv, "ResNet v1.5"), so its
weights load one to one.

Every stride-2 layer rounds down at 224 x 224: the 7x7 stem gives (224 - 7 + 6)/2 + 1 = 112.5, the max pool
(112 - 3 + 2)/2 + 1 = 56.5, each downsampling 3x3 conv (56 - 3 + 2)/2 + 1 = 28.5 and its 1x1 shortcut
(56 - 1)/2 + 1 = 28.5. Those layers, and only those, declare ``fit="crop"`` (PyTorch's rounding).
"""

from __future__ import annotations

from cnnkit.layers import (
    BatchNorm2d,
    Conv2d,
    Flatten,
    GlobalAvgPool2d,
    Linear,
    MaxPool2d,
    ReLU,
    Residual,
    Sequential,
)
from cnnkit.models.registry import register


def _conv(in_channels, out_channels, kernel_size, stride, rng):
    # Only strided convs round: at stride 1 with padding (F-1)/2 every size tiles.
    return Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                  bias=False, fit="crop" if stride > 1 else "error", rng=rng)


def basic_block(in_channels, channels, stride=1, *, rng=None):
    """Two 3x3 convs: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``; output ``channels``."""
    body = Sequential(conv1=_conv(in_channels, channels, 3, stride, rng), bn1=BatchNorm2d(channels),
                      relu1=ReLU(), conv2=_conv(channels, channels, 3, 1, rng), bn2=BatchNorm2d(channels))
    return Residual(body, _downsample(in_channels, channels, stride, rng), activation=ReLU(),
                    shortcut_name="downsample")


def bottleneck(in_channels, channels, stride=1, *, rng=None):
    """1x1 (reduce to ``channels``) -> 3x3 (stride) -> 1x1 (expand to 4 * ``channels``), plus the shortcut."""
    out = 4 * channels
    body = Sequential(conv1=_conv(in_channels, channels, 1, 1, rng), bn1=BatchNorm2d(channels), relu1=ReLU(),
                      conv2=_conv(channels, channels, 3, stride, rng), bn2=BatchNorm2d(channels),
                      relu2=ReLU(),
                      conv3=_conv(channels, out, 1, 1, rng), bn3=BatchNorm2d(out))
    return Residual(body, _downsample(in_channels, out, stride, rng), activation=ReLU(),
                    shortcut_name="downsample")


def _downsample(in_channels, out_channels, stride, rng):
    """A strided 1x1 conv + batch norm when the block changes the volume's size; else the identity."""
    if stride == 1 and in_channels == out_channels:
        return None
    return Sequential(_conv(in_channels, out_channels, 1, stride, rng), BatchNorm2d(out_channels))


def resnet(block, blocks_per_stage, num_classes=1000, input_shape=(3, 224, 224), *, rng=None):
    """A ResNet from a block function and the number of blocks in each of its four stages."""
    expansion = 4 if block is bottleneck else 1
    stages, in_channels = {}, 64
    for i, (channels, count) in enumerate(zip((64, 128, 256, 512), blocks_per_stage, strict=True)):
        blocks = []
        for j in range(count):
            blocks.append(block(in_channels, channels, 2 if (j == 0 and i > 0) else 1, rng=rng))
            in_channels = channels * expansion
        stages[f"layer{i + 1}"] = Sequential(*blocks)
    return Sequential(
        conv1=_conv(input_shape[0], 64, 7, 2, rng), bn1=BatchNorm2d(64), relu=ReLU(),
        maxpool=MaxPool2d(3, stride=2, padding=1, fit="crop"), **stages,
        avgpool=GlobalAvgPool2d(), flatten=Flatten(), fc=Linear(in_channels, num_classes, rng=rng))


def _variant(name, block, counts):
    def build(num_classes: int = 1000, input_shape=(3, 224, 224), *, rng=None):
        return resnet(block, counts, num_classes, input_shape, rng=rng)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{name}: {block.__name__} blocks {counts} (torchvision's {name})."
    return register(build)


resnet18 = _variant("resnet18", basic_block, (2, 2, 2, 2))
resnet34 = _variant("resnet34", basic_block, (3, 4, 6, 3))
resnet50 = _variant("resnet50", bottleneck, (3, 4, 6, 3))
resnet101 = _variant("resnet101", bottleneck, (3, 4, 23, 3))
resnet152 = _variant("resnet152", bottleneck, (3, 8, 36, 3))
