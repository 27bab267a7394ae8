"""CIFAR-10 and CIFAR-100 from either official format, the binary one and the Python-pickle one.

Binary (cifar-10-batches-bin/, cifar-100-binary/): fixed records of label byte(s) then 3072 pixel bytes
(1024 red, 1024 green, 1024 blue, each 32x32 row-major). CIFAR-10 has one label byte; CIFAR-100 two, the
coarse label then the fine one.

Python (cifar-10-batches-py/, cifar-100-python/): each batch is a pickled dict {b"data": uint8 (N, 3072),
b"labels" or b"fine_labels"/b"coarse_labels": list of int, ...}. A pickle can run any code while it loads,
so these files go through a restricted unpickler that only builds plain data: dicts, lists, tuples,
strings, bytes, numbers, and NumPy arrays of plain numeric dtypes. The three globals a NumPy array needs
(``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``) are answered with stand-ins of
ours that only record values; the array is then built with ``np.frombuffer`` after checking its dtype and
size, so no NumPy code ever interprets state a file controls. Any other global is refused before anything
runs.
"""

from __future__ import annotations

import io
import math
import pickle
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cnnkit.data.base import ArrayDataset

RECORD_PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class CifarLayout:
    """Where the official archives put each split, and how labels and class names are stored."""

    name: str
    binary_dir: str
    python_dir: str
    splits: dict          # split -> batch file names (the binary ones add ".bin")
    label_bytes: int      # binary: bytes before the pixels of each record
    label_index: int      # binary: which of those bytes is the label
    binary_meta: str      # binary: class names, one per line
    python_meta: str      # python: pickled dict holding the class names under names_key
    names_key: bytes
    labels_key: bytes


