"""IDX reader: real MNIST (counts, label histogram, first labels), Fashion-MNIST from generated files in the
exact format, every IDX type code, and clear errors for corrupt or truncated files."""

import gzip

import numpy as np
import pytest
from data_helpers import idx_bytes, write_idx, write_mnist_like

from cnnkit.data import load, read_idx
from cnnkit.data.idx import FASHION_MNIST_CLASSES, parse_idx

MNIST_TRAIN_HISTOGRAM = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_HISTOGRAM = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist_train(mnist_dir):
    ds = load("mnist", "train", root=mnist_dir)
    assert ds.images.shape == (60_000, 1, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.shape == (60_000,) and ds.labels.dtype == np.int64
    assert ds.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert np.bincount(ds.labels).tolist() == MNIST_TRAIN_HISTOGRAM
    assert ds.classes == [str(d) for d in range(10)]
    assert ds.images.min() == 0 and ds.images.max() == 255
    # the first image (a 5): its ink spans rows 5..24 and sums to 27525 (values of the MD5-checked files)
    rows = np.nonzero(ds.images[0, 0].sum(axis=1))[0]
    assert (rows[0], rows[-1], int(ds.images[0].sum())) == (5, 24, 27525)


def test_real_mnist_test_from_parent_root(mnist_dir):
    ds = load("mnist", "test", root=mnist_dir.parent)  # <root>/mnist/ is where load looks first
    assert ds.images.shape == (10_000, 1, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(ds.labels).tolist() == MNIST_TEST_HISTOGRAM


def test_fashion_mnist_generated(tmp_path, rng):
    folder = tmp_path / "fashion-mnist"
    train = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8), rng.integers(0, 10, 12, dtype=np.uint8)
    test = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), rng.integers(0, 10, 5, dtype=np.uint8)
    write_mnist_like(folder, *train, "train", gz=True)
    write_mnist_like(folder, *test, "test", gz=False)  # raw files are read too
    for split, (images, labels) in (("train", train), ("test", test)):
        ds = load("fashion-mnist", split, root=tmp_path)
        np.testing.assert_array_equal(ds.images[:, 0], images)
        np.testing.assert_array_equal(ds.labels, labels)
        assert ds.classes == FASHION_MNIST_CLASSES and ds.classes[9] == "Ankle boot"
        assert ds.name == f"fashion-mnist/{split}"


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
@pytest.mark.parametrize("gz", [True, False])
def test_every_type_code_round_trips(tmp_path, rng, dtype, gz):
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    out = read_idx(write_idx(tmp_path / "a.idx", array, gz=gz))
    assert out.shape == (3, 4, 5) and out.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(out, array)


def test_worked_example_bytes():
    # 00 00 08 01 | 00 00 00 03 | 07 02 01: three uint8 labels 7, 2, 1
    assert parse_idx(bytes.fromhex("000008010000000307 0201".replace(" ", ""))).tolist() == [7, 2, 1]


def test_dotted_raw_file_name(tmp_path, rng):
    images, labels = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), np.array([3, 4], np.uint8)
    (tmp_path / "t10k-images.idx3-ubyte").write_bytes(idx_bytes(images))
    (tmp_path / "t10k-labels.idx1-ubyte").write_bytes(idx_bytes(labels))
    assert load("mnist", "test", root=tmp_path).labels.tolist() == [3, 4]


# ----------------------------------------------------------------------------------------------- errors
def test_bad_magic_number(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x00\x01\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match=r"bad.idx: bad magic number 0x00010801"):
        read_idx(path)
    path.write_bytes(b"PK\x03\x04" + bytes(20))  # a zip, not an IDX file
    with pytest.raises(ValueError, match="bad magic number 0x504b0304"):
        read_idx(path)


def test_truncated_data_and_header(tmp_path):
    raw = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(raw[:-10])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: truncated: the header promises 4x28x28 "
                                         r"values of uint8 \(3136 bytes\) but only 3126 bytes follow"):
        read_idx(path)
    path.write_bytes(raw[:9])
    with pytest.raises(ValueError, match="truncated IDX header: 3 dimensions need 16 bytes, the file has 9"):
        read_idx(path)
    path.write_bytes(raw[:2])
    with pytest.raises(ValueError, match="truncated IDX file: 2 bytes"):
        read_idx(path)


def test_trailing_bytes_are_a_size_mismatch(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.zeros(3, np.uint8))
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(3, np.uint8)) + b"\x00\x00"))
    with pytest.raises(ValueError, match=r"x.gz: size mismatch: 2 unexpected bytes"):
        read_idx(path)


def test_truncated_and_corrupt_gzip(tmp_path, rng):
    images = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: corrupt or truncated gzip data"):
        read_idx(path)
    broken = bytearray(data)
    broken[len(data) // 2] ^= 0xFF  # a flipped byte in the deflate stream: a zlib or CRC error
    path.write_bytes(bytes(broken))
    with pytest.raises(ValueError, match="corrupt or truncated gzip data"):
        read_idx(path)


def test_images_and_labels_disagree(tmp_path, rng):
    write_mnist_like(tmp_path, rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="mnist/train: size mismatch: train-images-idx3-ubyte.gz holds 3 "
                                         "images but train-labels-idx1-ubyte.gz holds 2 labels"):
        load("mnist", "train", root=tmp_path)
    write_mnist_like(tmp_path, np.zeros((2, 28, 28), np.uint8), np.array([1, 10], np.uint8))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz: label 10 is out of range"):
        load("mnist", "train", root=tmp_path)
    write_mnist_like(tmp_path, np.zeros((2, 784), np.uint8), np.array([1, 2], np.uint8))
    with pytest.raises(ValueError, match=r"uint8 images of shape \(N, H, W\); found uint8 \(2, 784\)"):
        load("mnist", "train", root=tmp_path)
