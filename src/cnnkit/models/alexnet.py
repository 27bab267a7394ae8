"""AlexNet (Krizhevsky et al. 2012, torchvision's single-tower version) and ZFNet (Zeiler & Fergus 2013).

AlexNet's first layer, 11x11 with stride 4 and padding 2, does not tile a 224x224 input
((224 - 11 + 4)/4 + 1 = 55.25): it declares ``fit="crop"`` and, like PyTorch, gives 55 x 55. Names, shapes
and parameter counts are torchvision's (``features.N``, ``classifier.N``); its adaptive average pool (6x6
at 224, where it does nothing) is left out and the first Linear follows the input size instead.
"""

from __future__ import annotations

from cnnkit.layers import Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d, ReLU, Sequential
from cnnkit.models.registry import flat_features, register


def _classifier(in_features, num_classes, dropout, rng):
    return Sequential(Dropout(dropout, rng=rng), Linear(in_features, 4096, rng=rng), ReLU(),
                      Dropout(dropout, rng=rng), Linear(4096, 4096, rng=rng), ReLU(),
                      Linear(4096, num_classes, rng=rng))


def _network(features, input_shape, num_classes, dropout, rng):
    return Sequential(features=features, flatten=Flatten(),
                      classifier=_classifier(flat_features(features, input_shape), num_classes, dropout, rng))


@register
def alexnet(num_classes: int = 1000, input_shape=(3, 224, 224), *, dropout: float = 0.5, rng=None):
    """AlexNet: five convolutions (64, 192, 384, 256, 256 filters) and three fully-connected layers.

    Shape: (N, 3, 224, 224) -> (N, num_classes). 61,100,840 parameters for 1000 classes.
    """
    features = Sequential(
        Conv2d(input_shape[0], 64, 11, stride=4, padding=2, fit="crop", rng=rng), ReLU(),
        MaxPool2d(3, stride=2),
        Conv2d(64, 192, 5, padding=2, rng=rng), ReLU(),
        MaxPool2d(3, stride=2),
        Conv2d(192, 384, 3, padding=1, rng=rng), ReLU(),
        Conv2d(384, 256, 3, padding=1, rng=rng), ReLU(),
        Conv2d(256, 256, 3, padding=1, rng=rng), ReLU(),
        MaxPool2d(3, stride=2))
    return _network(features, input_shape, num_classes, dropout, rng)


@register
def zfnet(num_classes: int = 1000, input_shape=(3, 224, 224), *, dropout: float = 0.5, rng=None):
    """ZFNet: AlexNet with a 7x7 stride-2 first layer and wider middle layers (384, 384, 256).

    The paper's sizes at 224: 110 -> pool 55 -> 26 -> pool 13 -> 13 -> 13 -> 13 -> pool 6. The first conv
    (padding 1) rounds 110.5 down (``fit="crop"``) and the first two pools round 54.5 and 12.5 up
    (``fit="pad"``, PyTorch's ceil mode), as the paper's sizes require. Local response normalization
    follows the first two pools.
    """
    features = Sequential(
        Conv2d(input_shape[0], 96, 7, stride=2, padding=1, fit="crop", rng=rng), ReLU(),
        MaxPool2d(3, stride=2, fit="pad"), LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
        Conv2d(96, 256, 5, stride=2, rng=rng), ReLU(),
        MaxPool2d(3, stride=2, fit="pad"), LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
        Conv2d(256, 384, 3, padding=1, rng=rng), ReLU(),
        Conv2d(384, 384, 3, padding=1, rng=rng), ReLU(),
        Conv2d(384, 256, 3, padding=1, rng=rng), ReLU(),
        MaxPool2d(3, stride=2))
    return _network(features, input_shape, num_classes, dropout, rng)
