"""Preprocessing: the input recipe (shape, channels, mean/std, classes) that travels with a model."""

from __future__ import annotations

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.data import ArrayDataset, DataLoader, Preprocessing
from cnnkit.data.preprocessing import loader_preprocessing


def _dataset(n=12, rng=None):
    rng = rng or np.random.default_rng(0)
    return ArrayDataset(rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8), np.arange(n) % 3, ["a", "b", "c"])


def test_apply_is_what_the_loader_does():
    loader = DataLoader(_dataset(), 12, normalize="auto")
    recipe = Preprocessing.from_loader(loader)
    assert recipe.input_shape == (1, 8, 8) and recipe.channels == "L" and recipe.classes == ("a", "b", "c")
    x, _ = next(iter(loader))
    np.testing.assert_array_equal(recipe.apply(loader.dataset.images), x)
    np.testing.assert_array_equal(recipe.apply(loader.dataset.images[0]), x[0])  # one image (C, H, W)
    plain = Preprocessing.from_loader(DataLoader(_dataset(), 4))
    assert plain.mean is None and plain.apply(np.full((1, 8, 8), 255, np.uint8)).max() == 1.0


def test_round_trips_through_dicts_strings_and_old_metadata():
    recipe = Preprocessing((3, 32, 32), mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2), classes=["cat", "dog"])
    assert recipe.channels == "RGB"
    assert Preprocessing.from_dict(recipe.to_dict()) == recipe
    strings = recipe.to_strings()
    assert all(isinstance(v, str) for v in strings.values()) and strings["channels"] == "RGB"
    assert Preprocessing.from_strings(strings) == recipe
    old = {"input_shape": [3, 32, 32], "normalize": {"mean": [0.5, 0.4, 0.3], "std": [0.2] * 3},
           "classes": ["cat", "dog"]}
    assert Preprocessing.from_metadata(old) == recipe  # what cnnkit train saved before
    assert Preprocessing.from_metadata({}) is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"input_shape": (0, 28, 28)}, r"Received input_shape=\(0, 28, 28\); expected positive sizes"),
    ({"input_shape": (3, 8, 8), "mean": (0.1, 0.2)}, "give both mean and std, or neither"),
    ({"input_shape": (3, 8, 8), "mean": (0.1, 0.2), "std": (1, 1)}, r"one per channel \(3\)"),
    ({"input_shape": (1, 8, 8), "mean": (0.1,), "std": (0,)}, r"std=\[0.0\]; every value must be > 0"),
    ({"input_shape": (3, 8, 8), "channels": "HSV"}, "expected 'L', 'RGB' or 'BGR'"),
])
def test_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Preprocessing(**kwargs)


def test_fit_records_it_and_save_load_keep_it(tmp_path):
    """The Python path of the issue: a model trained by fit and saved with ck.save keeps its normalization."""
    loader = DataLoader(_dataset(), 4, normalize="auto")
    net = ck.Sequential(ck.Flatten(), ck.Linear(64, 3, rng=np.random.default_rng(0)))
    ck.train.fit(net, ck.losses.SoftmaxCrossEntropy(), ck.optim.SGD(net, lr=0.01), loader, quiet=True)
    assert net.preprocessing == Preprocessing.from_loader(loader)
    ck.save(net, tmp_path / "net.npz")
    loaded = ck.io.load_checkpoint(tmp_path / "net.npz")
    assert loaded.preprocessing == net.preprocessing == loaded.model.preprocessing
    assert ck.load(tmp_path / "net.npz").preprocessing.mean == tuple(float(v) for v in loader.mean)
    # An explicit recipe wins; a model without one saves none.
    other = Preprocessing((1, 8, 8), classes=["x", "y", "z"])
    ck.save(net, tmp_path / "other.npz", preprocessing=other)
    assert ck.io.load_checkpoint(tmp_path / "other.npz").preprocessing == other
    ck.save(ck.Linear(2, 2), tmp_path / "bare.npz")
    assert ck.io.load_checkpoint(tmp_path / "bare.npz").preprocessing is None


def test_loaders_that_do_not_say_how_they_made_their_images():
    assert loader_preprocessing([(np.zeros((1, 1, 2, 2)), np.zeros(1))]) is None
