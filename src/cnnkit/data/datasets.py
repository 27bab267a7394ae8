"""``load(name, split, root)``: one entry point for every dataset cnnkit reads.

Where the files live: ``root=`` if given, else the ``CNNKIT_DATA`` environment variable, else
``~/.cache/cnnkit``. Each dataset has its folder below it (``<root>/mnist/``, ``<root>/cifar10/``, ...);
a root that holds the files directly works too. ``download=True`` fetches whatever is missing from the
official sources, checks each file's MD5 and writes atomically.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.data.base import ArrayDataset
from cnnkit.data.cifar import CIFAR10, CIFAR100, CIFAR100_COARSE, find_cifar, load_cifar
from cnnkit.data.download import DownloadError, extract_tar, fetch
from cnnkit.data.idx import FASHION_MNIST_CLASSES, IDX_FILES, MNIST_CLASSES, find_idx_file, load_idx_dataset

SPLITS = ("train", "test")
EMBEDDED_PATH = Path(__file__).resolve().parent / "embedded" / "mnist_subset.npz"
EMBEDDED_COUNTS = {"train": 10_000, "test": 2_000}


@dataclass(frozen=True)
class Source:
    """Official files of a dataset: the folder under the data root, mirrors tried in order, and file MD5s."""

    folder: str
    mirrors: tuple[str, ...]
    files: dict  # file name -> MD5 of the file as served
    archive: bool = False  # True: the files are tar archives to unpack into the folder


SOURCES = {
    "mnist": Source("mnist", ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
                    {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                     "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                     "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                     "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}),
    "fashion-mnist": Source("fashion-mnist", ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
                            {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                             "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                             "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                             "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}),
    # The binary versions: reading them needs no unpickling at all.
    "cifar10": Source("cifar10", ("https://www.cs.toronto.edu/~kriz/",),
                      {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"}, archive=True),
    "cifar100": Source("cifar100", ("https://www.cs.toronto.edu/~kriz/",),
                       {"cifar-100-binary.tar.gz": "03b5dce01913d631647c71ecec9e9cb8"}, archive=True),
}
NAMES = ("mnist", "fashion-mnist", "cifar10", "cifar100", "embedded")


class MissingData(FileNotFoundError):
    """A dataset's files are not where ``load`` looks; ``name``, ``split``, ``folder`` and ``by_hand`` (what
    to put where) let a caller word its own advice (the command line names its options, not root=)."""

    def __init__(self, message: str, *, name: str, split: str, folder: Path, by_hand: str):
        super().__init__(message)
        self.name, self.split, self.folder, self.by_hand = name, split, folder, by_hand
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10",
            "cifar-100": "cifar100"}


def data_root(root=None) -> Path:
    """The folder datasets are read from: ``root``, else $CNNKIT_DATA, else ~/.cache/cnnkit."""
    if root is None:
        root = os.environ.get("CNNKIT_DATA") or Path.home() / ".cache" / "cnnkit"
    return Path(root).expanduser()


def _present(name: str, directory: Path, split: str) -> bool:
    if name in ("mnist", "fashion-mnist"):
        return all(find_idx_file(directory, stem) for stem in IDX_FILES[split])
    return find_cifar(directory, CIFAR10 if name == "cifar10" else CIFAR100, split) is not None


def by_hand(name: str, base: Path) -> str:
    """'put train-images-idx3-ubyte.gz, ... (from https://...) in <base>/mnist': the files, by hand."""
    source = SOURCES[name]
    unpack = " and unpack it there" if source.archive else ""
    return f"put {', '.join(source.files)} (from {source.mirrors[0]}) in {base / source.folder}{unpack}"


def _where_to_put(name: str, base: Path) -> str:
    return (f"{by_hand(name, base)}, or point root= or the CNNKIT_DATA environment variable at the folder "
            f"that holds them")


def fetch_dataset(name: str, root=None, *, progress=None) -> Path:
    """Fetch the official files of ``name`` that are missing into ``<root>/<name>/``; returns that folder.

    ``progress(file, done, total)`` is called as each file arrives (see :func:`cnnkit.data.fetch`).

    Raises:
        DownloadError: no network or a bad checksum; the message says where to put the files by hand, and
            the error's ``reasons`` and ``by_hand`` hold the two parts.
    """
    name = _ALIASES.get(name, name)
    if name not in SOURCES:
        raise ValueError(f"fetch_dataset: received name={name!r}; expected one of {sorted(SOURCES)}")
    base = data_root(root)
    source = SOURCES[name]
    folder = base / source.folder
    for file, md5 in source.files.items():
        if not source.archive and (folder / file).is_file():
            continue
        errors = []
        for mirror in source.mirrors:
            try:
                report = None if progress is None else functools.partial(progress, file)
                fetch(mirror + file, folder / file, md5, progress=report)
                break
            except DownloadError as error:
                errors.append(str(error))
        else:
            error = DownloadError("; ".join(errors) + f".\nWithout a network, {_where_to_put(name, base)}.")
            error.reasons, error.by_hand = "; ".join(errors), by_hand(name, base)
            raise error
        if source.archive:
            extract_tar(folder / file, folder)
            (folder / file).unlink()
    return folder


def load_embedded(split: str = "train", path=EMBEDDED_PATH) -> ArrayDataset:
    """The MNIST subset shipped inside cnnkit (the first 10,000 training and 2,000 test images), offline.

    Raises:
        ValueError: the .npz file is corrupt, truncated, or lacks the expected arrays.
    """
    from cnnkit.data.npz import read_npz

    keys = (f"{split}_images", f"{split}_labels")
    arrays = read_npz(path, keys)
    images, labels = arrays[keys[0]], arrays[keys[1]]
    if images.dtype != np.uint8 or images.ndim != 3 or labels.shape != (len(images),):
        raise ValueError(f"{path}: {keys[0]} must be uint8 (N, H, W) and {keys[1]} (N,); found "
                         f"{images.dtype} {images.shape} and {labels.shape}")
    return ArrayDataset(images[:, None], labels, MNIST_CLASSES, name=f"embedded/{split}")


def load(name, split: str = "train", root=None, *, download: bool = False, progress=None,
         **options) -> ArrayDataset:
    """Read a dataset split into memory.

    Args:
        name: "mnist", "fashion-mnist", "cifar10", "cifar100", "embedded" (the MNIST subset shipped in the
            package, no files needed) or the path of an image folder (``<path>/<class>/*.png``).
        split: "train" or "test".
        root: the data folder; default $CNNKIT_DATA, else ~/.cache/cnnkit.
        download: fetch missing official files first (checksummed, atomic).
        progress: with ``download``, called as ``progress(file, done_bytes, total_bytes)``.
        options: for "cifar100", ``coarse=True`` gives the 20 superclasses; for an image folder, ``size`` and
            ``channels`` (see ``load_image_folder``).

    Returns:
        ArrayDataset: images uint8 (N, C, H, W), labels int64 (N,), classes list[str].

    Raises:
        ValueError: unknown name or split; corrupt files.
        MissingData (a FileNotFoundError): the files are not there (the message says where to put them).
        DownloadError: download=True without a network or with a bad checksum.

    >>> ds = load("embedded", "test")
    >>> ds.images.shape, ds.images.dtype, ds.labels[:5].tolist(), ds.classes[:3]
    ((2000, 1, 28, 28), dtype('uint8'), [7, 2, 1, 0, 4], ['0', '1', '2'])
    """
    if split not in SPLITS:
        raise ValueError(f"load({name!r}): received split={split!r}; expected one of {SPLITS}")
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key == "embedded":
        return load_embedded(split, **options)
    if key not in SOURCES:
        if Path(name).expanduser().is_dir():
            from cnnkit.data.imagefolder import load_image_folder

            return load_image_folder(Path(name).expanduser(), split, **options)
        raise ValueError(f"load: received name={name!r}; expected one of {NAMES} or the path of an image "
                         f"folder (no folder {name!r} exists)")
    base = data_root(root)
    candidates = [base / SOURCES[key].folder, base]
    found = next((d for d in candidates if _present(key, d, split)), None)
    if found is None and download:
        fetch_dataset(key, base, progress=progress)
        found = next((d for d in candidates if _present(key, d, split)), None)
    if found is None:
        raise MissingData(f"{key}: the {split} files are not in {candidates[0]} or {base}; "
                          f"{_where_to_put(key, base)}; or pass download=True with a network.",
                          name=key, split=split, folder=candidates[0], by_hand=by_hand(key, base))
    if key in ("mnist", "fashion-mnist"):
        classes = MNIST_CLASSES if key == "mnist" else FASHION_MNIST_CLASSES
        return load_idx_dataset(found, split, classes, name=key, **options)
    layout = CIFAR10 if key == "cifar10" else (CIFAR100_COARSE if options.pop("coarse", False) else CIFAR100)
    return load_cifar(found, split, layout, **options)
