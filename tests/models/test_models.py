"""The model zoo: torchvision's names, shapes and counts, the issue's MACs, honest fits, forward shapes."""

import json

import numpy as np
import pytest

import cnnkit.layers.conv
import cnnkit.layers.linear
from cnnkit import models
from cnnkit.analysis import check, receptive_field, summary
from cnnkit.layers import Layer
from conftest import TORCHVISION_FIXTURES

TORCHVISION = sorted(p.stem for p in TORCHVISION_FIXTURES.glob("*.json"))
ZOO = [
    "alexnet",
    "alexnet_v1",
    "cifar_net",
    "googlenet",
    "lenet5",
    "mobilenet_v1",
    "mobilenet_v2",
    "preact_resnet18",
    "preact_resnet34",
    "preact_resnet50",
    "resnet101",
    "resnet152",
    "resnet18",
    "resnet34",
    "resnet50",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "zfnet",
]

# The figures (multiply-adds of conv and FC layers for one 224x224 image).
MACS_224 = {"resnet50": 4.09e9, "vgg16": 15.47e9, "mobilenet_v2": 0.30e9, "alexnet": 0.71e9}
# Models torchvision does not have: counts from the papers / our construction, pinned.
OWN_COUNTS = {"lenet5": 61_706, "cifar_net": 1_341_226, "mobilenet_v1": 4_231_976, "zfnet": 62_357_608,
              "alexnet_v1": 60_965_224, "preact_resnet18": 11_687_720, "preact_resnet34": 21_795_880,
              "preact_resnet50": 25_549_352}


@pytest.fixture
def fast_init(monkeypatch):
    """Zero initial weights: these tests read names, shapes and counts, and zeros cost no time to draw
    (VGG-19 would otherwise draw 144 M random numbers)."""

    def zeros(weight_shape, bias_shape, rng=None, dtype=np.float32):
        return np.zeros(weight_shape, dtype), None if bias_shape is None else np.zeros(bias_shape, dtype)

    for module in (cnnkit.layers.conv, cnnkit.layers.linear):
        monkeypatch.setattr(module, "default_parameters", zeros)


def test_every_model_is_registered_and_get_returns_a_new_one():
    assert models.names() == ZOO
    assert set(TORCHVISION) <= set(ZOO)
    a, b = models.get("lenet5"), models.get("lenet5")
    assert a is not b and isinstance(a, Layer)


def test_unknown_names_and_duplicate_registrations_are_errors():
    with pytest.raises(KeyError, match="No model named 'resnet19'. Did you mean 'resnet18'"):
        models.get("resnet19")
    with pytest.raises(ValueError, match="a model named 'lenet5' is already registered"):
        models.register(lambda num_classes=10, input_shape=(1, 28, 28): None, name="lenet5")


@pytest.mark.parametrize("name", TORCHVISION)
def test_matches_torchvision_state_dict_counts_and_macs(name, fast_init):
    fixture = json.loads((TORCHVISION_FIXTURES / f"{name}.json").read_text())
    model = models.get(name)
    state = model.state_dict()
    assert list(state) == [entry["key"] for entry in fixture["state_dict"]]
    for entry in fixture["state_dict"]:
        assert tuple(state[entry["key"]].shape) == tuple(entry["shape"]), entry["key"]
        assert str(np.asarray(state[entry["key"]]).dtype) == entry["dtype"], entry["key"]
    s = summary(model, (3, 224, 224))
    assert s.total_params == model.num_parameters() == fixture["num_parameters"]
    assert s.total_macs == fixture["conv_linear_macs_224"]
    if name in MACS_224:
        assert s.total_macs == pytest.approx(MACS_224[name], rel=0.02)


@pytest.mark.parametrize("name", sorted(OWN_COUNTS))
def test_parameter_counts_of_models_torchvision_lacks(name, fast_init):
    assert models.get(name).num_parameters() == OWN_COUNTS[name]


def test_mobilenet_v1_multiply_adds_match_the_paper(fast_init):
    assert summary(models.get("mobilenet_v1"), (3, 224, 224)).total_macs == pytest.approx(569e6, rel=0.01)


