import numpy as np
import pytest
from viz_models import assert_png, bright_image, region_model

from cnnkit.errors import ShapeError
from cnnkit.layers import Conv2d, Layer, Sequential
from cnnkit.viz import consistency, shift_consistency, shift_image


def test_shift_image_moves_content_and_replicates_the_edge():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0
    moved = shift_image(x, 1, -2)
    assert moved[0, 0, 3, 0] == 1.0 and moved.sum() == 1.0
    ramp = np.arange(5.0).reshape(1, 1, 1, 5).repeat(5, axis=2)
    np.testing.assert_array_equal(shift_image(ramp, 0, 2)[0, 0, 0], [0, 0, 0, 1, 2])


class BrightestHalf(Layer):
    """Scores (N, 2): is the brightest pixel in the left or the right half? Shifts move the answer."""

    def forward(self, x):
        W = x.shape[-1]
        column = x.reshape(len(x), -1).argmax(axis=1) % W
        return np.stack([column < W // 2, column >= W // 2], axis=1).astype(x.dtype)


def test_a_position_sensitive_model_is_inconsistent_and_a_blind_one_consistent():
    images = np.zeros((4, 1, 8, 8), np.float32)
    for i, col in enumerate([3, 4, 1, 6]):
        images[i, 0, 4, col] = 1.0
    m = shift_consistency(BrightestHalf(), images, max_shift=1)
    # Right by one: the dot at column 3 crosses into the right half; left by one: the one at 4 crosses back.
    np.testing.assert_allclose(m[:, 2], 0.75)
    np.testing.assert_allclose(m[:, 0], 0.75)
    np.testing.assert_allclose(m[:, 1], 1.0)
    assert consistency(m) == pytest.approx((2 * 1.0 + 6 * 0.75) / 8)  # the 8 shifted entries

    blind = Sequential(Conv2d(1, 2, 8))  # constant input: the same answer whatever the shift
    assert consistency(shift_consistency(blind, np.ones((3, 1, 8, 8), np.float32), max_shift=2)) == 1.0


@pytest.mark.usefixtures("matplotlib")
def test_compare_two_models_and_png(tmp_path):
    images = np.concatenate([bright_image(s)[None] for s in range(3)])
    path = tmp_path / "shift.png"
    maps = shift_consistency({"region": region_model(), "other": region_model(strength=-4.0)}, images,
                             max_shift=2, save=path, figsize=(8, 3), dpi=50)
    assert set(maps) == {"region", "other"} and maps["region"].shape == (5, 5)
    assert_png(path, (400, 150))


def test_errors():
    with pytest.raises(ValueError, match="Received max_shift=8"):
        shift_consistency(region_model(), np.zeros((1, 1, 8, 8)), max_shift=8)
    with pytest.raises(ShapeError, match="expected images"):
        shift_consistency(region_model(), np.zeros((1, 8, 8)))
