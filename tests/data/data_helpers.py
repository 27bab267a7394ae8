"""Writers of dataset files in the exact official formats, so readers are tested without any download."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from pathlib import Path

import numpy as np

IDX_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
             np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(array) -> bytes:
    """IDX encoding: 00 00, type code, ndim, big-endian sizes, big-endian values."""
    array = np.asarray(array)
    big = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    sizes = struct.pack(f">{array.ndim}I", *array.shape)
    return bytes([0, 0, IDX_CODES[np.dtype(big)], array.ndim]) + sizes + array.astype(big).tobytes()


def write_idx(path, array, *, gz=True) -> Path:
    path = Path(path)
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def write_mnist_like(directory, images, labels, split="train", *, gz=True):
    """The two IDX files of a split with the standard names."""
    stems = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}[split]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    return (write_idx(directory / (stems[0] + suffix), images, gz=gz),
            write_idx(directory / (stems[1] + suffix), labels, gz=gz))


class Python2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 strings (BINSTRING opcodes), as the official CIFAR batches were made
    with Python 2's cPickle; loaded with encoding="bytes" they come back as bytes."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_string(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_string
    dispatch[bytes] = save_py2_string


def python2_pickle(obj) -> bytes:
    """A protocol-2 pickle shaped like Python 2 + NumPy 1.x wrote it (numpy.core.multiarray._reconstruct)."""
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR100_FINE = [f"fine_{i:02d}" for i in range(100)]
CIFAR100_COARSE = [f"coarse_{i:02d}" for i in range(20)]


def make_cifar(root, which: int, fmt: str, *, per_batch: int = 7, seed: int = 0, pickler=python2_pickle):
    """Write a small CIFAR-10 (which=10) or CIFAR-100 (100) tree in the official layout of format fmt
    ("binary" or "python") under root; returns {split: (images (N, 3, 32, 32), labels, coarse_labels)}."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    if which == 10:
        folder = root / ("cifar-10-batches-bin" if fmt == "binary" else "cifar-10-batches-py")
        batches = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    else:
        folder = root / ("cifar-100-binary" if fmt == "binary" else "cifar-100-python")
        batches = {"train": ["train"], "test": ["test"]}
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for split, names in batches.items():
        xs, ys, cs = [], [], []
        for b, name in enumerate(names):
            images = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
            fine = rng.integers(0, which, per_batch).astype(np.int64)
            coarse = fine // 5 if which == 100 else None
            flat = images.reshape(per_batch, 3072)  # R plane, G plane, B plane, each 32x32 row-major
            if fmt == "binary":
                labels = [coarse, fine] if which == 100 else [fine]
                records = np.concatenate([np.stack(labels, 1).astype(np.uint8), flat], axis=1)
                (folder / (name + ".bin")).write_bytes(records.tobytes())
            else:
                batch = {b"batch_label": f"{split} batch {b + 1} of {len(names)}".encode(), b"data": flat,
                         b"filenames": [f"img_{b}_{i}.png".encode() for i in range(per_batch)]}
                if which == 10:
                    batch[b"labels"] = fine.tolist()
                else:
                    batch[b"fine_labels"], batch[b"coarse_labels"] = fine.tolist(), coarse.tolist()
                (folder / name).write_bytes(pickler(batch))
            xs.append(images)
            ys.append(fine)
            cs.append(coarse if coarse is not None else fine)
        expected[split] = (np.concatenate(xs), np.concatenate(ys), np.concatenate(cs))
    if fmt == "binary":
        names = {"batches.meta.txt": CIFAR10_NAMES} if which == 10 else {
            "fine_label_names.txt": CIFAR100_FINE, "coarse_label_names.txt": CIFAR100_COARSE}
        for file, labels in names.items():
            (folder / file).write_text("\n".join(labels) + "\n\n")  # the official files end in blank lines
    elif which == 10:
        meta = {b"num_cases_per_batch": per_batch, b"label_names": [n.encode() for n in CIFAR10_NAMES],
                b"num_vis": 3072}
        (folder / "batches.meta").write_bytes(pickler(meta))
    else:
        meta = {b"fine_label_names": [n.encode() for n in CIFAR100_FINE],
                b"coarse_label_names": [n.encode() for n in CIFAR100_COARSE]}
        (folder / "meta").write_bytes(pickler(meta))
    return expected
