"""Receptive fields: the notes' 1 + 2L and 2^(L+1) - 1, dilation, pooling, branches, and brute force."""

import numpy as np
import pytest

from cnnkit.analysis import receptive_field, summary
from cnnkit.layers import (
    AvgPool2d,
    Concat,
    Conv2d,
    ConvTranspose2d,
    Flatten,
    GlobalAvgPool2d,
    Linear,
    MaxPool2d,
    ReLU,
    Residual,
    Sequential,
)


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_stacked_3x3_stride_1_convs_see_1_plus_2L(depth):
    net = Sequential(*[Conv2d(1, 1, 3, padding=1) for _ in range(depth)])
    field = receptive_field(net, (1, 32, 32))[str(depth - 1)]
    assert field.size == (1 + 2 * depth,) * 2
    assert field.jump == (1, 1)
    assert field.start == (0, 0)  # padding (F-1)/2 keeps the first unit centred on the first pixel


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_stacked_3x3_stride_2_convs_grow_exponentially(depth):
    net = Sequential(*[Conv2d(1, 1, 3, stride=2, padding=1, fit="crop") for _ in range(depth)])
    field = receptive_field(net, (1, 64, 64))[str(depth - 1)]
    assert field.size == (2 ** (depth + 1) - 1,) * 2
    assert field.jump == (2**depth,) * 2


def test_dilation_and_pooling():
    net = Sequential(
        Conv2d(1, 1, 3, dilation=1),
        Conv2d(1, 1, 3, dilation=2),
        Conv2d(1, 1, 3, dilation=4),
        MaxPool2d(2),
        Conv2d(1, 1, 3),
    )
    fields = receptive_field(net, (1, 40, 40))
    assert [fields[k].size[0] for k in "01234"] == [3, 7, 15, 16, 20]
    assert [fields[k].jump[0] for k in "01234"] == [1, 1, 1, 2, 2]
    assert fields["4"].start == (9.5, 9.5)  # 1 + 2 + 4 (no padding) + 0.5 (pool) + 1 * 2 (conv)


def test_rectangular_kernels_give_per_axis_fields_and_the_summary_prints_both():
    net = Sequential(Conv2d(1, 1, (3, 5), padding=(1, 2)))
    assert receptive_field(net, (1, 8, 8))["0"].size == (3, 5)
    assert summary(net, (1, 8, 8)).rows[1].receptive_field == "3x5"


def test_residual_and_concat_take_the_largest_field_over_their_paths():
    body = Sequential(Conv2d(4, 4, 3, padding=1), ReLU(), Conv2d(4, 4, 3, padding=1))
    block = Residual(body, activation=ReLU())
    assert receptive_field(block, (4, 16, 16))["activation"].size == (5, 5)  # identity path sees 1 pixel
    branches = Concat(a=Conv2d(4, 2, 1), b=Conv2d(4, 2, 5, padding=2), c=MaxPool2d(3, stride=1, padding=1))
    fields = receptive_field(Sequential(branches, Conv2d(8, 1, 3, padding=1)), (4, 16, 16))
    assert fields["0.a"].size == (1, 1) and fields["0.b"].size == (5, 5)
    assert fields["1"].size == (7, 7)  # 5 + 2


def test_global_pooling_and_fully_connected_layers_see_the_whole_input():
    net = Sequential(Conv2d(1, 2, 3, padding=1), GlobalAvgPool2d())
    assert receptive_field(net, (1, 10, 10))["1"].size == (12, 12)  # 3 + 9: padding included
    fc = Sequential(Conv2d(1, 2, 3), Flatten(), Linear(2 * 8 * 8, 3))
    fields = receptive_field(fc, (1, 10, 10))
    assert fields["2"].size == (10, 10)


def _brute_force_field(net, shape, position):
    """Input pixels that reach output `position`: backward of a one-hot through all-positive weights."""
    for p in net.parameters():
        p.data[...] = 1.0
    x = np.ones((1, *shape))
    y = net.forward(x)
    dy = np.zeros_like(y)
    dy[(0, 0, *position)] = 1.0
    dx = net.backward(dy)[0].sum(axis=0)
    rows, cols = np.nonzero(dx)
    return (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1), (rows.mean(), cols.mean())


def test_matches_which_input_pixels_really_reach_a_unit():
    net = Sequential(
        Conv2d(1, 2, 3),
        AvgPool2d(2),
        Conv2d(2, 2, 3, dilation=2),
        Conv2d(2, 1, 5, stride=2),
        AvgPool2d(3, stride=1),
    ).astype(np.float64)
    shape = (1, 48, 48)
    field = receptive_field(net, shape)["4"]
    out = summary(net, shape).rows[-1].output_shape
    i, j = out[1] // 2, out[2] // 2  # an interior unit, so padding does not clip its field
    size, centre = _brute_force_field(net, shape, (i, j))
    assert size == field.size
    assert centre == (field.start[0] + i * field.jump[0], field.start[1] + j * field.jump[1])


@pytest.mark.parametrize(
    ("kernel_size", "stride", "padding", "dilation"), [(4, 2, 1, 1), (3, 2, 0, 1), (5, 3, 2, 1)]
)
def test_transposed_convolutions_match_brute_force(kernel_size, stride, padding, dilation):
    up = ConvTranspose2d(2, 1, kernel_size, stride=stride, padding=padding, dilation=dilation)
    net = Sequential(Conv2d(1, 2, 3, stride=2, padding=1, fit="crop"), up).astype(np.float64)
    field = receptive_field(net, (1, 24, 24))["1"]
    assert field.jump == pytest.approx((2 / stride, 2 / stride))  # units 2/S input pixels apart
    sizes = []
    for i in range(9, 15):  # every alignment of the output with the stride
        size, centre = _brute_force_field(net, (1, 24, 24), (i, i))
        sizes.append(size)
        assert abs(centre[0] - (field.start[0] + i * field.jump[0])) <= 0.5
    assert max(sizes) == field.size  # the widest field over the alignments
