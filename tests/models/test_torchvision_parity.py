"""torchvision's AlexNet, VGG-11 and VGG-16, written here in plain torch.nn (torchvision itself is not a
dependency) with random weights: their state dicts load into the zoo models, which then give the same logits
at 64, 96, 224 and 300 px, the sizes around and beyond the 224 the classifiers were shaped for. That is the
adaptive average pool's job (6 x 6 for AlexNet, 7 x 7 for VGG) together with max pools that round down."""

import json

import numpy as np
import pytest

import cnnkit.layers.conv
import cnnkit.layers.linear
from cnnkit import models
from cnnkit.interop.torch import load_torch_weights
from conftest import TORCHVISION_FIXTURES, assert_parity

torch = pytest.importorskip("torch")
nn = torch.nn

SIZES = (64, 96, 224, 300)
VGG = {"vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
       "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]}


def torchvision_alexnet():
    """torchvision.models.AlexNet, line for line."""
    net = nn.Module()
    net.features = nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2))
    net.avgpool = nn.AdaptiveAvgPool2d((6, 6))
    net.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
                                   nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
                                   nn.Linear(4096, 1000))
    return net


def torchvision_vgg(config):
    """torchvision.models.VGG with make_layers(config), line for line."""
    layers, channels = [], 3
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2, stride=2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
            channels = item
    net = nn.Module()
    net.features = nn.Sequential(*layers)
    net.avgpool = nn.AdaptiveAvgPool2d((7, 7))
    net.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(0.5),
                                   nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(0.5),
                                   nn.Linear(4096, 1000))
    return net


def forward(net, x):
    return net.classifier(torch.flatten(net.avgpool(net.features(x)), 1))


@pytest.fixture
def zero_init(monkeypatch):
    """The zoo model's own initial weights are overwritten by torch's: draw none (zeros cost no time)."""

    def zeros(weight_shape, bias_shape, rng=None, dtype=np.float32):
        return np.zeros(weight_shape, dtype), None if bias_shape is None else np.zeros(bias_shape, dtype)

    for module in (cnnkit.layers.conv, cnnkit.layers.linear):
        monkeypatch.setattr(module, "default_parameters", zeros)


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "vgg16"])
def test_torchvision_weights_give_torchvision_logits_at_every_size(name, zero_init):
    torch.manual_seed(0)
    net = (torchvision_alexnet() if name == "alexnet" else torchvision_vgg(VGG[name])).eval()
    fixture = json.loads((TORCHVISION_FIXTURES / f"{name}.json").read_text())
    state = net.state_dict()
    assert [(k, list(v.shape)) for k, v in state.items()] == [(e["key"], e["shape"]) for e in
                                                              fixture["state_dict"]]  # torchvision's layout
    model = models.get(name).eval()
    load_torch_weights(model, state)
    rng = np.random.default_rng(0)
    for size in SIZES:
        x = rng.standard_normal((1, 3, size, size)).astype(np.float32)
        with torch.no_grad():
            expected = forward(net, torch.from_numpy(x)).numpy()
        assert_parity(model.forward(x), expected, tol=1e-4, what=f"{name} at {size} px")
