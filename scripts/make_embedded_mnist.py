"""Build src/cnnkit/data/embedded/mnist_subset.npz: the MNIST subset shipped inside cnnkit.

The first 10,000 training and the first 2,000 test images of the official MNIST files (LeCun, Cortes and
Burges; CC BY-SA 3.0), as uint8 arrays train_images (10000, 28, 28), train_labels (10000,), test_images
(2000, 28, 28), test_labels (2000,), compressed with np.savez_compressed.

Reproducible: the MD5 of every uncompressed source file is checked against the official value, and the zip
entries get a fixed timestamp (np.savez_compressed stamps the current time), so the same zlib gives the same
bytes on every run.

    python scripts/make_embedded_mnist.py [SOURCE_DIR] [--out PATH]   # default ../shared/datasets/mnist
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cnnkit.data.idx import find_idx_file, parse_idx, read_bytes  # noqa: E402 -- after the src path is known

DEFAULT_SOURCE = ROOT.parent / "shared" / "datasets" / "mnist"
DEFAULT_OUT = ROOT / "src" / "cnnkit" / "data" / "embedded" / "mnist_subset.npz"
COUNTS = {"train": 10_000, "test": 2_000}
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# MD5 of the uncompressed official files (the same whatever gzip wrapping a mirror uses).
MD5 = {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
       "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
       "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
       "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold


def subset_arrays(source) -> dict[str, np.ndarray]:
    """The four arrays of the subset, after checking each source file's MD5."""
    arrays = {}
    for split, (images_stem, labels_stem) in FILES.items():
        for kind, stem in (("images", images_stem), ("labels", labels_stem)):
            path = find_idx_file(source, stem)
            if path is None:
                raise FileNotFoundError(f"{stem}(.gz) not found in {source}")
            raw = read_bytes(path)
            md5 = hashlib.md5(raw, usedforsecurity=False).hexdigest()
            if md5 != MD5[stem]:
                raise ValueError(f"{path}: MD5 of the uncompressed content is {md5}, expected {MD5[stem]}: "
                                 "not the official MNIST file")
            arrays[f"{split}_{kind}"] = np.ascontiguousarray(parse_idx(raw, path)[:COUNTS[split]])
    return arrays


def build(source=DEFAULT_SOURCE, out=DEFAULT_OUT) -> Path:
    """Write the subset to ``out`` atomically; returns ``out``."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **subset_arrays(source))
    out = Path(out)
    temporary = out.with_name(out.name + ".part")
    with zipfile.ZipFile(buffer) as packed, zipfile.ZipFile(temporary, "w") as fixed:
        for entry in packed.infolist():
            info = zipfile.ZipInfo(entry.filename, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            fixed.writestr(info, packed.read(entry.filename))
    os.replace(temporary, out)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default=DEFAULT_SOURCE, type=Path,
                        help="folder of the MNIST files")
    parser.add_argument("--out", default=DEFAULT_OUT, type=Path, help="the .npz to write")
    args = parser.parse_args(argv)
    out = build(args.source, args.out)
    sha256 = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"wrote {out} ({out.stat().st_size:,} bytes, sha256 {sha256})")


if __name__ == "__main__":
    main()
