"""summary(): rows, totals, the memory rule, max_batch_size and the exports."""

import csv
import io
import json

import numpy as np
import pytest

import cnnkit
from cnnkit.analysis import summary
from cnnkit.analysis.summary import parse_bytes
from cnnkit.errors import ShapeError
from cnnkit.layers import (
    BatchNorm2d,
    Concat,
    Conv1d,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    Linear,
    MaxPool1d,
    MaxPool2d,
    ReLU,
    Residual,
    Sequential,
)


@pytest.fixture
def net():
    rng = np.random.default_rng(0)
    return Sequential(
        conv=Conv2d(3, 8, 3, padding=1, rng=rng),
        bn=BatchNorm2d(8),
        relu=ReLU(),
        pool=MaxPool2d(2),
        flatten=Flatten(),
        drop=Dropout(0.5),
        fc=Linear(8 * 4 * 4, 10, rng=rng),
    )


def test_rows_have_every_field_computed_by_hand(net):
    s = cnnkit.summary(net, (3, 8, 8))
    assert [r.name for r in s.rows] == ["input", "conv", "bn", "relu", "pool", "flatten", "drop", "fc"]
    assert [r.type for r in s.rows][:3] == ["Input", "Conv2d", "BatchNorm2d"]
    assert [r.output_shape for r in s.rows] == [
        (3, 8, 8),
        (8, 8, 8),
        (8, 8, 8),
        (8, 8, 8),
        (8, 4, 4),
        (128,),
        (128,),
        (10,),
    ]
    assert [r.params for r in s.rows] == [0, 8 * 27 + 8, 16, 0, 0, 0, 0, 128 * 10 + 10]
    assert [r.macs for r in s.rows] == [0, 8 * 8 * 8 * 27, 0, 0, 0, 0, 0, 1280]
    assert [r.flops for r in s.rows] == [2 * r.macs for r in s.rows]
    # in-place and view layers (ReLU, Flatten, Dropout) store no new volume
    assert [r.activations for r in s.rows] == [192, 512, 512, 0, 128, 0, 0, 10]
    # the FC layers see all 4x4 pooled units: 4 + 3*2 = 10 pixels, the padded 8x8 input
    assert [r.receptive_field for r in s.rows] == [1, 3, 3, 3, 4, 10, 10, 10]
    assert [r.jump for r in s.rows] == [1, 1, 1, 1, 2, 8, 8, 8]


def test_totals(net):
    s = summary(net, (3, 8, 8))
    assert s.total_params == net.num_parameters() == sum(r.params for r in s.rows) == 1530
    assert s.total_macs == 13_824 + 1280 and s.total_flops == 2 * s.total_macs
    assert s.activation_elements == 192 + 512 + 512 + 128 + 10


def test_trainable_parameters_exclude_frozen_ones(net):
    net.get("conv").weight.trainable = False
    s = summary(net, (3, 8, 8))
    assert s.total_params == 1530 and s.trainable_params == 1530 - 216
    assert s.rows[1].params == 224 and s.rows[1].trainable_params == 8


def test_memory_follows_the_notes_rule(net):
    s = summary(net, (3, 8, 8))
    acts, params, trainable = s.activation_elements, s.total_params, s.trainable_params
    # inference: the volumes once, plus the parameters, 4 bytes each
    assert s.memory_bytes(1, training=False) == (acts + params) * 4
    # training: volumes twice (their gradients), parameters and their gradients
    assert s.memory_bytes(1) == (2 * acts + params + trainable) * 4
    assert s.memory_bytes(32) == (2 * acts * 32 + 2 * params) * 4
    # optimizer state: one copy for momentum, two for Adam
    assert s.memory_bytes(1, optimizer="momentum") == s.memory_bytes(1) + trainable * 4
    assert s.memory_bytes(1, optimizer="adam") == s.memory_bytes(1) + 2 * trainable * 4
    assert s.memory_bytes(1, bytes_per_element=8) == 2 * s.memory_bytes(1)
    with pytest.raises(ValueError, match="Received optimizer='lbfgs'; expected one of"):
        s.memory_bytes(1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="Received batch_size=-1"):
        s.memory_bytes(-1)


def test_max_batch_size_is_the_largest_batch_that_fits(net):
    s = summary(net, (3, 8, 8))
    for budget in (10**5, 10**6, "4GB", "1.5 MiB"):
        b = s.max_batch_size(budget, optimizer="adam")
        assert (
            s.memory_bytes(b, optimizer="adam")
            <= parse_bytes(budget)
            < s.memory_bytes(b + 1, optimizer="adam")
        )
    assert s.max_batch_size(100) == 0  # not even the parameters fit
    assert s.max_batch_size(10**6, training=False) > s.max_batch_size(10**6)


def test_parse_bytes_reads_kb_mb_gb_as_powers_of_1024_like_the_notes():
    assert parse_bytes("4GB") == parse_bytes("4GiB") == 4 * 2**30 and parse_bytes("512mb") == 512 * 2**20
    assert parse_bytes("100B") == 100 and parse_bytes(7) == 7
    with pytest.raises(ValueError, match="Received memory='4 parsecs': expected a size, such as 512MB"):
        parse_bytes("4 parsecs")
    with pytest.raises(ValueError, match=r"Received memory='4': a number needs a unit, .* \(units: B, KB, "
                                         r"MB, GB, TB, KiB, MiB, GiB, TiB; KB, MB, GB are powers of 1024\)"):
        parse_bytes("4")


