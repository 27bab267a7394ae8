"""MNIST and Fashion-MNIST: the IDX format of LeCun's files, gzipped or raw.

An IDX file is a header and then the values, big-endian:
    bytes 0-1  zero
    byte 2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte 3     number of dimensions d;  then d sizes as 4-byte unsigned integers;  then prod(sizes) values.
Every way a file can be wrong (bad magic number, truncated, extra bytes, broken gzip) is a ValueError that
names the file, never a NumPy traceback from deep inside a reshape.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from cnnkit.data.base import ArrayDataset

_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]

# The standard file names; "train-images-idx3-ubyte" may also appear as "train-images.idx3-ubyte" (raw files
# from some mirrors) and either may end in .gz.
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_bytes(path) -> bytes:
    """The file's content, gunzipped if it starts with the gzip magic bytes (whatever its name says)."""
    path = Path(path)
    with path.open("rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    if not gzipped:
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({error})") from None


def parse_idx(raw: bytes, source="<bytes>") -> np.ndarray:
    """Decode an IDX byte string into an array of its own shape and (native-endian) dtype.

    >>> parse_idx(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]))
    array([[1, 2, 3],
           [4, 5, 6]], dtype=uint8)
    """
    if len(raw) < 4:
        raise ValueError(f"{source}: truncated IDX file: {len(raw)} bytes, the header alone needs 4 or more")
    code, ndim = raw[2], raw[3]
    if raw[:2] != b"\0\0" or code not in _IDX_TYPES:
        raise ValueError(f"{source}: bad magic number 0x{raw[:4].hex()}; an IDX file starts with 00 00, a "
                         "type code (08 uint8, 09, 0b, 0c, 0d, 0e) and the number of dimensions: is it an "
                         "IDX file?")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{source}: truncated IDX header: {ndim} dimensions need {header} bytes, "
                         f"the file has {len(raw)}")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[code])
    expected, found = math.prod(shape) * dtype.itemsize, len(raw) - header
    if found < expected:
        raise ValueError(f"{source}: truncated: the header promises {'x'.join(map(str, shape))} values of "
                         f"{dtype.name} ({expected} bytes) but only {found} bytes follow it")
    if found > expected:
        raise ValueError(f"{source}: size mismatch: {found - expected} unexpected bytes after the "
                         f"{'x'.join(map(str, shape))} values the header promises")
    values = np.frombuffer(raw, dtype, count=math.prod(shape), offset=header)
    return values.reshape(shape).astype(dtype.newbyteorder("="))  # a native-endian, writable copy


def read_idx(path) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into an array.

    Raises:
        FileNotFoundError: no such file.
        ValueError: bad magic number, truncated or oversized data, broken gzip; the message names the file.
    """
    return parse_idx(read_bytes(path), path)


def find_idx_file(directory, stem: str) -> Path | None:
    """The first of stem.gz, stem and the dotted spelling (train-images.idx3-ubyte) found in directory."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem + ".gz", stem, dotted + ".gz", dotted):
        if (Path(directory) / name).is_file():
            return Path(directory) / name
    return None


def load_idx_dataset(directory, split: str, classes, *, name: str = "mnist") -> ArrayDataset:
    """Images and labels of one split from ``directory`` as an ArrayDataset of (N, 1, 28, 28) uint8.

    Raises:
        FileNotFoundError: a file of the split is missing (the message lists the names looked for).
        ValueError: a file is corrupt, or images and labels do not match.
    """
    paths = []
    for stem in IDX_FILES[split]:
        path = find_idx_file(directory, stem)
        if path is None:
            raise FileNotFoundError(f"{name}: {stem}.gz (or {stem}) not found in {directory}")
        paths.append(path)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{paths[0]}: expected uint8 images of shape (N, H, W); "
                         f"found {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{paths[1]}: expected uint8 labels of shape (N,); "
                         f"found {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{name}/{split}: size mismatch: {paths[0].name} holds {len(images)} images but "
                         f"{paths[1].name} holds {len(labels)} labels")
    if labels.size and labels.max() >= len(classes):
        raise ValueError(f"{paths[1]}: label {labels.max()} is out of range for {len(classes)} classes")
    return ArrayDataset(images[:, None], labels, classes, name=f"{name}/{split}")
