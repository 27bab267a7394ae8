"""A small reader and writer of the safetensors format, in NumPy and json only (no torch, no Rust).

The format (https://github.com/huggingface/safetensors) is three parts, and nothing in it can run code:

    8 bytes   N, the header's length, an unsigned little-endian 64-bit integer
    N bytes   a UTF-8 JSON object: {"name": {"dtype": "F32", "shape": [64, 3, 7, 7],
              "data_offsets": [begin, end]}, ..., "__metadata__": {"key": "text"}}
              (the writer pads it with spaces so that the data starts 8-byte aligned)
    the rest  the tensors' raw little-endian bytes, C order; offsets are relative to the start of this
              part, and the tensors cover it exactly: no overlaps, no holes

Everything a file claims is checked before any array is made, so a truncated or malformed file gives a
:class:`SafetensorsError` that says what is wrong instead of a garbage array.

>>> import numpy as np
>>> blob = save({"weight": np.arange(6, dtype=np.float32).reshape(2, 3)}, metadata={"format": "np"})
>>> load(blob)["weight"].tolist()
[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping

import numpy as np

# safetensors dtype codes -> NumPy little-endian dtypes. BF16 has no NumPy type: it is read as float32
# (a bfloat16 is the top half of a float32, so the conversion is exact) and cannot be written.
DTYPES = {
    "BOOL": np.dtype("?"), "U8": np.dtype("u1"), "I8": np.dtype("i1"), "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"), "U32": np.dtype("<u4"), "I32": np.dtype("<i4"), "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"), "F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
}
BF16 = "BF16"
_CODES = {dtype: code for code, dtype in DTYPES.items()}
# The reference implementation refuses headers over 100 MB; a larger length is a corrupt file, and
# checking it first avoids trying to allocate gigabytes for a header that is not there.
MAX_HEADER_BYTES = 100_000_000


class SafetensorsError(ValueError):
    """A safetensors file or buffer is malformed, or a tensor cannot be written in the format."""


def save(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """Serialize named arrays (and optional text metadata) into safetensors bytes.

    Tensors are laid out largest item size first, then by name, as the reference writer does, so every
    array starts aligned to its item size.

    Raises:
        SafetensorsError: a name is not a non-empty string or is "__metadata__", metadata is not
            str -> str, or an array's dtype has no safetensors code (object, complex, ...).
    """
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise SafetensorsError(f"safetensors: tensor names must be non-empty strings other than "
                                   f"'__metadata__', received {name!r}.")
        array = np.asarray(value)
        code = _CODES.get(array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype)
        if code is None:
            raise SafetensorsError(f"safetensors: tensor {name!r} has dtype {array.dtype}, which the format "
                                   f"cannot hold; supported: {', '.join(str(d) for d in DTYPES.values())}.")
        arrays[name] = (code, np.asarray(array, dtype=DTYPES[code], order="C"))  # keeps 0-d arrays 0-d
    header: dict = {}
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise SafetensorsError(f"safetensors: metadata must map str to str, received {dict(metadata)!r}.")
        header["__metadata__"] = dict(metadata)
    order = sorted(arrays, key=lambda n: (-arrays[n][1].itemsize, n))
    offset = 0
    for name in order:
        code, array = arrays[name]
        header[name] = {"dtype": code, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    return b"".join([struct.pack("<Q", len(text)), text, *(arrays[n][1].tobytes() for n in order)])


def save_file(tensors: Mapping[str, np.ndarray], path, metadata: Mapping[str, str] | None = None) -> None:
    """Write named arrays to ``path`` in the safetensors format (see :func:`save`)."""
    blob = save(tensors, metadata)
    with open(path, "wb") as f:
        f.write(blob)


def load(data: bytes | bytearray | memoryview, *, name: str = "safetensors buffer") -> dict[str, np.ndarray]:
    """Parse safetensors bytes into ``{name: array}`` in file order; BF16 tensors come back as float32.

    Raises:
        SafetensorsError: naming the first problem: too short, header length beyond the data, header not
            a UTF-8 JSON object, a bad entry (dtype, shape, offsets), or tensors that overlap, leave holes
            or do not reach the end of the data.
    """
    buffer = data if isinstance(data, bytearray) else bytearray(data)  # writable, so arrays are too
    header, start = _parse_header(buffer, name)
    tensors = {}
    for key, (code, shape, begin, _) in header.items():
        count, offset = math.prod(shape), start + begin
        if code == BF16:
            raw = np.frombuffer(buffer, dtype="<u2", count=count, offset=offset)
            tensors[key] = (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)
            continue
        array = np.frombuffer(buffer, dtype=DTYPES[code], count=count, offset=offset).reshape(shape)
        # Unaligned views work but make every later operation slow; a copy costs one pass.
        tensors[key] = array if array.flags.aligned else array.copy()
    return tensors


def load_file(path) -> dict[str, np.ndarray]:
    """Read a ``.safetensors`` file into ``{name: array}`` (see :func:`load`)."""
    with open(path, "rb") as f:
        return load(bytearray(f.read()), name=os.fspath(path))


def read_metadata(path) -> dict[str, str]:
    """The ``__metadata__`` text of a file (an empty dict when it has none), reading only the header."""
    with open(path, "rb") as f:
        prefix = f.read(8)
        length = _header_length(prefix, os.path.getsize(path), os.fspath(path))
        header = _decode_json(f.read(length), os.fspath(path))
    return _check_metadata(header.get("__metadata__", {}), os.fspath(path))


def _header_length(prefix: bytes, total: int, name: str) -> int:
    if len(prefix) < 8:
        raise SafetensorsError(f"{name}: {total} bytes is too short for a safetensors file, which starts "
                               f"with an 8-byte header length.")
    (length,) = struct.unpack("<Q", prefix[:8])
    if length > MAX_HEADER_BYTES or 8 + length > total:
        raise SafetensorsError(f"{name}: the header claims {length} bytes but the file has {total - 8} after "
                               f"the length field; the file is truncated or not safetensors.")
    return length


def _decode_json(raw: bytes, name: str) -> dict:
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise SafetensorsError(f"{name}: the header repeats the key(s) "
                                   f"{sorted({k for k in keys if keys.count(k) > 1})}.")
        return dict(pairs)

    try:
        header = json.loads(bytes(raw).decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{name}: the header is not valid UTF-8 JSON ({e}).") from e
    if not isinstance(header, dict):
        raise SafetensorsError(f"{name}: the header must be a JSON object, received {type(header).__name__}.")
    return header


def _check_metadata(metadata, name: str) -> dict[str, str]:
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{name}: __metadata__ must be an object of strings, received {metadata!r}.")
    return metadata


def _parse_header(buffer: bytearray, name: str):
    """Validate the header against the data; returns ({key: (code, shape, begin, end)}, data start)."""
    length = _header_length(bytes(buffer[:8]), len(buffer), name)
    header = _decode_json(buffer[8:8 + length], name)
    _check_metadata(header.pop("__metadata__", {}), name)
    start, size = 8 + length, len(buffer) - 8 - length
    entries = {}
    for key, info in header.items():
        where = f"{name}: tensor {key!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"{where}: expected exactly the fields dtype, shape, data_offsets, "
                                   f"received {info!r}.")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if code not in DTYPES and code != BF16:
            raise SafetensorsError(f"{where}: dtype {code!r} is not supported; supported: "
                                   f"{', '.join([*DTYPES, BF16])}.")
        if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
            raise SafetensorsError(f"{where}: shape must be a list of non-negative ints, received {shape!r}.")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(n) for n in offsets)
                and offsets[0] <= offsets[1]):
            raise SafetensorsError(f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end, "
                                   f"received {offsets!r}.")
        itemsize = 2 if code == BF16 else DTYPES[code].itemsize
        nbytes = math.prod(shape) * itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise SafetensorsError(f"{where}: shape {shape} of {code} needs {nbytes} bytes but data_offsets "
                                   f"{offsets} span {offsets[1] - offsets[0]}.")
        if offsets[1] > size:
            raise SafetensorsError(f"{where}: data_offsets {offsets} reach beyond the {size} data bytes; "
                                   f"the file is truncated.")
        entries[key] = (code, tuple(shape), offsets[0], offsets[1])
    # The format requires the tensors to tile the data exactly: sorted by offset, each starts where the
    # previous one ended and the last ends at the end of the file.
    position = 0
    for key, (_, _, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if begin != position:
            problem = ("overlaps the previous tensor" if begin < position
                       else f"leaves a hole at byte {position}")
            raise SafetensorsError(f"{name}: tensor {key!r} at data_offsets [{begin}, {end}] {problem}.")
        position = end
    if position != size:
        raise SafetensorsError(f"{name}: the tensors cover {position} bytes but the data has {size}; "
                               f"{size - position} trailing bytes belong to no tensor.")
    return dict(sorted(entries.items(), key=lambda item: item[1][2:])), start


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
