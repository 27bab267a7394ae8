"""What a viz function returns shows as its picture in Jupyter (``_repr_png_``) and is the array otherwise.

The PNG a notebook shows is byte for byte the one ``save=`` writes (one drawing code path), decodes with
Pillow at figsize x dpi pixels, and is drawn by IPython's own display formatter. Apart from that the result
behaves as the plain ndarray (or dict) the functions returned before: same values and dtype, ``array(...)``
repr, plain ndarrays from slicing, arithmetic, methods and NumPy functions, plain pickles and .npy files.
"""

from __future__ import annotations

import copy
import io
import pickle
import sys

import numpy as np
import pytest
from viz_models import bright_image, region_model

from cnnkit.layers import Conv2d, Flatten, Linear, ReLU, Sequential
from cnnkit.viz import activations, confusion_matrix, filters, history, occlusion, saliency, shift_consistency
from cnnkit.viz._picture import PictureArray, PictureDict

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def small_net():
    rng = np.random.default_rng(0)
    return Sequential(conv1=Conv2d(3, 6, 5, padding=2, rng=rng), relu1=ReLU(), flatten=Flatten(),
                      fc=Linear(6 * 16 * 16, 10, rng=rng))


def image(seed=1):
    return np.random.default_rng(seed).standard_normal((3, 16, 16)).astype(np.float32)


def decoded_size(png):
    Image = pytest.importorskip("PIL.Image", reason='decodes PNG with Pillow: pip install -e ".[test]"')
    with Image.open(io.BytesIO(png)) as picture:
        picture.load()
        assert picture.format == "PNG"
        return picture.size


# Each case: the call (with save= added by the test), and the PNG's size in pixels (figsize x dpi).
CASES = {
    "filters": (lambda save: filters(small_net().get("conv1"), figsize=(5, 3), dpi=40, save=save),
                (200, 120)),
    "activations": (lambda save: activations(small_net(), image(), "relu1", figsize=(6, 3), dpi=50,
                                             save=save), (300, 150)),
    "occlusion": (lambda save: occlusion(small_net(), image(), 3, patch=4, stride=2, dpi=50, save=save),
                  (450, 170)),
    "saliency": (lambda save: saliency(small_net(), image(), 3, save=save), (900, 340)),
    "saliency none": (lambda save: saliency(small_net(), image(), 3, reduce="none", dpi=50, save=save),
                      (450, 170)),
    "shift": (lambda save: shift_consistency(small_net(), image()[None], 1, figsize=(4, 4), dpi=50,
                                             save=save), (200, 200)),
    "shift two": (lambda save: shift_consistency({"a": small_net(), "b": small_net()}, image()[None], 1,
                                                 figsize=(6, 3), dpi=50, save=save), (300, 150)),
    "history": (lambda save: history({"loss": [2.0, 1.0], "val_accuracy": [0.5, 0.8]}, dpi=50, save=save),
                (440, 180)),
    "confusion": (lambda save: confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], figsize=(4, 3), dpi=50,
                                                save=save), (200, 150)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_notebook_picture_is_the_saved_png(name, matplotlib):
    call, size = CASES[name]
    saved = io.BytesIO()
    result = call(saved)
    png = result._repr_png_()
    assert isinstance(png, bytes) and png.startswith(PNG_SIGNATURE)
    assert decoded_size(png) == size
    assert png == saved.getvalue()  # the same figure as save= writes, by the same drawing code
    assert isinstance(result, PictureDict if isinstance(result, dict) else PictureArray)


def test_the_values_are_the_plain_results():
    net, x = small_net(), image()
    maps = activations(net, x, "relu1")
    np.testing.assert_array_equal(maps, np.maximum(net.get("conv1").forward(x[None])[0], 0))
    assert maps.dtype == np.float32 and type(np.asarray(maps)) is np.ndarray
    weight = net.get("conv1").weight.data.mean(axis=1).astype(np.float64)  # as filters scales it
    low, high = weight.min(axis=(1, 2), keepdims=True), weight.max(axis=(1, 2), keepdims=True)
    np.testing.assert_array_equal(filters(net.get("conv1"), mode="mean"), (weight - low) / (high - low))
    signed = saliency(net, x, 3, reduce="none")
    np.testing.assert_array_equal(saliency(net, x, 3), np.abs(signed).max(axis=0))
    counts = confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2])
    assert counts.dtype == np.int64 and counts.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    series = history({"loss": [2.0, 1.0], "val_accuracy": [0.5, 0.8]})
    assert series.keys() == {"loss", "val_accuracy"} and series["loss"].tolist() == [2.0, 1.0]
    heat = occlusion(region_model(), bright_image(), target=1, patch=6, stride=2)
    assert heat.shape == (28, 28) and heat.dtype == np.float64


def test_it_behaves_as_the_plain_array(tmp_path):
    heat = occlusion(small_net(), image(), 3, patch=4, stride=2)
    plain = np.asarray(heat)
    assert type(plain) is np.ndarray and np.shares_memory(plain, heat)
    assert repr(heat) == repr(plain) and repr(heat).startswith("array([[") and str(heat) == str(plain)
    derived = [heat[0], heat[2:5, ::2], heat[heat > 0], heat + 1, 2 * heat, heat == heat, -heat, np.abs(heat),
               heat @ heat, heat.copy(), heat.reshape(-1), heat.T, heat.astype(np.float32), heat.ravel(),
               heat.mean(axis=0), heat.cumsum(), heat.dot(plain), np.concatenate([heat, heat]),
               np.where(heat > 0, heat, 0), next(iter(heat)), copy.copy(heat), copy.deepcopy(heat),
               pickle.loads(pickle.dumps(heat)), pickle.loads(pickle.dumps(heat, protocol=5))]
    assert [type(d).__name__ for d in derived] == ["ndarray"] * len(derived)
    np.testing.assert_array_equal(derived[-1], plain)
    assert (heat == plain).all() and np.array_equal(heat, plain) and float(heat.sum()) == float(plain.sum())
    np.save(tmp_path / "heat.npy", heat)
    loaded = np.load(tmp_path / "heat.npy")
    assert type(loaded) is np.ndarray and np.array_equal(loaded, plain)
    before = plain.copy()
    heat += 1  # in place: the same object, still shown as a picture (of the new values)
    assert isinstance(heat, PictureArray) and heat._draw is not None and np.array_equal(plain, before + 1)
    assert heat.view(PictureArray)._repr_png_() is None  # a bare view knows no drawing: shown as text
    series = history({"loss": [2.0, 1.0]})
    assert series == {"loss": series["loss"]} and type(pickle.loads(pickle.dumps(series))) is dict
    assert type(series.copy()) is dict and repr(series).startswith("{'loss': array([2., 1.])")


def test_without_matplotlib_the_notebook_shows_the_text(monkeypatch):
    heat = saliency(small_net(), image(), 3)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # `from matplotlib.figure import` fails
    assert heat._repr_png_() is None
    assert history({"loss": [1.0]})._repr_png_() is None


def test_ipython_displays_the_png_and_keeps_the_array_text(matplotlib):
    formatters = pytest.importorskip("IPython.core.formatters",
                                     reason='needs IPython: pip install -e ".[test]"')
    shown, _ = formatters.DisplayFormatter().format(filters(small_net().get("conv1")))
    assert shown["image/png"].startswith(PNG_SIGNATURE) and shown["text/plain"].startswith("array([[[[")
    shown, _ = formatters.DisplayFormatter().format(history({"loss": [2.0, 1.0]}))
    assert shown["image/png"].startswith(PNG_SIGNATURE) and shown["text/plain"].startswith("{'loss': array(")
