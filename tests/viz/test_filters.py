import numpy as np
import pytest
from viz_models import assert_png

from cnnkit.layers import Conv2d
from cnnkit.viz import filters


def test_rgb_tiles_show_hand_set_weights():
    conv = Conv2d(3, 2, 3, bias=False)
    conv.weight.data[...] = 0.0
    conv.weight.data[0, 0, 1, 1] = 2.0  # filter 0: a red dot in the centre
    conv.weight.data[1, 2] = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]  # filter 1: a blue ramp
    tiles = filters(conv)
    assert tiles.shape == (2, 3, 3, 3)  # (K, F, F, RGB)
    red_dot = np.zeros((3, 3, 3))
    red_dot[1, 1, 0] = 1.0
    np.testing.assert_allclose(tiles[0], red_dot)
    np.testing.assert_allclose(tiles[1, :, :, 2], np.arange(9).reshape(3, 3) / 8)
    np.testing.assert_allclose(tiles[1, :, :, :2], 0.0)


def test_channel_tiles_are_normalised_each_on_its_own():
    conv = Conv2d(2, 3, 2)
    w = np.arange(24, dtype=np.float32).reshape(3, 2, 2, 2)
    w[2, 1] = 7.0  # a constant tile is drawn flat grey
    conv.weight.data[...] = w
    tiles = filters(conv, mode="channels")
    assert tiles.shape == (3, 2, 2, 2)  # (K, C, F, F)
    np.testing.assert_allclose(tiles[0, 0], [[0, 1 / 3], [2 / 3, 1]])
    np.testing.assert_allclose(tiles[1, 1], [[0, 1 / 3], [2 / 3, 1]])
    np.testing.assert_allclose(tiles[2, 1], 0.5)


def test_mean_mode_averages_input_channels_and_limits_are_applied():
    conv = Conv2d(8, 100, 3)
    conv.weight.data[...] = 0.0
    conv.weight.data[5, :, 0, 0] = 1.0
    tiles = filters(conv)  # C = 8: auto picks "mean"
    assert tiles.shape == (64, 3, 3)  # max_filters=64
    expected = np.zeros((3, 3))
    expected[0, 0] = 1.0
    np.testing.assert_allclose(tiles[5], expected)
    assert filters(conv, mode="channels", max_filters=4, max_channels=3).shape == (4, 3, 3, 3)


def test_accepts_a_bare_weight_array():
    w = np.random.default_rng(0).standard_normal((4, 1, 5, 5))
    tiles = filters(w)  # one input channel: the filters as they are, (K, F, F)
    assert tiles.shape == (4, 5, 5) and tiles.min() == 0.0 and tiles.max() == 1.0
    np.testing.assert_allclose(tiles[2], (w[2, 0] - w[2, 0].min()) / np.ptp(w[2, 0]))


@pytest.mark.usefixtures("matplotlib")
@pytest.mark.parametrize("mode, channels", [("rgb", 3), ("channels", 2), ("mean", 16)])
def test_png_is_written_at_the_asked_size(tmp_path, mode, channels):
    conv = Conv2d(channels, 12, 5, rng=np.random.default_rng(1))
    path = tmp_path / f"filters_{mode}.png"
    filters(conv, mode=mode, save=path, figsize=(6, 4), dpi=50)
    assert_png(path, (300, 200))


def test_errors():
    with pytest.raises(ValueError, match="mode='rgb' needs 3 input channels"):
        filters(Conv2d(1, 4, 3), mode="rgb")
    with pytest.raises(ValueError, match="Received mode='colour'"):
        filters(Conv2d(3, 4, 3), mode="colour")
    with pytest.raises(ValueError, match=r"expected a 2-D convolution weight .* received shape \(4, 3\)"):
        filters(np.zeros((4, 3)))
