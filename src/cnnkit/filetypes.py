"""What a file is, from its first bytes, so that a wrong file gets named instead of "corrupt".

A PNG passed where a checkpoint goes should say "this is a PNG image, not a cnnkit checkpoint (.npz)", not
fail inside the zip reader. :func:`describe` reads at most a few kilobytes and never parses the file: it
looks for the signature every common format starts with, looks inside zip files for what they hold (an
``.npz`` holds ``.npy`` members, a PyTorch ``.pt`` a ``data.pkl``), and calls what decodes as UTF-8 text.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

NPZ = "a NumPy .npz archive"
DAMAGED_ZIP = "a damaged zip archive"  # often a truncated .npz: its reader says more

# (offset, signature, description), in the order they are tried.
_SIGNATURES = (
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF87a", "a GIF image"),
    (0, b"GIF89a", "a GIF image"),
    (8, b"WEBP", "a WebP image"),
    (0, b"II*\x00", "a TIFF image"),
    (0, b"MM\x00*", "a TIFF image"),
    (0, b"%PDF", "a PDF document"),
    (0, b"\x93NUMPY", "a single NumPy array (.npy)"),
    (0, b"\x89HDF\r\n\x1a\n", "an HDF5 file (a Keras .h5 model?)"),
    (0, b"\x1f\x8b", "a gzip-compressed file"),
    (0, b"BZh", "a bzip2-compressed file"),
    (0, b"\xfd7zXZ\x00", "an xz-compressed file"),
)
_IMAGES = frozenset(d for _, _, d in _SIGNATURES if d.endswith("image")) | {"a BMP image"}


def describe(path) -> str:
    """A short noun phrase for what ``path`` holds: "a PNG image", "a text file", NPZ, ...

    Raises:
        OSError: the file cannot be read (missing, a directory, no permission).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "notes.txt"
    >>> _ = path.write_text("hello")
    >>> describe(path)
    'a text file'
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head:
        return "an empty file"
    for offset, signature, what in _SIGNATURES:
        if head[offset:offset + len(signature)] == signature:
            return what
    if head[:2] == b"BM" and len(head) >= 14 and struct.unpack("<I", head[2:6])[0] == path.stat().st_size:
        return "a BMP image"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip_contents(path)
    if head[:1] == b"\x80" and 2 <= head[1:2][0] <= 5:
        return "pickle data (a Python pickle)"
    if _is_safetensors(head):
        return "a safetensors file"
    if path.suffix.lower() == ".onnx" and head[:1] == b"\x08":
        return "an ONNX model"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:  # a multi-byte character cut at the end of the 4 KB is still text
        text = head[:e.start].decode("utf-8") if e.start > len(head) - 4 else None
    if text is not None and "\x00" not in text:
        return "a text file"
    return "binary data of an unknown kind"


def is_image(what: str) -> bool:
    """Whether a :func:`describe` answer names an image format."""
    return what in _IMAGES


def _zip_contents(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError):
        return DAMAGED_ZIP
    if names and all(name.endswith(".npy") for name in names):
        return NPZ
    if any(name.endswith("data.pkl") for name in names):
        return "a PyTorch file (torch.save)"
    if not names:
        return "an empty zip archive"
    return "a zip archive"


def _is_safetensors(head: bytes) -> bool:
    """8 bytes of little-endian header length, then that many bytes of JSON."""
    if len(head) < 10 or head[8:9] != b"{":
        return False
    size = struct.unpack("<Q", head[:8])[0]
    if size > 100_000_000:
        return False
    if size + 8 > len(head):
        return True  # the JSON header goes on past what was read
    try:
        json.loads(head[8:8 + size])
    except ValueError:
        return False
    return True
