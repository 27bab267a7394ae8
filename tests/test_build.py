"""build(): every pattern of the notes builds and runs; VGG-style hyperparameters; errors point at tokens."""

import numpy as np
import pytest

from cnnkit import build, models
from cnnkit.build import SpecError, parse
from cnnkit.errors import ShapeError
from cnnkit.layers import from_config

# The layer patterns of the notes ("ConvNet architectures"), and its CIFAR-10 example in its own dashes.
NOTES_PATTERNS = [
    ("INPUT -> FC", {}),
    ("INPUT -> CONV -> RELU -> FC", {}),
    ("INPUT -> [CONV -> RELU -> POOL]*2 -> FC -> RELU -> FC", {}),
    ("INPUT -> [CONV -> RELU -> CONV -> RELU -> POOL]*3 -> [FC -> RELU]*2 -> FC", {}),
    ("INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC", {"N": 2, "M": 3, "K": 1}),
    ("INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC", {"N": 0, "M": 0, "K": 0}),
    ("INPUT -> [[CONV -> RELU]*2 -> POOL]*3 -> [FC -> RELU] -> FC", {}),
    ("[INPUT - CONV - RELU - POOL - FC]", {}),
]


@pytest.mark.parametrize(("spec", "counts"), NOTES_PATTERNS)
def test_every_pattern_of_the_notes_builds_runs_and_round_trips(spec, counts):
    net = build(spec, (3, 32, 32), 10, rng=np.random.default_rng(0), **counts)
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    y = net.forward(x)
    assert y.shape == (2, 10) == net.output_shape(x.shape)
    assert net.backward(np.ones_like(y)).shape == x.shape
    again = from_config(net.config())  # the built network is an ordinary, serializable Sequential
    assert again.config() == net.config()
    assert [n for n, _ in again.named_children()] == [n for n, _ in net.named_children()]


def test_defaults_follow_the_notes_sizing_advice():
    net = build("INPUT -> [CONV -> RELU -> CONV -> RELU -> POOL]*3 -> [FC -> RELU]*2 -> FC", (3, 32, 32), 10)
    convs = [layer for name, layer in net.named_children() if name.startswith("conv")]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64, 128, 128]  # doubling after each pool
    assert all(
        c.kernel_size == (3, 3) and c.stride == (1, 1) and c.padding == ((1, 1), (1, 1)) for c in convs
    )
    pool = net.get("pool1")
    assert pool.kernel_size == (2, 2) and pool.stride == (2, 2)
    assert [net.get(f"fc{i}").out_features for i in (1, 2, 3)] == [512, 512, 10]
    assert net.get("fc1").in_features == 128 * 4 * 4
    assert [n for n, _ in net.named_children()][15:17] == ["flatten", "fc1"]


def test_vgg_style_hyperparameters():
    net = build(
        "INPUT -> CONV3-64 -> BN -> RELU -> CONV5-32/2 -> POOL3/2 -> FC-100 -> BN -> DROPOUT-0.3 -> "
        "TANH -> FC",
        (3, 33, 33),
        7,
    )
    conv1, conv2 = net.get("conv1"), net.get("conv2")
    assert (conv1.out_channels, conv1.kernel_size) == (64, (3, 3))
    assert (conv2.out_channels, conv2.kernel_size, conv2.stride, conv2.padding) == (
        32,
        (5, 5),
        (2, 2),
        ((2, 2), (2, 2)),
    )
    assert net.get("pool1").kernel_size == (3, 3) and net.get("pool1").stride == (2, 2)
    assert type(net.get("bn1")).__name__ == "BatchNorm2d" and type(net.get("bn2")).__name__ == "BatchNorm1d"
    assert net.get("fc1").out_features == 100 and net.get("fc2").out_features == 7
    assert net.get("dropout1").p == 0.3 and type(net.get("tanh1")).__name__ == "Tanh"
    assert net.output_shape((1, 3, 33, 33)) == (1, 7)


def test_explicit_filters_set_the_width_that_later_convs_double():
    net = build("CONV-16 -> POOL -> CONV -> CONV -> POOL -> CONV -> FC", (1, 16, 16), 3, width=99)
    assert [net.get(f"conv{i}").out_channels for i in (1, 2, 3, 4)] == [16, 32, 32, 64]


def test_optional_layers_and_other_pools_and_activations():
    spec = "INPUT -> [CONV -> RELU6 -> POOL?]*2 -> AVGPOOL -> LEAKYRELU -> FC"
    with_pool = build(spec, (3, 16, 16), 4)
    without = build(spec, (3, 16, 16), 4, optional=False)
    assert [n for n, _ in with_pool.named_children()].count("pool1") == 1
    assert "pool2" in dict(with_pool.named_children()) and "pool3" not in dict(without.named_children())
    assert type(with_pool.get("relu61")).__name__ == "ReLU6"
    assert type(with_pool.get("avgpool1")).__name__ == "AvgPool2d"
    # with pools: 32 ch -> pool -> 64 ch -> pool -> avgpool: 64 x 2 x 2; without: 32 ch, avgpool: 32 x 8 x 8
    assert without.get("fc1").in_features == 32 * 8 * 8 and with_pool.get("fc1").in_features == 64 * 2 * 2