CIFAR10 = CifarLayout("cifar10", "cifar-10-batches-bin", "cifar-10-batches-py",
                      {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
                      1, 0, "batches.meta.txt", "batches.meta", b"label_names", b"labels")
CIFAR100 = CifarLayout("cifar100", "cifar-100-binary", "cifar-100-python",
                       {"train": ["train"], "test": ["test"]},
                       2, 1, "fine_label_names.txt", "meta", b"fine_label_names", b"fine_labels")
# The 20 superclasses: the first label byte of each binary record, the coarse lists of the python format.
CIFAR100_COARSE = replace(CIFAR100, label_index=0, binary_meta="coarse_label_names.txt",
                          names_key=b"coarse_label_names", labels_key=b"coarse_labels")


# ---------------------------------------------------------------------------------------------- binary format
def read_cifar_binary(path, *, label_bytes: int = 1, label_index: int = 0):
    """Records of one binary batch: (images uint8 (N, 3, 32, 32), labels int64 (N,)).

    Args:
        label_bytes: 1 for CIFAR-10, 2 for CIFAR-100 (coarse, fine).
        label_index: which label byte to return (CIFAR-100: 0 coarse, 1 fine).

    Raises:
        ValueError: the size is not a whole number of records (truncated or not a CIFAR batch).
    """
    path = Path(path)
    raw = path.read_bytes()
    record = label_bytes + RECORD_PIXELS
    if not raw or len(raw) % record:
        raise ValueError(f"{path}: size mismatch: {len(raw)} bytes is not a whole number of {record}-byte "
                         f"records ({label_bytes} label byte(s) + 3072 pixels); the file is truncated or not "
                         "a CIFAR binary batch")
    records = np.frombuffer(raw, np.uint8).reshape(-1, record)
    labels = records[:, label_index].astype(np.int64)
    return records[:, label_bytes:].reshape(-1, 3, 32, 32).copy(), labels


# ---------------------------------------------------------------------------------------------- python format
class _NdarrayToken:
    """Stands for ``numpy.ndarray`` inside a pickle. It is not callable: only ``_reconstruct`` accepts it."""

    __slots__ = ()

    def __setstate__(self, state):
        raise pickle.UnpicklingError("numpy.ndarray cannot be modified")

    def __repr__(self):
        return "<numpy.ndarray token>"


_NDARRAY = _NdarrayToken()
_PLAIN_DTYPE = re.compile(r"^[<>|=]?(b1|[iu][1248]|f[248]|c(8|16))$")


class _PendingDtype:
    """Records ``numpy.dtype(spec, align, copy)`` plus the byte order its pickled state gives."""

    __slots__ = ("spec", "byteorder")

    def __init__(self, spec, align=False, copy=False):
        spec = spec.decode("ascii") if isinstance(spec, bytes) else spec
        if not isinstance(spec, str) or not _PLAIN_DTYPE.match(spec):
            raise pickle.UnpicklingError(f"dtype {spec!r} is not allowed; only plain numbers (u1, f4, ...)")
        self.spec, self.byteorder = spec, "="

    def __setstate__(self, state):
        # (version, byteorder, subdtype, names, fields, elsize, alignment, flags[, metadata]): a plain dtype
        # has no subdtype, names or fields; the rest is ignored, so flags from the file never reach NumPy.
        if not isinstance(state, tuple) or len(state) < 5 or any(s is not None for s in state[2:5]):
            raise pickle.UnpicklingError("structured or sub-array dtypes are not allowed")
        order = state[1].decode("ascii") if isinstance(state[1], bytes) else state[1]
        if order not in ("<", ">", "|", "="):
            raise pickle.UnpicklingError(f"bad byte order {order!r} in a dtype")
        self.byteorder = order

    def resolve(self) -> np.dtype:
        dtype = np.dtype(self.spec)
        return dtype if self.byteorder in "|=" else dtype.newbyteorder(self.byteorder)


class _PendingArray:
    """Records an array's pickled state (version, shape, dtype, fortran_order, raw bytes) to check later."""

    __slots__ = ("state",)

    def __init__(self):
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def resolve(self) -> np.ndarray:
        if not (isinstance(self.state, tuple) and len(self.state) == 5):
            raise pickle.UnpicklingError("an array without the (version, shape, dtype, order, data) state")
        _, shape, dtype, fortran, data = self.state
        if not isinstance(dtype, _PendingDtype):
            raise pickle.UnpicklingError("an array whose dtype is not a plain dtype")
        if not isinstance(data, (bytes, bytearray)):
            raise pickle.UnpicklingError("an array whose data is not raw bytes (object arrays are refused)")
        if not (isinstance(shape, tuple) and all(isinstance(s, int) and s >= 0 for s in shape)):
            raise pickle.UnpicklingError(f"bad array shape {shape!r}")
        dtype = dtype.resolve()
        size = math.prod(shape) * dtype.itemsize
        if len(data) != size:
            raise pickle.UnpicklingError(f"size mismatch: an array of shape {shape} and dtype {dtype} needs "
                                         f"{size} bytes, the file holds {len(data)}")
        array = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")
        return array.astype(dtype.newbyteorder("="), order="C")


class _Reconstruct:
    """Stand-in for ``numpy.core.multiarray._reconstruct(ndarray, (0,), b"b")``: an empty placeholder.

    An object rather than a function: a pickle can BUILD (set attributes) on any global it names, and a
    function would accept them; this object, like the token and the dtype class, refuses.
    """

    __slots__ = ()

    def __call__(self, subtype, shape, typecode):
        if subtype is not _NDARRAY or tuple(shape) != (0,) or typecode not in (b"b", "b"):
            raise pickle.UnpicklingError("_reconstruct is only allowed as numpy pickles a plain ndarray")
        return _PendingArray()

    def __setstate__(self, state):
        raise pickle.UnpicklingError("_reconstruct cannot be modified")


_reconstruct = _Reconstruct()
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,   # NumPy 1.x and the official batches
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # NumPy 2.x spelling
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _PendingDtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: only plain data and numeric "
                                         "arrays may be loaded") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not allowed")


def _resolve(value):
    """Replace the placeholders with checked arrays; refuse anything that is not plain data."""
    if isinstance(value, _PendingArray):
        return value.resolve()
    if isinstance(value, dict):
        return {_resolve(k): _resolve(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, bytearray)):
        return value
    raise pickle.UnpicklingError(f"a {type(value).__name__} is not plain data")


