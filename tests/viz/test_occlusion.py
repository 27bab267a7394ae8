import numpy as np
import pytest
from viz_models import REGION, assert_png, bright_image, region_mask, region_model

from cnnkit.viz import occlusion
from cnnkit.viz.occlusion import patch_starts


def test_patch_positions_reach_both_edges():
    assert patch_starts(28, 8, 4) == [0, 4, 8, 12, 16, 20]
    assert patch_starts(10, 4, 4) == [0, 4, 6]
    assert patch_starts(28, 8, 1) == list(range(21))


def test_map_peaks_over_the_region_the_decision_depends_on():
    x = bright_image()
    heat = occlusion(region_model(), x, target=1, patch=6, stride=1, fill="zero")
    assert heat.shape == (28, 28)
    peak = np.unravel_index(heat.argmax(), heat.shape)
    assert region_mask()[peak], f"peak {peak} outside the region {REGION}"
    assert heat[REGION].min() > 0  # hiding any part of the region lowers p(class 1)
    # A patch that covers a pixel more than patch-1+1 pixels away from the region cannot touch it: zero drop.
    far = ~region_mask(grow=6)
    np.testing.assert_allclose(heat[far], 0.0, atol=1e-7)
    assert heat[REGION].mean() > 10 * np.abs(heat[~region_mask(grow=1)]).mean()


def test_fill_mean_and_number_and_the_other_class():
    model, x = region_model(), bright_image()
    grey = occlusion(model, x, target=1, fill="mean")
    dark = occlusion(model, x, target=1, fill=0.0)
    assert dark[REGION].mean() > grey[REGION].mean() > 0  # a grey patch removes less of a bright region
    np.testing.assert_allclose(occlusion(model, x, target=0, fill=0.0), -dark, atol=1e-6)  # two classes


def test_logit_score_is_the_drop_of_the_raw_class_score():
    # Class 1's score is linear in the image: zeroing a patch lowers it by exactly the readout of that patch.
    model, x = region_model(), bright_image()
    heat = occlusion(model, x, target=1, patch=4, stride=4, fill=0.0, score="logit")
    blurred = model[0].forward(x[None])[0, 0]
    only_patch = x.copy()
    only_patch[:, :4, 16:20] = 0.0
    drop = 4.0 / 64 * (blurred - model[0].forward(only_patch[None])[0, 0])[4:12, 16:24].sum()
    np.testing.assert_allclose(heat[0:4, 16:20], drop, rtol=1e-5)


@pytest.mark.usefixtures("matplotlib")
def test_overlay_png_and_side_by_side_png(tmp_path):
    for overlay in (False, True):
        path = tmp_path / f"occ_{overlay}.png"
        occlusion(region_model(), bright_image(), 1, overlay=overlay, save=path, figsize=(6, 2.5), dpi=60)
        assert_png(path, (360, 150))


def test_errors():
    model, x = region_model(), bright_image()
    with pytest.raises(ValueError, match="patch=40 for an image of 28x28"):
        occlusion(model, x, 1, patch=40)
    with pytest.raises(ValueError, match="Received stride=0"):
        occlusion(model, x, 1, stride=0)
    with pytest.raises(ValueError, match="Received score='softmax'"):
        occlusion(model, x, 1, score="softmax")
    with pytest.raises(ValueError, match="Received fill='grey'"):
        occlusion(model, x, 1, fill="grey")
    with pytest.raises(ValueError, match=r"Received target=2; expected a class index in \[0, 2\)"):
        occlusion(model, x, 2)
