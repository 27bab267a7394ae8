"""Helpers shared by the interop and transfer tests: small zoo models with non-trivial batch-norm state."""

from __future__ import annotations

import inspect

import numpy as np

from cnnkit import models
from cnnkit.layers import BatchNorm1d, BatchNorm2d
from cnnkit.models.registry import constructor


def randomize_batch_norms(model, rng):
    """Give every batch norm a random affine transform and running statistics (a fresh one is identity-like,
    which would hide a mistake in how they are carried over)."""
    for _, layer in model.named_layers():
        if isinstance(layer, BatchNorm1d | BatchNorm2d):
            C = layer.num_features
            layer.weight.data[...] = rng.uniform(0.5, 1.5, C)
            layer.bias.data[...] = rng.normal(0.0, 0.1, C)
            layer.running_mean[...] = rng.normal(0.0, 0.1, C)
            layer.running_var[...] = rng.uniform(0.5, 1.5, C)
            layer.num_batches_tracked[...] = 7
    return model


def small_zoo_model(name: str, rng, num_classes: int = 10):
    """(model in eval mode, input shape of one example): the zoo model at the smallest square size >= 32 that
    it can take, so that every model runs in well under a second (AlexNet's and VGG's adaptive heads pool to
    2 x 2, not torchvision's 6 x 6 and 7 x 7, which would give them 40 to 100 M more weights)."""
    channels = models.default_input_shape(name)[0]
    takes = inspect.signature(constructor(name)).parameters
    head = {"avgpool_size": (2, 2)} if "avgpool_size" in takes else {}
    for size in range(32, 128):
        try:
            model = models.get(name, num_classes=num_classes, input_shape=(channels, size, size), rng=rng,
                               **head)
            model.output_shape((2, channels, size, size))
        except ValueError:  # ShapeError is a ValueError: this size does not tile the network's windows
            continue
        return randomize_batch_norms(model, rng).eval(), (channels, size, size)
    raise AssertionError(f"{name}: no input size between 32 and 127 fits")


def layer_cases():
    """(id, model, input shape with batch) covering every layer type and padding/fit policy the converters
    handle, including the cases torch or ONNX cannot say directly (asymmetric padding, fit="pad")."""
    from cnnkit import layers as L

    rng = np.random.default_rng(0)

    def seq(*layers):
        return L.Sequential(*layers)

    block = L.Residual(L.Sequential(conv1=L.Conv2d(4, 6, 3, stride=2, padding=1, rng=rng),
                                    bn1=L.BatchNorm2d(6), relu=L.ReLU(),
                                    conv2=L.Conv2d(6, 6, 3, padding=1, rng=rng)),
                       L.Sequential(L.Conv2d(4, 6, 1, stride=2, rng=rng), L.BatchNorm2d(6)),
                       activation=L.ReLU(), shortcut_name="downsample")
    inception = L.Concat(branch1=L.Conv2d(6, 3, 1, rng=rng),
                         branch2=seq(L.Conv2d(6, 2, 3, padding=1, rng=rng), L.ELU(0.5)),
                         branch3=seq(L.MaxPool2d(3, stride=1, padding=1), L.Conv2d(6, 2, 1, rng=rng)))
    cases = [
        ("conv_fit_pad", seq(L.Conv2d(3, 4, 3, stride=2, fit="pad", rng=rng)), (2, 3, 10, 9)),
        ("conv_asymmetric", seq(L.Conv2d(3, 4, (3, 2), padding=((1, 0), (0, 1)), dilation=(2, 1), rng=rng)),
         (2, 3, 9, 8)),
        ("conv_crop_groups", seq(L.Conv2d(4, 8, 3, stride=2, padding=2, dilation=2, groups=2, fit="crop",
                                          rng=rng)), (2, 4, 10, 11)),
        ("conv_same", seq(L.Conv2d(3, 4, 4, padding="same", bias=False, rng=rng)), (2, 3, 7, 7)),
        ("conv1d", seq(L.Conv1d(3, 4, 3, stride=2, padding=1, fit="crop", rng=rng),
                       L.MaxPool1d(3, stride=2, fit="pad")), (2, 3, 12)),
        ("conv3d", seq(L.Conv3d(2, 3, 2, stride=(1, 2, 1), padding=1, fit="crop", rng=rng)), (2, 2, 4, 5, 6)),
        ("max_pool_ceil", seq(L.MaxPool2d(3, stride=2, padding=1, fit="pad"),
                              L.MaxPool2d(2, stride=1, dilation=2)), (2, 3, 10, 10)),
        ("max_pool_asymmetric", seq(L.MaxPool2d(3, stride=2, padding=((1, 0), (0, 1)), fit="crop")),
         (2, 3, 9, 10)),
        ("avg_pool_ceil", seq(L.AvgPool2d(3, stride=2, padding=1, fit="pad"),
                              L.AvgPool2d(2, stride=2, count_include_pad=False, fit="pad")), (2, 3, 10, 10)),
        ("avg_pool_excluded_padding", seq(L.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)),
         (2, 3, 9, 9)),
        ("avg_pool_asymmetric", seq(L.AvgPool2d(2, padding=((1, 0), (0, 1)), count_include_pad=False)),
         (2, 3, 7, 9)),
        ("lp_pool", seq(L.LPPool2d(2, 3, stride=2, fit="pad"), L.LPPool2d(3, 2, fit="crop")), (2, 3, 10, 10)),
        ("lp_pool_fractional", seq(L.LPPool2d(1.5, 2, stride=2)), (2, 3, 8, 8)),
        ("blur_pool", seq(L.BlurPool2d(3), L.Blur2d(3, filter_size=4, stride=2, fit="pad")), (2, 3, 12, 12)),
        ("locally_connected", seq(L.LocallyConnected2d(3, 4, 3, stride=2, padding=1, input_size=(7, 7),
                                                       rng=rng)), (2, 3, 7, 7)),
        ("conv_transpose", seq(L.ConvTranspose2d(3, 4, 4, stride=2, padding=1, output_padding=1, rng=rng),
                               L.ConvTranspose2d(4, 2, 3, groups=2, dilation=2, rng=rng)), (2, 3, 5, 6)),
        ("norms", seq(L.Conv2d(3, 6, 3, rng=rng), L.BatchNorm2d(6), L.LocalResponseNorm(5),
                      L.LocalResponseNorm(4, alpha=0.01, beta=0.5, k=2.0), L.GlobalMaxPool2d(), L.Flatten(),
                      L.BatchNorm1d(6), L.Linear(6, 5, rng=rng)), (2, 3, 8, 8)),
        ("activations", seq(L.LeakyReLU(0.2), L.ReLU6(), L.ELU(0.7), L.Sigmoid(), L.Tanh(), L.Identity(),
                            L.Dropout(0.3, rng=rng), L.Softmax(dim=1)), (2, 3, 4, 5)),
        ("residual_and_concat", seq(block, inception, L.GlobalAvgPool2d(), L.Flatten(),
                                    L.Linear(7, 3, bias=False, rng=rng)), (2, 4, 9, 9)),
    ]
    for _, model, _ in cases:
        randomize_batch_norms(model, rng).eval()
    return cases


def case_input(shape, rng):
    """A signed input (so that max pooling, |x|^p and the activations see negative values too)."""
    return rng.standard_normal(shape).astype(np.float32)
