"""LeNet-5 (LeCun et al. 1998) in its modern form: ReLU and max pooling instead of tanh and subsampling."""

from __future__ import annotations

from cnnkit.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
from cnnkit.models.registry import flat_features, register


@register
def lenet5(num_classes: int = 10, input_shape=(1, 28, 28), *, rng=None):
    """conv5-6 (padding 2) -> pool -> conv5-16 -> pool -> FC-120 -> FC-84 -> FC-num_classes.

    Shape: (N, 1, 28, 28) -> (N, 10): 28 -> 28 -> 14 -> 10 -> 5, so the first FC sees 16*5*5 = 400 numbers
    (the padding makes a 28x28 MNIST digit behave like the paper's 32x32 input). 61,706 parameters.
    """
    features = Sequential(conv1=Conv2d(input_shape[0], 6, 5, padding=2, rng=rng), relu1=ReLU(),
                          pool1=MaxPool2d(2),
                          conv2=Conv2d(6, 16, 5, rng=rng), relu2=ReLU(), pool2=MaxPool2d(2))
    layers = dict(features.named_children())
    layers.update(flatten=Flatten(), fc1=Linear(flat_features(features, input_shape), 120, rng=rng),
                  relu3=ReLU(), fc2=Linear(120, 84, rng=rng), relu4=ReLU(),
                  fc3=Linear(84, num_classes, rng=rng))
    return Sequential(layers)
