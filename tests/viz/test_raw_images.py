"""Viz functions given a raw image (uint8 pixels, as a dataset stores them) prepare it as the model was
trained, with ``model.preprocessing``: the same maps as for the prepared input, not a blank one."""

from __future__ import annotations

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.data import Preprocessing, load
from cnnkit.viz import activations, occlusion, saliency


@pytest.fixture(scope="module")
def model_and_image():
    net = ck.Sequential(ck.Conv2d(1, 4, 5, rng=np.random.default_rng(0)), ck.ReLU(), ck.Flatten(),
                        ck.Linear(4 * 24 * 24, 10, rng=np.random.default_rng(1)))
    net.preprocessing = Preprocessing((1, 28, 28), mean=(0.1307,), std=(0.3081,))
    return net, load("embedded", "test").images[0]  # (1, 28, 28) uint8, a 7


def test_raw_pixels_give_the_maps_of_the_prepared_image(model_and_image):
    net, raw = model_and_image
    prepared = net.preprocessing.apply(raw)
    np.testing.assert_array_equal(occlusion(net, raw, 7, patch=6, stride=3),
                                  occlusion(net, prepared, 7, patch=6, stride=3))
    np.testing.assert_array_equal(saliency(net, raw, 7), saliency(net, prepared, 7))
    np.testing.assert_array_equal(activations(net, raw, "1"), activations(net, prepared, "1"))
    assert np.abs(occlusion(net, raw, 7, patch=6, stride=3)).max() > 0


def test_without_a_recipe_raw_pixels_are_scaled_to_one(model_and_image):
    net, raw = model_and_image
    bare = ck.Sequential(*[layer for _, layer in net.named_children()])
    np.testing.assert_array_equal(saliency(bare, raw, 7), saliency(bare, raw.astype(np.float32) / 255, 7))
