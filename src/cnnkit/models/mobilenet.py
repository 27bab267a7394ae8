"""MobileNets: depthwise separable convolutions (v1, Howard et al. 2017) and inverted residuals (v2, 2018).

A depthwise separable layer replaces one F x F conv from C to K channels (F*F*C*K multiply-adds per
position) by a depthwise F x F conv (``groups=C``: F*F*C) and a pointwise 1x1 conv (C*K): for 3x3 and
256 -> 256 that is 67,840 instead of 589,824, 8.7 times fewer.

``mobilenet_v2`` has torchvision's names, shapes and parameter counts (``features.N.conv...``,
``classifier.1``). At 224 x 224 every stride-2 conv (3x3, padding 1, on an even size) rounds down, so
those layers, and only those, declare ``fit="crop"``.
"""

from __future__ import annotations

from cnnkit.layers import (
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    Linear,
    ReLU,
    ReLU6,
    Residual,
    Sequential,
)
from cnnkit.models.registry import register


def _conv_bn(in_channels, out_channels, kernel_size, stride=1, groups=1, activation=ReLU6, rng=None):
    """conv (no bias) -> batch norm -> activation, torchvision's Conv2dNormActivation (children 0, 1, 2)."""
    conv = Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                  groups=groups, bias=False, fit="crop" if stride > 1 else "error", rng=rng)
    return Sequential(conv, BatchNorm2d(out_channels), activation())


def depthwise_separable(in_channels, out_channels, stride=1, *, rng=None):
    """MobileNet v1's block: 3x3 depthwise conv, BN, ReLU, then 1x1 pointwise conv, BN, ReLU."""
    depthwise = Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False,
                       fit="crop" if stride > 1 else "error", rng=rng)
    return Sequential(depthwise=depthwise, bn1=BatchNorm2d(in_channels), relu1=ReLU(),
                      pointwise=Conv2d(in_channels, out_channels, 1, bias=False, rng=rng),
                      bn2=BatchNorm2d(out_channels), relu2=ReLU())


# (output channels, stride) of v1's thirteen depthwise separable layers.
V1_LAYERS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1)]


def _scaled(channels, width):
    """Channels times the width multiplier, rounded to a multiple of 8 (never down by more than 10%)."""
    scaled = max(8, int(channels * width + 4) // 8 * 8)
    return scaled + 8 if scaled < 0.9 * channels * width else scaled


@register
def mobilenet_v1(num_classes: int = 1000, input_shape=(3, 224, 224), *, width: float = 1.0,
                 dropout: float = 0.0, rng=None):
    """MobileNet v1: a 3x3 stride-2 conv, 13 depthwise separable layers, global average pool, one FC.

    Shape: (N, 3, 224, 224) -> (N, num_classes); 4,231,976 parameters and 569 M multiply-adds at width 1.
    """
    channels = _scaled(32, width)
    layers = [_conv_bn(input_shape[0], channels, 3, stride=2, activation=ReLU, rng=rng)]
    for out, stride in V1_LAYERS:
        layers.append(depthwise_separable(channels, _scaled(out, width), stride, rng=rng))
        channels = _scaled(out, width)
    head = [Dropout(dropout, rng=rng)] if dropout else []
    return Sequential(features=Sequential(*layers), avgpool=GlobalAvgPool2d(), flatten=Flatten(),
                      classifier=Sequential(*head, Linear(channels, num_classes, rng=rng)))


def inverted_residual(in_channels, out_channels, stride, expand_ratio, *, rng=None):
    """MobileNet v2's block: 1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 project (linear), BN.

    The shortcut is added when the block keeps the volume's size (stride 1, same channels).
    """
    hidden = round(in_channels * expand_ratio)
    layers = [_conv_bn(in_channels, hidden, 1, rng=rng)] if expand_ratio != 1 else []
    layers += [_conv_bn(hidden, hidden, 3, stride=stride, groups=hidden, rng=rng),
               Conv2d(hidden, out_channels, 1, bias=False, rng=rng), BatchNorm2d(out_channels)]
    body = Sequential(conv=Sequential(*layers))
    return Residual(body) if stride == 1 and in_channels == out_channels else body


# (expansion t, output channels c, repeats n, first stride s), the paper's Table 2.
V2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1)]


@register
def mobilenet_v2(num_classes: int = 1000, input_shape=(3, 224, 224), *, width: float = 1.0,
                 dropout: float = 0.2, rng=None):
    """MobileNet v2 (torchvision's mobilenet_v2): 3,504,872 parameters, 0.30 G multiply-adds at 224."""
    channels, last = _scaled(32, width), _scaled(1280, max(1.0, width))
    layers = [_conv_bn(input_shape[0], channels, 3, stride=2, rng=rng)]
    for t, c, n, s in V2_SETTINGS:
        for i in range(n):
            layers.append(inverted_residual(channels, _scaled(c, width), s if i == 0 else 1, t, rng=rng))
            channels = _scaled(c, width)
    layers.append(_conv_bn(channels, last, 1, rng=rng))
    return Sequential(features=Sequential(*layers), avgpool=GlobalAvgPool2d(), flatten=Flatten(),
                      classifier=Sequential(Dropout(dropout, rng=rng), Linear(last, num_classes, rng=rng)))
