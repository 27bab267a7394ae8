"""Hand-built models whose answers are known, for the viz tests."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cnnkit.layers import Conv2d, Sequential

# The one region the region model looks at: rows 4..11, columns 16..23 of a 28x28 image.
REGION = (slice(4, 12), slice(16, 24))


def region_model(size=28, region=REGION, strength=4.0):
    """Class 1's score is a fixed 3x3 box blur of the image summed over REGION; class 0's score is 0.

    Built from two convolutions: a blur with hand-set weights, then a full-size convolution that is a linear
    readout (its output is (N, 2, 1, 1)). Only pixels in REGION grown by one (the blur's reach) can matter.
    """
    blur = Conv2d(1, 1, 3, padding=1, bias=False)
    blur.weight.data[...] = 1.0 / 9.0
    readout = Conv2d(1, 2, kernel_size=size)
    readout.weight.data[...] = 0.0
    readout.bias.data[...] = 0.0
    mask = np.zeros((size, size), np.float32)
    mask[region] = 1.0
    readout.weight.data[1, 0] = strength * mask / mask.sum()
    return Sequential(blur, readout)


def region_mask(size=28, region=REGION, grow=0):
    mask = np.zeros((size, size), bool)
    rows, cols = region
    mask[max(rows.start - grow, 0):rows.stop + grow, max(cols.start - grow, 0):cols.stop + grow] = True
    return mask


def bright_image(seed=0):
    return np.random.default_rng(seed).uniform(0.25, 1.0, (1, 28, 28)).astype(np.float32)


def assert_png(path, size):
    """The file exists, is non-empty, decodes with Pillow and is ``size`` (width, height) pixels."""
    assert path.exists() and path.stat().st_size > 1000
    with Image.open(path) as picture:
        picture.load()
        assert picture.format == "PNG"
        assert picture.size == size