# Models with torchvision's adaptive head take any input size, so their max pools round down like PyTorch's
# even where they tile at 224.
ANY_SIZE = {"alexnet", *(name for name in ZOO if name.startswith("vgg"))}


@pytest.mark.parametrize("name", ZOO)
def test_fit_is_declared_on_exactly_the_layers_that_do_not_tile(name, fast_init):
    """At the default input every layer tiles exactly, except those that say fit="crop"/"pad"."""
    model = models.get(name)
    report = check(model, models.default_input_shape(name))
    assert report.ok, str(report)
    declared = {n for n, layer in model.named_layers() if getattr(layer, "fit", "error") != "error"}
    if name in ANY_SIZE:
        pools = {n for n, layer in model.named_layers() if type(layer).__name__ == "MaxPool2d"}
        assert set(report.names(handled=True)) <= declared and pools <= declared
    else:
        assert set(report.names(handled=True)) == declared


def test_which_layers_round_in_resnet_and_googlenet(fast_init):
    resnet = check(models.get("resnet18"), (3, 224, 224)).names(handled=True)
    assert resnet == [
        "conv1",
        "maxpool",
        "layer2.0.conv1",
        "layer2.0.downsample.0",
        "layer3.0.conv1",
        "layer3.0.downsample.0",
        "layer4.0.conv1",
        "layer4.0.downsample.0",
    ]
    googlenet = check(models.get("googlenet"), (3, 224, 224)).names(handled=True)
    assert googlenet == ["conv1.conv", "maxpool1", "maxpool2", "maxpool3"]


# The smallest inputs each architecture takes (VGG halves five times, GoogLeNet's pools need 32), so that
# a real forward pass stays quick.
SMALL = {
    "lenet5": (1, 28, 28),
    "alexnet": (3, 64, 64),
    "alexnet_v1": (3, 67, 67),  # (67 - 11)/4 + 1 = 15 -> 7 -> 3 -> 1: every window still tiles
    "zfnet": (3, 64, 64),
    **{name: (3, 16, 16) for name in ZOO if name.startswith(("resnet", "mobilenet"))},
}


@pytest.mark.parametrize("name", ZOO)
def test_summary_shapes_equal_the_shapes_of_a_real_forward_pass(name):
    shape = SMALL.get(name, (3, 32, 32))
    head = {"avgpool_size": (3, 2)} if name in ANY_SIZE else {}  # torchvision's 7 x 7 would add 100 M weights
    model = models.get(name, num_classes=7, input_shape=shape, rng=np.random.default_rng(0), **head).eval()
    seen = {}
    for layer_name, layer in model.named_layers():
        if isinstance(layer, cnnkit.layers.conv._ConvNd):
            # Any kernel gives the same shapes; im2col is the quickest on these tiny maps (at 1x1 to 4x4,
            # Winograd's per-call filter transform dominates and makes the big models take seconds).
            layer.algorithm = "im2col"
        if not layer.named_children():
            layer.forward = _recording(layer.forward, seen, layer_name)
    x = np.random.default_rng(1).standard_normal((1, *shape)).astype(np.float32)
    y = model.forward(x)
    rows = summary(model, shape).rows
    assert y.shape == (1, 7) and rows[-1].output_shape == (7,)
    assert {r.name: r.output_shape for r in rows[1:]} == seen


def _recording(forward, seen, name):
    def record(x):
        y = forward(x)
        seen[name] = y.shape[1:]
        return y

    return record


def test_num_classes_and_input_shape_are_arguments():
    net = models.get("resnet18", num_classes=10, input_shape=(1, 64, 64))
    assert net.get("conv1").weight.shape == (64, 1, 7, 7)
    assert net.output_shape((2, 1, 64, 64)) == (2, 10)
    vgg = models.get("vgg11", num_classes=5, input_shape=(3, 32, 32), avgpool_size=None)
    assert vgg.get("classifier.0").weight.shape == (4096, 512)  # without the adaptive head: the input's size
    assert [n for n, _ in vgg.named_children()] == ["features", "flatten", "classifier"]
    assert models.default_input_shape("lenet5") == (1, 28, 28)
    assert models.default_input_shape("resnet50") == (3, 224, 224)


