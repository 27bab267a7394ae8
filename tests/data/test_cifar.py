"""CIFAR-10/100 readers on files generated in both official layouts, and the restricted unpickler: a
malicious pickle given as a CIFAR batch is refused without running anything."""

import builtins
import os
import pickle

import numpy as np
import pytest
from data_helpers import CIFAR10_NAMES, CIFAR100_COARSE, CIFAR100_FINE, make_cifar, python2_pickle

from cnnkit.data import cifar, load, read_cifar_binary, read_cifar_python, safe_unpickle


@pytest.mark.parametrize("fmt", ["binary", "python"])
@pytest.mark.parametrize("which", [10, 100])
def test_both_formats_read_exactly(tmp_path, which, fmt):
    expected = make_cifar(tmp_path / f"cifar{which}", which, fmt, per_batch=6)
    for split in ("train", "test"):
        ds = load(f"cifar{which}", split, root=tmp_path)
        images, labels, _ = expected[split]
        assert ds.images.shape == ((30 if which == 10 else 6) if split == "train" else 6, 3, 32, 32)
        assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64
        np.testing.assert_array_equal(ds.images, images)
        np.testing.assert_array_equal(ds.labels, labels)
        assert ds.classes == (CIFAR10_NAMES if which == 10 else CIFAR100_FINE)
        assert ds.name == f"cifar{which}/{split}"


@pytest.mark.parametrize("fmt", ["binary", "python"])
def test_cifar100_coarse_labels(tmp_path, fmt):
    expected = make_cifar(tmp_path, 100, fmt, per_batch=9)
    ds = load("cifar100", "train", root=tmp_path, coarse=True)
    np.testing.assert_array_equal(ds.labels, expected["train"][2])
    assert ds.classes == CIFAR100_COARSE


def test_binary_record_layout(tmp_path):
    # one record: label 3, a red plane of 1s (but pixel (0, 1) = 9), a green plane of 2s, a blue one of 3s
    planes = np.concatenate([np.full(1024, 1), np.full(1024, 2), np.full(1024, 3)]).astype(np.uint8)
    planes[1] = 9
    path = tmp_path / "b.bin"
    path.write_bytes(bytes([3]) + planes.tobytes())
    images, labels = read_cifar_binary(path)
    assert images.shape == (1, 3, 32, 32) and labels.tolist() == [3]
    assert images[0, :, 5, 5].tolist() == [1, 2, 3] and images[0, 0, 0, 1] == 9
    path.write_bytes(bytes([7, 42]) + planes.tobytes())  # CIFAR-100: coarse 7, fine 42
    assert read_cifar_binary(path, label_bytes=2, label_index=1)[1].tolist() == [42]
    assert read_cifar_binary(path, label_bytes=2, label_index=0)[1].tolist() == [7]


def test_numpy2_protocol4_pickles_load_too(tmp_path):
    # A batch re-saved by Python 3 + NumPy 2 (numpy._core.multiarray._reconstruct, protocol 4) loads too.
    expected = make_cifar(tmp_path, 10, "python", per_batch=4, pickler=lambda o: pickle.dumps(o, protocol=4))
    ds = load("cifar10", "test", root=tmp_path)
    np.testing.assert_array_equal(ds.images, expected["test"][0])


def test_python_batch_keeps_float_and_big_endian_arrays(tmp_path):
    value = {b"a": np.arange(6, dtype=">i4").reshape(2, 3), b"b": np.asfortranarray(np.eye(3)),
             b"c": (1, "x")}
    path = tmp_path / "plain"
    path.write_bytes(python2_pickle(value))
    out = safe_unpickle(path)
    np.testing.assert_array_equal(out[b"a"], value[b"a"])
    np.testing.assert_array_equal(out[b"b"], np.eye(3))
    assert out[b"a"].dtype == np.int32 and out[b"c"] == (1, b"x")


