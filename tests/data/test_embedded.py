"""The MNIST subset shipped in the package: loads offline, equals the first images of real MNIST, is rebuilt
by scripts/make_embedded_mnist.py from MD5-checked files; corrupt .npz files give clear errors."""

import importlib.util
import zipfile

import numpy as np
import pytest

from cnnkit.data import load, load_embedded
from cnnkit.data.datasets import EMBEDDED_PATH
from conftest import ROOT


def _script():
    path = ROOT / "scripts" / "make_embedded_mnist.py"
    spec = importlib.util.spec_from_file_location("make_embedded_mnist", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_embedded_loads_offline_and_equals_real_mnist(mnist_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("CNNKIT_DATA", str(tmp_path))  # an empty data folder: nothing but the package is used
    train, test = load("embedded", "train"), load("embedded", "test")
    assert train.images.shape == (10_000, 1, 28, 28) and test.images.shape == (2_000, 1, 28, 28)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert train.classes == [str(d) for d in range(10)] and train.name == "embedded/train"
    for split, subset in (("train", train), ("test", test)):
        full = load("mnist", split, root=mnist_dir)
        np.testing.assert_array_equal(subset.images, full.images[:len(subset)])
        np.testing.assert_array_equal(subset.labels, full.labels[:len(subset)])
    assert np.bincount(train.labels, minlength=10).min() > 850  # every digit is well represented
    assert 1.5e6 < EMBEDDED_PATH.stat().st_size < 2.5e6


def test_script_rebuilds_the_same_arrays(mnist_dir, tmp_path):
    out = _script().build(mnist_dir, tmp_path / "subset.npz")
    with np.load(out) as rebuilt, np.load(EMBEDDED_PATH) as shipped:
        keys = ["test_images", "test_labels", "train_images", "train_labels"]
        assert sorted(rebuilt.files) == sorted(shipped.files) == keys
        for key in shipped.files:
            np.testing.assert_array_equal(rebuilt[key], shipped[key])
    with zipfile.ZipFile(out) as packed:  # fixed timestamps: the bytes depend only on the data (and zlib)
        assert {info.date_time for info in packed.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_script_refuses_a_modified_source(mnist_dir, tmp_path):
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (tmp_path / name).symlink_to(mnist_dir / name)
    labels = bytearray(load("mnist", "test", root=mnist_dir).labels.astype(np.uint8))
    labels[0] = 3
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0x27, 0x10]) + bytes(labels))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: MD5 of the uncompressed content is "
                                         r"[0-9a-f]{32}, expected 27ae3e4e09519cfbb04c329615203637"):
        _script().build(tmp_path, tmp_path / "subset.npz")
    assert not (tmp_path / "subset.npz").exists()


def test_truncated_npz(tmp_path):
    path = tmp_path / "mnist_subset.npz"
    path.write_bytes(EMBEDDED_PATH.read_bytes()[:100_000])
    with pytest.raises(ValueError, match=r"mnist_subset.npz: corrupt or truncated .npz file \(BadZipFile"):
        load_embedded("train", path)


def test_corrupt_member(tmp_path, rng):
    np.savez_compressed(tmp_path / "good.npz", train_images=rng.integers(0, 9, (50, 28, 28), dtype=np.uint8),
                        train_labels=np.zeros(50, np.uint8))
    data = bytearray((tmp_path / "good.npz").read_bytes())
    middle = len(data) // 3  # inside the first member's compressed bytes
    data[middle:middle + 8] = bytes(8)
    path = tmp_path / "bad.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"bad.npz: corrupt or truncated .npz file"):
        load_embedded("train", path)


def test_pickled_or_missing_arrays(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, train_images=np.array([{"a": 1}], dtype=object), train_labels=np.zeros(1))
    with pytest.raises(ValueError, match=r"objects.npz: not a valid .npz of plain arrays \(.*allow_pickle"):
        load_embedded("train", path)
    np.savez(path, test_images=np.zeros((1, 28, 28), np.uint8), test_labels=np.zeros(1, np.uint8))
    with pytest.raises(ValueError, match=r"objects.npz: missing arrays \['train_images', 'train_labels'\]"):
        load_embedded("train", path)
    np.savez(path, train_images=np.zeros((1, 784), np.float32), train_labels=np.zeros(1, np.uint8))
    with pytest.raises(ValueError, match=r"train_images must be uint8 \(N, H, W\)"):
        load_embedded("train", path)
    path.write_bytes(b"garbage, not a zip")
    with pytest.raises(ValueError, match=r"objects.npz: "):
        load_embedded("train", path)