def test_vectors_need_no_flatten_and_get_batch_norm_1d():
    net = build("FC-20 -> BN -> SIGMOID -> FC", (8,), 2)
    assert [n for n, _ in net.named_children()] == ["fc1", "bn1", "sigmoid1", "fc2"]
    assert net.output_shape((5, 8)) == (5, 2)


def test_fit_crop_rounds_like_pytorch():
    net = build("INPUT -> CONV5-32/2 -> FC", (3, 32, 32), 10, fit="crop")
    assert net.get("conv1").output_shape((1, 3, 32, 32)) == (1, 32, 16, 16)


def test_cifar_net_is_the_notes_pattern():
    net = models.get("cifar_net")
    assert (
        net.config()
        == build("INPUT -> [[CONV -> RELU]*2 -> POOL]*3 -> [FC -> RELU] -> FC", (3, 32, 32), 10).config()
    )
    assert net.num_parameters() == 1_341_226


def test_parse_expands_repeats():
    assert [
        t.text
        for t in parse(
            "[A -> [B]*2]*2 -> C",
        )
    ] == ["A", "B", "B", "A", "B", "B", "C"]
    assert [t.pos for t in parse("CONV -> RELU")] == [0, 8]


BAD_SPECS = [
    ("INPUT -> CONVV -> RELU", SpecError, "unknown layer 'CONVV'; expected one of INPUT, CONV", 9, 5),
    (
        "INPUT -> [CONV -> RELU",
        SpecError,
        "expected ']' to close the '\\[' at column 10, found the end",
        22,
        1,
    ),
    ("INPUT -> [CONV]*Q", SpecError, "unknown repeat count 'Q'; pass it as a keyword", 16, 1),
    ("INPUT -> CONV*", SpecError, "expected a repeat count", 14, 1),
    ("CONV -> INPUT", SpecError, "INPUT can only be the first layer", 8, 5),
    ("INPUT -> FC-1000", SpecError, "the last FC layer has 1000 outputs but num_classes=10", 9, 7),
    ("INPUT -> CONV-0", SpecError, "the number of filters must be a whole number >= 1", 9, 6),
    ("INPUT -> CONV0", SpecError, "kernel sizes and strides must be >= 1", 9, 5),
    ("INPUT -> FC-2.5 -> FC", SpecError, "the number of outputs must be a whole number", 9, 6),
    ("INPUT -> RELU3", SpecError, "RELU does not take a kernel size; RELU takes no hyperparameters", 9, 5),
    ("INPUT -> POOL-4", SpecError, "POOL does not take a '-N' part; write POOL, POOL3 or POOL3/2", 9, 6),
    ("INPUT => CONV", SpecError, "cannot read this", 6, 2),
    ("INPUT -> DROPOUT-1.5", SpecError, "DROPOUT-1.5: p must be in \\[0, 1\\)", 9, 11),
    ("INPUT CONV", SpecError, "expected '->' between layers, found 'CONV'", 6, 4),
    ("", SpecError, "expected a layer such as CONV, POOL or FC, found the end of the spec", 0, 1),
    ("INPUT", SpecError, "the spec has no layers", 0, 5),
    ("INPUT -> CONV5-32/2 -> FC", ShapeError, "= 16.5 is not an integer.*build\\(..., fit='crop'\\)", 9, 10),
    (
        "INPUT -> [CONV -> POOL]*6 -> FC",
        ShapeError,
        "the kernel \\(F=2\\) is larger than the padded input",
        18,
        4,
    ),
]


@pytest.mark.parametrize(("spec", "error", "message", "column", "width"), BAD_SPECS)
def test_errors_point_at_the_offending_token(spec, error, message, column, width):
    with pytest.raises(error, match=message) as info:
        build(spec, (3, 32, 32), 10, M=2)
    text = str(info.value)
    assert f"at column {column + 1})" in text
    spec_line, caret_line = text.splitlines()[-2:]
    assert spec_line == f"  {spec}"
    assert caret_line == "  " + " " * column + "^" * width


def test_the_activations_after_alexnet_are_tokens():
    net = build("INPUT -> CONV -> GELU -> CONV -> PRELU -> POOL -> FC -> SILU -> FC -> HARDSWISH -> MISH -> "
                "SELU -> FC", (3, 8, 8), 10)
    kinds = [type(layer).__name__ for layer in net]
    assert kinds == ["Conv2d", "GELU", "Conv2d", "PReLU", "MaxPool2d", "Flatten", "Linear", "SiLU", "Linear",
                     "Hardswish", "Mish", "SELU", "Linear"]
    assert net.output_shape((2, 3, 8, 8)) == (2, 10)
