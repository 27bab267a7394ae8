"""RandomCrop and RandomHorizontalFlip: exact windows of the zero-padded image, exact mirrors, errors."""

import numpy as np
import pytest

from cnnkit.data import RandomCrop, RandomHorizontalFlip
from cnnkit.data.transforms import as_transforms


@pytest.fixture
def batch(rng):
    return rng.integers(1, 256, (64, 2, 7, 9), dtype=np.uint8)  # no zeros: padding is recognisable


def test_crop_is_a_window_of_the_zero_padded_image(batch, rng):
    out = RandomCrop(padding=2)(batch, rng)
    assert out.shape == batch.shape and out.dtype == np.uint8
    padded = np.pad(batch, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = set()
    for n in range(len(batch)):
        matches = [(i, j) for i in range(5) for j in range(5)
                   if np.array_equal(out[n], padded[n, :, i:i + 7, j:j + 9])]
        assert matches, f"sample {n} is not a window of its padded image"
        offsets.add(matches[0])
    assert len(offsets) > 10  # 25 offsets possible, 64 samples: many are used
    assert (out == 0).any()  # some windows reach into the zero border


def test_crop_to_a_smaller_size_and_without_padding(batch, rng):
    assert RandomCrop(size=5, padding=0)(batch, rng).shape == (64, 2, 5, 5)
    np.testing.assert_array_equal(RandomCrop(padding=0)(batch, rng), batch)  # the only window is the image


def test_flip_is_exact_and_follows_p(batch, rng):
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(batch, rng), batch[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(batch, rng), batch)
    original = batch.copy()
    out = RandomHorizontalFlip()(batch, np.random.default_rng(4))
    flips = np.random.default_rng(4).random(64) < 0.5  # the same draw decides which images flip
    np.testing.assert_array_equal(out[flips], batch[flips][..., ::-1])
    np.testing.assert_array_equal(out[~flips], batch[~flips])
    np.testing.assert_array_equal(batch, original)  # the input is not modified


def test_named_transforms():
    crop, flip = as_transforms("crop+flip")
    assert (crop.padding, crop.size, flip.p) == (4, None, 0.5)
    assert as_transforms(None) == [] and len(as_transforms(["flip", RandomCrop(padding=1)])) == 2


@pytest.mark.parametrize("make, message", [
    (lambda: RandomCrop(padding=-1), r"RandomCrop: received padding=-1; expected padding >= 0"),
    (lambda: RandomHorizontalFlip(p=1.5), r"RandomHorizontalFlip: received p=1.5; expected 0 <= p <= 1"),
    (lambda: RandomCrop(size=12, padding=1)(np.zeros((1, 1, 8, 8), np.uint8), np.random.default_rng(0)),
     r"RandomCrop\(size=\(12, 12\), padding=1\): a 12x12 window does not fit a 8x8 image padded by 1"),
    (lambda: as_transforms([3]), r"augment: received 3; expected a callable"),
])
def test_errors(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()