def test_the_notes_lenet5_batch_in_4gb():
    from cnnkit.models import get

    s = summary(get("lenet5"), (1, 28, 28))
    assert s.max_batch_size("4GB") == 60_465  # the notes' convention, 4 x 1024^3 bytes
    assert str(s).splitlines()[-2] == "Memory, batch 1, float32: 275.72 KiB inference, 551.44 KiB training"


def test_table_markdown_csv_and_dict(net):
    s = summary(net, (3, 8, 8))
    table = str(s)
    assert "Layer" in table and "Output shape" in table and "8x4x4" in table
    assert "Total params: 1,530" in table and "FLOPs = 2 x MACs" in table
    widths = {len(line) for line in table.splitlines()[1:10] if line.strip()}
    assert len(widths) == 1  # aligned columns
    markdown = s.to_markdown()
    assert (
        markdown.startswith("| Layer | Type | Output shape |") and "| fc | Linear | 10 | 1,290 |" in markdown
    )
    rows = list(csv.DictReader(io.StringIO(s.to_csv())))
    assert [r["name"] for r in rows] == [r.name for r in s.rows]
    assert rows[1]["macs"] == "13824" and rows[1]["flops"] == "27648" and rows[4]["output_shape"] == "8x4x4"
    data = json.loads(json.dumps(s.to_dict()))
    assert data["total_params"] == 1530 and data["rows"][-1]["output_shape"] == [10]
    assert data["rows"][1]["flops"] == 27648
    assert repr(s).startswith("Summary(Sequential, input_shape=(3, 8, 8), total_params=1,530")


def test_branches_are_opened_and_named_by_their_path():
    block = Residual(
        Sequential(conv1=Conv2d(4, 4, 3, padding=1), relu1=ReLU(), conv2=Conv2d(4, 4, 3, padding=1)),
        activation=ReLU(),
    )
    inception = Concat(a=Conv2d(4, 2, 1), b=Sequential(Conv2d(4, 2, 1), Conv2d(2, 3, 3, padding=1)))
    net = Sequential(block=block, mix=inception, pool=GlobalAvgPool2d())
    s = summary(net, (4, 6, 6))
    assert [r.name for r in s.rows] == [
        "input",
        "block.conv1",
        "block.relu1",
        "block.conv2",
        "block.activation",
        "mix.a",
        "mix.b.0",
        "mix.b.1",
        "pool",
    ]
    assert s.rows[-1].output_shape == (5, 1, 1)
    assert s.total_params == net.num_parameters()


def test_a_layer_that_does_not_fit_raises_with_its_dotted_name():
    net = Sequential(stem=Sequential(Conv2d(3, 8, 3, stride=2)))
    with pytest.raises(
        ShapeError, match=r"^stem.0: Conv2d\(3->8.*\(32 - 3 \+ 0\)/2 \+ 1 = 15.5 is not an integer"
    ):
        summary(net, (3, 32, 32))
    bad = Residual(Conv2d(4, 8, 1))
    with pytest.raises(ShapeError, match=r"Residual: body gives \(8, 5, 5\) but shortcut gives \(4, 5, 5\)"):
        summary(bad, (4, 5, 5))


def test_a_single_layer_can_be_summarized():
    s = summary(Conv2d(3, 96, 11, stride=4), (3, 227, 227))
    assert s.rows[1].output_shape == (96, 55, 55) and s.rows[1].activations == 290_400
    assert s.rows[1].params == 34_944 and s.rows[1].receptive_field == 11 and s.rows[1].jump == 4


def test_resnet152_is_summarized_without_running_data():
    from cnnkit import models

    model = models.get("resnet152", num_classes=10)
    model.forward = None  # summary must never call it
    s = summary(model, (3, 224, 224))
    # input, 4 stem layers, 50 bottlenecks of 8 body layers + activation, 4 shortcuts of 2, 3 in the head
    assert s.rows[-1].output_shape == (10,) and len(s.rows) == 1 + 4 + 50 * 9 + 4 * 2 + 3


def test_vectors_and_1d_signals():
    mlp = summary(Sequential(Linear(784, 100), ReLU(), Linear(100, 10)), (784,))
    assert [r.output_shape for r in mlp.rows] == [(784,), (100,), (100,), (10,)]
    assert mlp.total_macs == 78_400 + 1000 and mlp.rows[1].receptive_field == "-"  # no spatial axes
    signal = Sequential(Conv1d(2, 4, 5, stride=2), MaxPool1d(2), Flatten(), Linear(4 * 7, 3))
    s = summary(signal, (2, 31))
    assert [r.output_shape for r in s.rows] == [(2, 31), (4, 14), (4, 7), (28,), (3,)]
    assert [r.receptive_field for r in s.rows] == [1, 5, 7, 31, 31]
    assert s.rows[1].macs == 4 * 14 * 2 * 5
