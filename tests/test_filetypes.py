"""filetypes.describe: what a file is, from its first bytes, for messages that name a wrong file."""

from __future__ import annotations

import gzip
import pickle
import zipfile

import numpy as np
import pytest

from cnnkit.filetypes import DAMAGED_ZIP, NPZ, describe, is_image


def test_images_documents_and_archives(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    for fmt, what in (("PNG", "a PNG image"), ("JPEG", "a JPEG image"), ("GIF", "a GIF image"),
                      ("BMP", "a BMP image"), ("TIFF", "a TIFF image"), ("WEBP", "a WebP image")):
        path = tmp_path / f"picture.{fmt.lower()}"
        Image.new("RGB", (8, 8)).save(path, format=fmt)
        assert describe(path) == what and is_image(what)
    (tmp_path / "notes.txt").write_text("epoch 1: 97.5%\n")
    assert describe(tmp_path / "notes.txt") == "a text file" and not is_image("a text file")
    (tmp_path / "empty.npz").write_bytes(b"")
    assert describe(tmp_path / "empty.npz") == "an empty file"
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.7\n...")
    assert describe(tmp_path / "doc.pdf") == "a PDF document"
    (tmp_path / "data.gz").write_bytes(gzip.compress(b"x" * 100))
    assert describe(tmp_path / "data.gz") == "a gzip-compressed file"
    (tmp_path / "state.pkl").write_bytes(pickle.dumps({"w": [1, 2]}))
    assert describe(tmp_path / "state.pkl").startswith("pickle data")
    (tmp_path / "noise.bin").write_bytes(bytes(range(256)) * 4)
    assert describe(tmp_path / "noise.bin") == "binary data of an unknown kind"


def test_numpy_zip_and_model_files(tmp_path):
    np.save(tmp_path / "one.npy", np.ones(3))
    assert describe(tmp_path / "one.npy") == "a single NumPy array (.npy)"
    np.savez(tmp_path / "many.npz", a=np.ones(3), b=np.zeros(2))
    assert describe(tmp_path / "many.npz") == NPZ
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.md", "hello")
    assert describe(tmp_path / "other.zip") == "a zip archive"
    (tmp_path / "cut.npz").write_bytes((tmp_path / "many.npz").read_bytes()[:40])
    assert describe(tmp_path / "cut.npz") == DAMAGED_ZIP
    from cnnkit.interop.safetensors import save_file

    save_file({"w": np.ones((2, 2), np.float32)}, tmp_path / "w.safetensors")
    assert describe(tmp_path / "w.safetensors") == "a safetensors file"


def test_a_pytorch_file_is_named(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "weights.pt")
    assert describe(tmp_path / "weights.pt") == "a PyTorch file (torch.save)"


def test_unreadable_paths_raise_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        describe(tmp_path / "missing")
    with pytest.raises(IsADirectoryError):
        describe(tmp_path)