def safe_unpickle(path):
    """Load a pickle that holds only plain data (dicts, lists, strings, bytes, numbers, numeric arrays).

    Python 2 strings (the official CIFAR batches) come back as bytes, as with ``encoding="bytes"``.

    Raises:
        ValueError: the file is corrupt or truncated, or asks for anything else (a function, a class, an
            object array): refused before it can run.
    """
    path = Path(path)
    try:
        return _resolve(_RestrictedUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load())
    except (OSError, MemoryError):
        raise
    except Exception as error:
        # A hostile or damaged pickle can fail in many ways (UnpicklingError, EOFError, TypeError, ...);
        # all of them mean the same to the caller: this file is not a plain-data pickle.
        raise ValueError(f"{path}: refused or corrupt pickle: {type(error).__name__}: {error}") from None


def read_cifar_python(path, *, labels_key: bytes = b"labels"):
    """One Python-format batch: (images uint8 (N, 3, 32, 32), labels int64 (N,)), via ``safe_unpickle``."""
    batch = safe_unpickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or labels_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(f"{path}: not a CIFAR python batch: expected a dict with b'data' and "
                         f"{labels_key!r}; found {keys}")
    data, labels = batch[b"data"], batch[labels_key]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == RECORD_PIXELS):
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: b'data' must be uint8 of shape (N, 3072); found {found}")
    if not all(isinstance(v, int) for v in labels) or len(labels) != len(data):
        raise ValueError(f"{path}: size mismatch: {len(data)} images but {len(labels)} {labels_key!r} "
                         "(expected one integer per image)")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


# ---------------------------------------------------------------------------------------------- datasets
def _class_names(folder: Path, layout: CifarLayout, binary: bool) -> list[str]:
    if binary:
        path = folder / layout.binary_meta
        if not path.is_file():
            raise FileNotFoundError(f"{layout.name}: class names {layout.binary_meta} not found in {folder}")
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    path = folder / layout.python_meta
    if not path.is_file():
        raise FileNotFoundError(f"{layout.name}: class names {layout.python_meta} not found in {folder}")
    meta = safe_unpickle(path)
    names = meta.get(layout.names_key) if isinstance(meta, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, (bytes, str)) for n in names):
        raise ValueError(f"{path}: expected a dict with a list of names under {layout.names_key!r}")
    return [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]


def find_cifar(directory, layout: CifarLayout, split: str) -> tuple[Path, bool] | None:
    """(folder, is_binary) holding every batch of the split, looking in directory/<official folder> and
    directory itself; the binary format first (it needs no unpickling)."""
    directory = Path(directory)
    for folder, binary in ((directory / layout.binary_dir, True), (directory / layout.python_dir, False),
                           (directory, True), (directory, False)):
        suffix = ".bin" if binary else ""
        if all((folder / (f + suffix)).is_file() for f in layout.splits[split]):
            return folder, binary
    return None


def load_cifar(directory, split: str, layout: CifarLayout = CIFAR10) -> ArrayDataset:
    """CIFAR-10 or CIFAR-100 (``layout``) of one split, from whichever official format is in ``directory``.

    Raises:
        FileNotFoundError: neither format's files are there.
        ValueError: a batch is truncated, corrupt, refused (pickle) or has labels beyond the class names.
    """
    found = find_cifar(directory, layout, split)
    if found is None:
        files = ", ".join(layout.splits[split])
        raise FileNotFoundError(f"{layout.name}: the {split} batches ({files}) not found in {directory}/"
                                f"{layout.binary_dir} (binary, with .bin) or {directory}/{layout.python_dir}")
    folder, binary = found
    classes = _class_names(folder, layout, binary)
    images, labels = [], []
    for batch in layout.splits[split]:
        if binary:
            x, y = read_cifar_binary(folder / (batch + ".bin"), label_bytes=layout.label_bytes,
                                     label_index=layout.label_index)
        else:
            x, y = read_cifar_python(folder / batch, labels_key=layout.labels_key)
        if y.size and y.max() >= len(classes):
            raise ValueError(f"{folder / batch}: label {y.max()} is out of range for the {len(classes)} "
                             "class names")
        images.append(x)
        labels.append(y)
    name = f"{layout.name}/{split}"
    return ArrayDataset(np.concatenate(images), np.concatenate(labels), classes, name=name)
