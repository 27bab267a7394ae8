"""VGG (Simonyan & Zisserman 2014): only 3x3 convolutions (stride 1, pad 1) and 2x2 max pools (stride 2).

Layer names, shapes and parameter counts are torchvision's (``features.N``, ``avgpool``, ``classifier.N``),
so its weights load one to one, and so is the head: an adaptive average pool to 7 x 7 (which does nothing at
224) before the classifier, and max pools that round down (``fit="crop"``, PyTorch's floor), so that any
input from 32 x 32 up gives logits, torchvision's logits with torchvision's weights.

>>> net = vgg11(num_classes=10, input_shape=(3, 32, 32), avgpool_size=(2, 2))
>>> net.output_shape((1, 3, 32, 32)), net.output_shape((1, 3, 300, 300)), net.get("classifier.0").weight.shape
((1, 10), (1, 10), (4096, 2048))
>>> vgg11(num_classes=10, input_shape=(3, 32, 32), avgpool_size=None).get("classifier.0").weight.shape
(4096, 512)
"""

from __future__ import annotations

from cnnkit.layers import (
    AdaptiveAvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
)
from cnnkit.models.registry import flat_features, register

# Output channels of each conv; "M" is a 2x2 max pool. The paper's configurations A, B, D, E.
CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


def vgg(depth: int, batch_norm: bool = False, num_classes: int = 1000, input_shape=(3, 224, 224), *,
        dropout: float = 0.5, avgpool_size=(7, 7), rng=None):
    """VGG-``depth`` (11, 13, 16 or 19), with batch norm after every conv if ``batch_norm``.

    Shape: (N, 3, H, W) -> (N, num_classes) for any H, W >= 32 (five 2x2 pools, each rounding down).

    Args:
        avgpool_size: the output of the adaptive average pool before the classifier (torchvision's (7, 7));
            None leaves the pool out and sizes the first Linear for ``input_shape`` (small test models).
    """
    if depth not in CONFIGS:
        raise ValueError(f"vgg: Received depth={depth!r}; expected one of {sorted(CONFIGS)}.")
    layers, channels = [], input_shape[0]
    for item in CONFIGS[depth]:
        if item == "M":
            layers.append(MaxPool2d(2, stride=2, fit="crop"))
            continue
        layers.append(Conv2d(channels, item, 3, padding=1, rng=rng))
        if batch_norm:
            layers.append(BatchNorm2d(item))
        layers.append(ReLU())
        channels = item
    features = Sequential(*layers)
    head = {} if avgpool_size is None else {"avgpool": AdaptiveAvgPool2d(avgpool_size)}
    in_features = flat_features(Sequential(features, *head.values()), input_shape)
    classifier = Sequential(
        Linear(in_features, 4096, rng=rng), ReLU(), Dropout(dropout, rng=rng),
        Linear(4096, 4096, rng=rng), ReLU(), Dropout(dropout, rng=rng),
        Linear(4096, num_classes, rng=rng))
    return Sequential(features=features, **head, flatten=Flatten(), classifier=classifier)


def _variant(depth, batch_norm):
    def build(num_classes: int = 1000, input_shape=(3, 224, 224), *, dropout: float = 0.5,
              avgpool_size=(7, 7), rng=None):
        return vgg(depth, batch_norm, num_classes, input_shape, dropout=dropout, avgpool_size=avgpool_size,
                   rng=rng)
    build.__name__ = build.__qualname__ = f"vgg{depth}{'_bn' if batch_norm else ''}"
    build.__doc__ = f"VGG-{depth}{' with batch norm' if batch_norm else ''} (torchvision's {build.__name__})."
    return register(build)


vgg11, vgg13, vgg16, vgg19 = (_variant(d, False) for d in (11, 13, 16, 19))
vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn = (_variant(d, True) for d in (11, 13, 16, 19))
