"""ImageFolder: real PNG files written by Pillow, read back exactly; splits, resizing, errors, lazy Pillow."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cnnkit.data import load, load_image_folder
from conftest import ROOT


def _write(folder, arrays):
    folder.mkdir(parents=True, exist_ok=True)
    for i, array in enumerate(arrays):
        Image.fromarray(array).save(folder / f"{i}.png")


@pytest.fixture
def tree(tmp_path, rng):
    pictures = {name: [rng.integers(0, 256, (6, 8, 3), dtype=np.uint8) for _ in range(n)]
                for name, n in (("dog", 2), ("cat", 3))}
    for name, arrays in pictures.items():
        _write(tmp_path / "pets" / name, arrays)
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("not an image")  # ignored
    return tmp_path / "pets", pictures


def test_png_tree_reads_back_exactly(tree):
    root, pictures = tree
    ds = load(str(root))
    assert ds.classes == ["cat", "dog"]  # sorted folder names
    assert ds.images.shape == (5, 3, 6, 8) and ds.images.dtype == np.uint8
    assert ds.labels.tolist() == [0, 0, 0, 1, 1]
    expected = np.stack(pictures["cat"] + pictures["dog"]).transpose(0, 3, 1, 2)  # HWC -> CHW
    np.testing.assert_array_equal(ds.images, expected)


def test_grayscale_and_forced_channels(tmp_path, rng):
    gray = [rng.integers(0, 256, (5, 5), dtype=np.uint8) for _ in range(2)]
    _write(tmp_path / "a", gray[:1])
    _write(tmp_path / "b", gray[1:])
    ds = load_image_folder(tmp_path)
    assert ds.images.shape == (2, 1, 5, 5)
    np.testing.assert_array_equal(ds.images[:, 0], np.stack(gray))
    rgb = load_image_folder(tmp_path, channels=3)
    assert rgb.images.shape == (2, 3, 5, 5) and np.array_equal(rgb.images[:, 1], ds.images[:, 0])


def test_split_folders_and_resize(tmp_path, rng):
    _write(tmp_path / "train" / "x", [rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)])
    _write(tmp_path / "test" / "x", [rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)])
    _write(tmp_path / "test" / "y", [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)])
    assert len(load(tmp_path, "train")) == 1
    with pytest.raises(ValueError, match=r"is 8x8 but .*0.png is 10x12 \(H x W\); pass size=\(H, W\)"):
        load(tmp_path, "test")
    resized = load(tmp_path, "test", size=(6, 7))
    assert resized.images.shape == (2, 3, 6, 7) and resized.name.endswith("test")


def test_errors(tmp_path):
    with pytest.raises(ValueError, match=r"no class folders; expected .*/<class_name>/\*.png"):
        load_image_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="class 'empty' has no images"):
        load_image_folder(tmp_path)
    (tmp_path / "empty" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ValueError, match=r"broken.png: not a readable image"):
        load_image_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="received channels=2"):
        load_image_folder(tmp_path, channels=2)


def test_missing_pillow_names_the_extra(tree, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)  # makes `from PIL import Image` raise ImportError
    with pytest.raises(ImportError, match=r'needs Pillow: pip install "cnnkit\[data\]"'):
        load(str(tree[0]))


def test_import_cnnkit_stays_light():
    code = ("import sys, cnnkit, cnnkit.data; heavy = [m for m in ('PIL', 'urllib.request', 'tarfile') "
            "if m in sys.modules]; print(heavy)")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"
