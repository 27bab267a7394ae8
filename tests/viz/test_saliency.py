import numpy as np
import pytest
from viz_models import REGION, assert_png, bright_image, region_mask, region_model

from cnnkit.viz import saliency


def test_map_is_concentrated_on_the_region():
    model = region_model()
    sal = saliency(model, bright_image(), target=1)
    assert sal.shape == (28, 28)
    reach = region_mask(grow=1)  # the 3x3 blur spreads the readout by one pixel
    np.testing.assert_array_equal(sal[~reach], 0.0)
    assert (sal[REGION] > 0).all()
    assert sal[REGION].sum() / sal.sum() > 0.8  # 3.36 of 4: the rest is the one-pixel rim


def test_gradient_matches_the_hand_computed_one():
    # d score_1 / dx = blur^T(readout weight): inside the region, away from its border, 9 * (1/9) * 4/64.
    sal = saliency(region_model(), bright_image(), target=1, reduce="none")
    assert sal.shape == (1, 28, 28)
    np.testing.assert_allclose(sal[0, 6:10, 18:22], 4.0 / 64, rtol=1e-6)
    np.testing.assert_allclose(sal[0, 3, 15], 4.0 / 64 / 9, rtol=1e-6)  # corner: one of nine taps inside


def test_parameter_gradients_and_mode_are_left_as_they_were():
    model = region_model()
    model.train()
    for p in model.parameters():
        p.grad[...] = 3.0
    saliency(model, bright_image(), target=1)
    assert all((p.grad == 3.0).all() for p in model.parameters())
    assert all(layer.training for layer in model.layers())


@pytest.mark.usefixtures("matplotlib")
def test_png_is_written(tmp_path):
    path = tmp_path / "sal.png"
    saliency(region_model(), bright_image(), 1, save=path, figsize=(6, 2.5), dpi=60)
    assert_png(path, (360, 150))


def test_errors():
    with pytest.raises(ValueError, match="Received reduce='sum'"):
        saliency(region_model(), bright_image(), 1, reduce="sum")
    with pytest.raises(ValueError, match="Received target=5"):
        saliency(region_model(), bright_image(), 5)
