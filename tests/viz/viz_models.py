"""Hand-built models whose answers are known, for the viz tests."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from cnnkit.io import save
from cnnkit.layers import Conv2d, Flatten, Linear, ReLU, Sequential
from cnnkit.train.history import History

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
    """The file exists, is non-empty, decodes with Pillow and is ``size`` = (width, height); None: any."""
    assert path.exists() and path.stat().st_size > 1000
    with Image.open(path) as picture:
        picture.load()
        assert picture.format == "PNG"
        assert all(want is None or got == want for got, want in zip(picture.size, size, strict=True)), \
            f"{path.name}: {picture.size} pixels, expected {size}"


CLASSES = ["circle", "bar", "cross"]


def tiny_run(tmp_path, *, metadata=True, size=8, data="tiny", classes=CLASSES):
    """A run directory as `cnnkit train` leaves it (weights untrained), for size x size grey images.

    Returns (run directory, (uint8 images, labels)) with 30 random test images.
    """
    rng = np.random.default_rng(0)
    model = Sequential(conv1=Conv2d(1, 4, 3, padding=1, rng=rng), relu1=ReLU(),
                       conv2=Conv2d(4, 6, 4, stride=2, padding=1, rng=rng), relu2=ReLU(),
                       flatten=Flatten(), fc=Linear(6 * (size // 2) ** 2, len(classes), rng=rng))
    meta = {"data": data, "classes": classes, "normalize": {"mean": [0.5], "std": [0.25]},
            "input_shape": [1, size, size],
            "train": {"model": "tiny-net", "data": data, "epochs": 2, "lr": 0.1}} if metadata else {}
    save(model, tmp_path / "checkpoint.npz", epoch=2, extra={"metadata": meta})
    History([{"epoch": 1, "train_loss": 1.1, "train_accuracy": 0.4, "val_loss": 1.0, "val_accuracy": 0.5,
              "lr": 0.1, "time": 1.5},
             {"epoch": 2, "train_loss": 0.9, "train_accuracy": 0.6, "val_loss": 0.95, "val_accuracy": 0.55,
              "lr": 0.05, "time": 1.4}]).to_json(tmp_path / "history.json")
    (tmp_path / "metrics.json").write_text(json.dumps({"test_accuracy": 0.55, "test_loss": 0.95}))
    (tmp_path / "summary.txt").write_text("conv1  Conv2d  (N, 4, 8, 8)  40 params\n<fc>  Linear")
    images = rng.integers(0, 256, (30, 1, size, size), dtype=np.uint8)
    labels = rng.integers(0, len(classes), 30)
    return tmp_path, (images, labels)
