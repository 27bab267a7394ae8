"""check(): every layer that does not tile, with its fix, instead of stopping at the first."""

import pytest

from cnnkit.analysis import check
from cnnkit.layers import Conv2d, LocallyConnected2d, MaxPool2d, ReLU, Residual, Sequential


def test_reports_every_layer_that_does_not_tile_not_just_the_first():
    net = Sequential(
        Conv2d(3, 8, 3, stride=2), ReLU(), Conv2d(8, 8, 3, stride=2), MaxPool2d(2), Conv2d(8, 8, 3, padding=1)
    )
    report = check(net, (3, 34, 34))
    # 34 -> 16.5 (goes on as 16) -> 7.5 (goes on as 7) -> pool 3.5
    assert not report.ok and not report
    assert report.names() == ["0", "2", "3"]
    first = str(report.problems[0])
    assert "(34 - 3 + 0)/2 + 1 = 16.5 is not an integer" in first
    assert "use padding=((0, 1), (0, 1)) (one (before, after) pair per axis) or stride=1, or fit='crop'" \
        in first
    assert "The same holds for W." in first
    assert "(7 - 2 + 0)/2 + 1 = 3.5" in str(report.problems[2])
    text = str(report)
    assert text.startswith("check: 3 layer(s) do not fit.") and text.count("\n") == 3


def test_layers_that_declare_a_fit_policy_are_listed_as_handled():
    net = Sequential(
        Conv2d(3, 8, 3, stride=2, fit="crop"), MaxPool2d(3, stride=2, fit="pad"), Conv2d(8, 8, 3, stride=2)
    )
    report = check(net, (3, 34, 34))
    assert report.names(handled=True) == ["0", "1"]  # 16.5 -> 16 (crop), 7.5 -> 8 (pad), then 3.5
    assert report.names() == ["2"]
    assert "(handled by fit='crop')" in str(report)


def test_only_one_axis_may_fail():
    report = check(Conv2d(1, 1, 3, stride=2), (1, 33, 34))
    assert len(report.problems) == 1
    assert "(W - F + 2P)/S + 1 = (34 - 3 + 0)/2 + 1 = 16.5" in report.problems[0].message
    assert "same holds" not in report.problems[0].message


def test_a_network_that_tiles_is_ok():
    report = check(Sequential(Conv2d(3, 8, 3, padding=1), MaxPool2d(2)), (3, 32, 32))
    assert report.ok and report and report.problems == [] and report.handled == []
    assert str(report) == "check: every layer tiles its input exactly."


def test_errors_without_a_fallback_stop_the_walk_and_are_reported():
    too_small = Sequential(Conv2d(3, 8, 3, stride=2), Conv2d(8, 8, 9), Conv2d(8, 8, 3, stride=2))
    report = check(too_small, (3, 17, 17))
    assert [p.name for p in report.problems] == ["1"] and report.problems[0].fatal
    assert "the kernel (F=9) is larger than the padded input" in report.problems[0].message
    wrong_channels = check(Sequential(Conv2d(3, 8, 3, stride=2), Conv2d(4, 8, 3)), (3, 34, 34))
    assert wrong_channels.names() == ["0", "1"] and wrong_channels.problems[1].fatal
    assert "expected input (N, C, H, W) with C=4" in wrong_channels.problems[1].message


def test_a_residual_block_whose_paths_disagree_is_reported():
    report = check(Residual(Conv2d(4, 8, 1)), (4, 5, 5))
    assert report.problems[0].fatal and "body gives (8, 5, 5) but shortcut gives (4, 5, 5)" in str(report)


def test_locally_connected_layers_are_checked_too():
    layer = LocallyConnected2d(1, 2, 3, stride=2, input_size=(9, 9))
    assert check(layer, (1, 9, 9)).ok
    layer = LocallyConnected2d(1, 2, 3, stride=2, input_size=(10, 10), fit="crop")
    assert check(layer, (1, 10, 10)).names(handled=True) == [""]


@pytest.mark.parametrize("fit", ["crop", "pad"])
def test_check_agrees_with_the_layers_output_shape(fit):
    conv = Conv2d(1, 1, 4, stride=3, padding=1, fit=fit)
    report = check(conv, (1, 21, 21))  # (21 - 4 + 2)/3 + 1 = 7.33
    assert report.ok and len(report.handled) == 1
