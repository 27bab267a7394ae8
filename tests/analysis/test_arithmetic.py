"""The notes' worked numbers: neurons, parameters with and without sharing, bottlenecks, depthwise convs."""

import math

import numpy as np
import pytest

from cnnkit.analysis import macs, params_without_sharing, summary
from cnnkit.layers import Conv2d, ConvTranspose2d, Linear, LocallyConnected2d, MaxPool2d, ReLU, Sequential


def test_alexnet_first_layer_neurons_and_parameters():
    conv = Conv2d(3, 96, 11, stride=4, rng=np.random.default_rng(0))
    out = conv.output_shape((1, 3, 227, 227))
    assert out == (1, 96, 55, 55)
    assert math.prod(out[1:]) == 290_400  # 55*55*96 neurons
    assert conv.num_parameters() == 34_944  # 96 * (11*11*3 + 1) with parameter sharing
    assert params_without_sharing(conv, (1, 3, 227, 227), out) == 105_705_600  # 290,400 * 364
    assert macs(conv, (1, 3, 227, 227), out) == 290_400 * 363


def test_without_sharing_is_exactly_a_locally_connected_layer():
    # The AlexNet layer as a LocallyConnected2d would hold 105.7 M float32s (846 MB with gradients), so the
    # equivalence is proven on the same geometry at a smaller input; the AlexNet count above is the formula.
    rng = np.random.default_rng(0)
    conv = Conv2d(3, 96, 11, stride=4, rng=rng)
    local = LocallyConnected2d(3, 96, 11, stride=4, input_size=(35, 35), rng=rng)
    out = conv.output_shape((1, 3, 35, 35))
    assert local.output_shape((1, 3, 35, 35)) == out == (1, 96, 7, 7)
    assert local.num_parameters() == params_without_sharing(conv, (1, 3, 35, 35), out) == 7 * 7 * 96 * 364
    assert macs(local, (1, 3, 35, 35), out) == macs(conv, (1, 3, 35, 35), out)


def test_bottleneck_versus_one_3x3_conv():
    """256 -> 64 (1x1) -> 64 (3x3) -> 256 (1x1) is about 70,000 weights; one 3x3 256 -> 256 is 589,824."""
    bottleneck = Sequential(
        Conv2d(256, 64, 1, bias=False),
        Conv2d(64, 64, 3, padding=1, bias=False),
        Conv2d(64, 256, 1, bias=False),
    )
    assert bottleneck.num_parameters() == 256 * 64 + 9 * 64 * 64 + 64 * 256 == 69_632
    assert Conv2d(256, 256, 3, padding=1, bias=False).num_parameters() == 589_824


def test_depthwise_separable_ops_per_location():
    """Depthwise 3x3 (groups=256) + pointwise 1x1 from 256 to 256: 67,840 MACs per position, 8.7x fewer."""
    separable = Sequential(
        Conv2d(256, 256, 3, padding=1, groups=256, bias=False), Conv2d(256, 256, 1, bias=False)
    )
    standard = Conv2d(256, 256, 3, padding=1, bias=False)
    positions = 8 * 8
    per_location = summary(separable, (256, 8, 8)).total_macs / positions
    assert per_location == 3 * 3 * 256 + 256 * 256 == 67_840
    assert summary(standard, (256, 8, 8)).total_macs / positions == 589_824
    assert 589_824 / 67_840 == pytest.approx(8.69, abs=0.01)
    assert (
        separable.num_parameters() == 67_840
    )  # the same count as weights: one multiply per weight per position


def test_macs_of_each_layer_kind_against_a_naive_count():
    rng = np.random.default_rng(0)
    x = (2, 6, 9, 9)
    grouped = Conv2d(6, 4, 3, stride=2, padding=1, dilation=2, groups=2, fit="crop", rng=rng)
    out = grouped.output_shape(x)
    # every output value sums over C/groups * F*F inputs
    assert macs(grouped, x, out) == math.prod(out) * 3 * 9
    transposed = ConvTranspose2d(6, 4, 3, stride=2, rng=rng)
    # every input value is multiplied into K * F*F outputs
    assert macs(transposed, x, transposed.output_shape(x)) == math.prod(x) * 4 * 9
    fc = Linear(10, 7, rng=rng)
    assert macs(fc, (3, 10), (3, 7)) == 3 * 70
    for free in (ReLU(), MaxPool2d(3, stride=3)):
        assert macs(free, x, free.output_shape(x)) == 0


def test_params_without_sharing_of_layers_that_do_not_share():
    fc = Linear(10, 7)
    assert params_without_sharing(fc, (1, 10), (1, 7)) == 77
    assert params_without_sharing(MaxPool2d(2), (1, 3, 4, 4), (1, 3, 2, 2)) == 0