# ------------------------------------------------------------------------------------------ hostile pickles
class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Eval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("attack", [_System, _Eval], ids=["os.system", "builtins.eval"])
def test_malicious_batch_is_refused_without_running(tmp_path, attack):
    marker = tmp_path / "pwned"
    folder = tmp_path / "cifar-10-batches-py"
    make_cifar(tmp_path, 10, "python", per_batch=2)
    evil = {b"data": attack(marker), b"labels": [0, 1]}
    (folder / "data_batch_3").write_bytes(python2_pickle(evil))  # shaped like the official batches
    # protocol 2 writes Python 2 module names
    module = r"posix\.system" if attack is _System else r"__builtin__\.eval"
    with pytest.raises(ValueError, match=rf"data_batch_3: refused or corrupt pickle: UnpicklingError: "
                                         rf"refused global {module}"):
        load("cifar10", "train", root=tmp_path)
    assert not marker.exists()
    # a pickle that is only the attack, as the meta file
    (folder / "batches.meta").write_bytes(pickle.dumps(attack(marker)))
    with pytest.raises(ValueError, match="batches.meta: refused or corrupt pickle"):
        load("cifar10", "test", root=tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("payload, reason", [
    # numpy.ndarray called directly (np.ndarray((5,))): the stand-in is not callable
    (b"\x80\x02cnumpy\nndarray\nK\x05\x85R.", "not callable"),
    # _reconstruct given another type than ndarray
    (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\ndtype\nK\x00\x85U\x01b\x87R.",
     "_reconstruct is only allowed as numpy pickles a plain ndarray"),
    # an object array: its dtype "O8" is refused before any object is built
    (pickle.dumps(np.array([1, None], dtype=object), protocol=4), "dtype 'O8' is not allowed"),
    # a structured dtype
    (pickle.dumps(np.zeros(2, dtype=[("a", "u1")]), protocol=4), "dtype 'V1' is not allowed"),
    # protocol 5 arrays go through numpy._core.numeric._frombuffer, which is not on the list
    (pickle.dumps(np.zeros(3), protocol=5), "refused global numpy._core.numeric._frombuffer"),
    # persistent ids
    (b"\x80\x02U\x03abcQ.", "persistent ids are not allowed"),
    # a set: not plain data in this sense
    (pickle.dumps({1, 2}, protocol=4), "a set is not plain data"),
])
def test_refused_constructs(tmp_path, payload, reason):
    path = tmp_path / "batch"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=rf"batch: refused or corrupt pickle: .*{reason}"):
        safe_unpickle(path)


@pytest.mark.parametrize("target", [b"numpy.core.multiarray\n_reconstruct", b"numpy\ndtype",
                                    b"numpy\nndarray"])
def test_allowed_globals_cannot_be_modified(tmp_path, target):
    # GLOBAL target, {"x": 1}, BUILD: would set target.x (state that outlives this load) if it were allowed
    path = tmp_path / "batch"
    path.write_bytes(b"\x80\x02c" + target + b"\n}X\x01\x00\x00\x00xK\x01sb.")
    with pytest.raises(ValueError, match="batch: refused or corrupt pickle"):
        safe_unpickle(path)
    assert not any(hasattr(g, "x") for g in cifar._ALLOWED_GLOBALS.values())


def test_array_size_mismatch_in_pickle(tmp_path):
    data = python2_pickle({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})
    # the shape now says 3 rows, the bytes hold 2
    data = data.replace(b"K\x02M\x00\x0c\x86", b"K\x03M\x00\x0c\x86")
    path = tmp_path / "data_batch_1"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"size mismatch: an array of shape \(3, 3072\) and dtype uint8 "
                                         r"needs 9216 bytes, the file holds 6144"):
        read_cifar_python(path)


# ------------------------------------------------------------------------------------------ damaged files
def test_truncated_binary_batch(tmp_path):
    make_cifar(tmp_path, 10, "binary", per_batch=3)
    path = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"test_batch.bin: size mismatch: 9218 bytes is not a whole number "
                                         r"of 3073-byte records"):
        load("cifar10", "test", root=tmp_path)


def test_truncated_python_batch(tmp_path):
    make_cifar(tmp_path, 10, "python", per_batch=3)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match="test_batch: refused or corrupt pickle"):
        load("cifar10", "test", root=tmp_path)


def test_label_out_of_range(tmp_path):
    make_cifar(tmp_path, 10, "binary", per_batch=1)
    path = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    path.write_bytes(bytes([10]) + path.read_bytes()[1:])
    with pytest.raises(ValueError, match="test_batch: label 10 is out of range for the 10 class names"):
        load("cifar10", "test", root=tmp_path)


@pytest.mark.parametrize("batch, message", [
    ([1, 2], r"not a CIFAR python batch: expected a dict with b'data' and b'labels'; found list"),
    ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]},
     r"b'data' must be uint8 of shape \(N, 3072\); found float32 \(2, 3072\)"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, r"size mismatch: 2 images but 1 b'labels'"),
])
def test_python_batch_structure(tmp_path, batch, message):
    path = tmp_path / "data_batch_1"
    path.write_bytes(python2_pickle(batch))
    with pytest.raises(ValueError, match=message):
        read_cifar_python(path)


def test_missing_files_say_where(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar10: the train files are not in .*cifar10 .*put "
                                                r"cifar-10-binary.tar.gz .*unpack it there"):
        load("cifar10", "train", root=tmp_path)
    make_cifar(tmp_path, 100, "binary", per_batch=1)
    (tmp_path / "cifar-100-binary" / "fine_label_names.txt").unlink()
    with pytest.raises(FileNotFoundError, match="class names fine_label_names.txt not found"):
        load("cifar100", "test", root=tmp_path)