def test_known_receptive_fields_of_classic_networks(fast_init):
    # Published values (Araujo et al., "Computing receptive fields of convolutional neural networks", 2019).
    expected = {
        "alexnet": ("features.12", 195),
        "vgg16": ("features.30", 212),
        "resnet18": ("layer4", 435),
        "mobilenet_v2": ("features.18", 491),
    }
    for name, (prefix, size) in expected.items():
        fields = receptive_field(models.get(name), (3, 224, 224))
        last = [k for k in fields if k.startswith(prefix)][-1]
        assert fields[last].size == (size, size), name
        assert fields[last].jump == (32, 32), name


def test_vgg16_numbers_from_the_notes(fast_init):
    """138,357,544 parameters; 15,237,608 activation elements per image (the input and every conv, pool and
    FC output; ReLU and dropout work in place); most memory in the early convs, most parameters in the FCs.
    torchvision's adaptive head stores one more 7x7x512 volume, which the notes' count predates."""
    s = summary(models.get("vgg16"), (3, 224, 224))
    assert s.total_params == 138_357_544
    assert s.activation_elements == 15_237_608 + 7 * 7 * 512
    convs = [r for r in s.rows if r.type == "Conv2d"]
    assert [r.activations for r in convs[:2]] == [224 * 224 * 64] * 2  # 3.2 M each, the largest volumes
    assert max(s.rows, key=lambda r: r.activations).name == "features.0"
    early = sum(
        r.activations
        for r in s.rows
        if r.name
        in ("input", "features.0", "features.2", "features.4", "features.5", "features.7", "features.9")
    )
    assert early / s.activation_elements > 0.7  # the first two blocks hold 72% of the memory
    fc = sum(r.params for r in s.rows if r.type == "Linear")
    assert fc == 123_642_856 and fc / s.total_params > 0.89  # 102.8 M in the first FC alone
    assert max(s.rows, key=lambda r: r.params).name == "classifier.0"
    # the notes: ~93 MB of activations per image forward (x2 with backward), ~528 MB of parameters
    assert s.memory_bytes(1, training=False) == (15_237_608 + 7 * 7 * 512 + 138_357_544) * 4


def test_alexnet_v1_is_the_notes_network(fast_init):
    """227 -> 55 -> 27 -> 13 -> 6, two-tower groups, and the parameter count of Caffe's bvlc_alexnet."""
    net = models.get("alexnet_v1")
    rows = {r.name: r for r in summary(net, (3, 227, 227)).rows}
    assert [rows[n].output_shape for n in ("conv1", "pool1", "conv2", "pool2", "conv5", "pool5", "fc8")] == [
        (96, 55, 55), (96, 27, 27), (256, 27, 27), (256, 13, 13), (256, 13, 13), (256, 6, 6), (1000,)]
    assert rows["conv1"].params == 96 * (11 * 11 * 3 + 1) == 34_944  # the notes' count
    assert [net.get(n).groups for n in ("conv1", "conv2", "conv3", "conv4", "conv5")] == [1, 2, 1, 2, 2]
    assert net.get("conv2").weight.shape == (256, 48, 5, 5)
    assert net.num_parameters() == 60_965_224


def test_preact_blocks_keep_the_identity_path(fast_init):
    """He et al. 2016: BN -> ReLU before each conv, the sum left as it is, one BN -> ReLU before the head."""
    net = models.get("preact_resnet18")
    identity = net.get("layer1.1")
    assert identity.shortcut is None and identity.activation is None
    names = [n for n, _ in identity.body.named_children()]
    assert names == ["bn1", "relu1", "conv1", "bn2", "relu2", "conv2"]
    projection = net.get("layer2.0")  # BN -> ReLU shared by both paths, then a 1x1/2 conv shortcut
    assert [n for n, _ in projection.named_children()] == ["bn1", "relu1", "residual"]
    assert projection.get("residual").shortcut.kernel_size == (1, 1)
    assert [n for n, _ in net.named_children()][-6:] == ["layer4", "bn", "relu_final", "avgpool", "flatten",
                                                        "fc"]
    bottleneck = models.get("preact_resnet50").get("layer1.1").body
    assert [n for n, _ in bottleneck.named_children()] == ["bn1", "relu1", "conv1", "bn2", "relu2", "conv2",
                                                           "bn3", "relu3", "conv3"]
