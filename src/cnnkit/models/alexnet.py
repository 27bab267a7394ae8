"""AlexNet (Krizhevsky et al. 2012) as torchvision has it and as the notes tell it, and ZFNet (Zeiler &
Fergus 2013).

AlexNet's first layer, 11x11 with stride 4 and padding 2, does not tile a 224x224 input
((224 - 11 + 4)/4 + 1 = 55.25): it declares ``fit="crop"`` and, like PyTorch, gives 55 x 55. Names, shapes
and parameter counts are torchvision's (``features.N``, ``avgpool``, ``classifier.N``), and so is the head:
an adaptive average pool to 6 x 6 (which does nothing at 224) before the classifier, with max pools that
round down (``fit="crop"``, PyTorch's floor) so that, as in torchvision, any input from 63 x 63 up gives
logits, and torchvision's weights give torchvision's logits at every size.

>>> from cnnkit.analysis import summary
>>> net = alexnet()
>>> s = summary(net, (3, 224, 224))
>>> s.total_params, s.total_macs, net.output_shape((2, 3, 96, 96))
(61100840, 714188480, (2, 1000))
"""

from __future__ import annotations

from cnnkit.layers import (
    AdaptiveAvgPool2d,
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    LocalResponseNorm,
    MaxPool2d,
    ReLU,
    Sequential,
)
from cnnkit.models.registry import flat_features, register


def _classifier(in_features, num_classes, dropout, rng):
    return Sequential(Dropout(dropout, rng=rng), Linear(in_features, 4096, rng=rng), ReLU(),
                      Dropout(dropout, rng=rng), Linear(4096, 4096, rng=rng), ReLU(),
                      Linear(4096, num_classes, rng=rng))


def _network(features, input_shape, num_classes, dropout, rng, avgpool_size=None):
    """features -> [avgpool] -> flatten -> classifier; without a pool the first Linear follows input_shape."""
    if avgpool_size is None:
        in_features = flat_features(features, input_shape)
        return Sequential(features=features, flatten=Flatten(),
                          classifier=_classifier(in_features, num_classes, dropout, rng))
    avgpool = AdaptiveAvgPool2d(avgpool_size)
    in_features = flat_features(Sequential(features, avgpool), input_shape)
    return Sequential(features=features, avgpool=avgpool, flatten=Flatten(),
                      classifier=_classifier(in_features, num_classes, dropout, rng))


@register
def alexnet(num_classes: int = 1000, input_shape=(3, 224, 224), *, dropout: float = 0.5, avgpool_size=(6, 6),
            rng=None):
    """AlexNet: five convolutions (64, 192, 384, 256, 256 filters) and three fully-connected layers.

    Shape: (N, 3, H, W) -> (N, num_classes) for any H, W >= 63. 61,100,840 parameters for 1000 classes.

    Args:
        avgpool_size: the output of the adaptive average pool before the classifier (torchvision's (6, 6));
            None leaves the pool out and sizes the first Linear for ``input_shape`` (small test models).
    """
    features = Sequential(
        Conv2d(input_shape[0], 64, 11, stride=4, padding=2, fit="crop", rng=rng), ReLU(),
        MaxPool2d(3, stride=2, fit="crop"),
        Conv2d(64, 192, 5, padding=2, rng=rng), ReLU(),
        MaxPool2d(3, stride=2, fit="crop"),
        Conv2d(192, 384, 3, padding=1, rng=rng), ReLU(),
        Conv2d(384, 256, 3, padding=1, rng=rng), ReLU(),
        Conv2d(256, 256, 3, padding=1, rng=rng), ReLU(),
        MaxPool2d(3, stride=2, fit="crop"))
    return _network(features, input_shape, num_classes, dropout, rng, avgpool_size)


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


@register
def alexnet_v1(num_classes: int = 1000, input_shape=(3, 227, 227), *, dropout: float = 0.5, rng=None):
    """The notes' AlexNet, the network of the 2012 paper as Caffe's bvlc_alexnet trains it.

    227x227x3 -> CONV1: 96 filters of 11x11x3 at stride 4, no padding -> 55x55x96 ((227 - 11)/4 + 1 = 55),
    then ReLU, local response normalization (5 channels, alpha 1e-4, beta 0.75, k 1) and overlapping 3x3
    max pooling at stride 2 -> 27x27x96; CONV2 256 5x5 (pad 2) -> LRN -> pool -> 13x13x256; CONV3 384 3x3,
    CONV4 384 3x3, CONV5 256 3x3 (pad 1) -> pool -> 6x6x256; FC6 4096, FC7 4096 (dropout 0.5 after each),
    FC8 1000. CONV2, CONV4 and CONV5 have ``groups=2``: the paper split the network over two GPUs, and
    those layers only see the 48 (192, 192) channels on their own GPU, which is why the model has
    60,965,224 parameters and not the 62.4 M of one tower. Names are Caffe's (conv1, norm1, pool1, fc6...).

    Shape: (N, 3, 227, 227) -> (N, num_classes); every window tiles exactly at 227.

    >>> from cnnkit.analysis import summary
    >>> s = summary(alexnet_v1(), (3, 227, 227))
    >>> s.total_params, s.total_macs
    (60965224, 724406816)
    >>> [(r.name, r.output_shape) for r in s.rows if r.name in ("conv1", "pool1", "pool2", "pool5")]
    [('conv1', (96, 55, 55)), ('pool1', (96, 27, 27)), ('pool2', (256, 13, 13)), ('pool5', (256, 6, 6))]
    """
    def lrn():
        return LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)

    features = dict(
        conv1=Conv2d(input_shape[0], 96, 11, stride=4, rng=rng), relu1=ReLU(), norm1=lrn(),
        pool1=MaxPool2d(3, stride=2),
        conv2=Conv2d(96, 256, 5, padding=2, groups=2, rng=rng), relu2=ReLU(), norm2=lrn(),
        pool2=MaxPool2d(3, stride=2),
        conv3=Conv2d(256, 384, 3, padding=1, rng=rng), relu3=ReLU(),
        conv4=Conv2d(384, 384, 3, padding=1, groups=2, rng=rng), relu4=ReLU(),
        conv5=Conv2d(384, 256, 3, padding=1, groups=2, rng=rng), relu5=ReLU(),
        pool5=MaxPool2d(3, stride=2))
    in_features = flat_features(Sequential(features), input_shape)
    return Sequential(**features, flatten=Flatten(),
                      fc6=Linear(in_features, 4096, rng=rng), relu6=ReLU(), drop6=Dropout(dropout, rng=rng),
                      fc7=Linear(4096, 4096, rng=rng), relu7=ReLU(), drop7=Dropout(dropout, rng=rng),
                      fc8=Linear(4096, num_classes, rng=rng))
