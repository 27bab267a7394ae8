"""The pure-NumPy safetensors reader/writer: round trips, agreement with the reference package, bad files."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from cnnkit.interop.safetensors import SafetensorsError, load, load_file, read_metadata, save, save_file


def _tensors(rng):
    return {
        "conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "bn.num_batches_tracked": np.array(7, dtype=np.int64),
        "half": rng.standard_normal(5).astype(np.float16),
        "double": rng.standard_normal((2, 2)),
        "bytes": np.arange(3, dtype=np.uint8),
        "mask": np.array([True, False]),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }


def _blob(header: dict, data: bytes = b"", pad: bool = True) -> bytes:
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def test_round_trip_keeps_values_dtypes_and_shapes(tmp_path, rng):
    tensors = _tensors(rng)
    save_file(tensors, tmp_path / "t.safetensors", metadata={"format": "cnnkit"})
    back = load_file(tmp_path / "t.safetensors")
    assert set(back) == set(tensors)
    for key, value in tensors.items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape, key
        np.testing.assert_array_equal(back[key], value)
    assert read_metadata(tmp_path / "t.safetensors") == {"format": "cnnkit"}
    assert back["conv.weight"].flags.writeable and back["conv.weight"].flags.aligned


def test_layout_is_aligned_and_tiles_the_data(rng):
    blob = save(_tensors(rng))
    (length,) = struct.unpack("<Q", blob[:8])
    assert (8 + length) % 8 == 0  # the header is padded so the data starts 8-byte aligned
    header = json.loads(blob[8:8 + length])
    spans = sorted(tuple(v["data_offsets"]) for v in header.values())
    assert spans[0][0] == 0 and spans[-1][1] == len(blob) - 8 - length
    assert all(a[1] == b[0] for a, b in zip(spans[:-1], spans[1:], strict=True))
    # largest item size first, so every tensor starts aligned to its own item size
    assert all(v["data_offsets"][0] % np.dtype(np.asarray(_tensors(rng)[k]).dtype).itemsize == 0
               for k, v in header.items())


def test_agrees_with_the_reference_package_both_ways(tmp_path, rng):
    st = pytest.importorskip("safetensors.numpy")
    tensors = _tensors(rng)
    ours = load(st.save(tensors, metadata={"a": "b"}))
    for key, value in tensors.items():
        np.testing.assert_array_equal(ours[key], value)
    theirs = st.load(save(tensors))
    for key, value in tensors.items():
        np.testing.assert_array_equal(theirs[key], value)
        assert theirs[key].dtype == value.dtype


def test_bf16_is_read_exactly_as_float32():
    values = np.array([1.0, -2.5, 3.140625], dtype=np.float32)  # exactly representable in bfloat16
    raw = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    blob = _blob({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}, raw)
    out = load(blob)["w"]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, values)


def test_big_endian_input_is_written_little_endian():
    values = np.arange(4, dtype=">f4")
    back = load(save({"w": values}))["w"]
    assert back.dtype == np.dtype("<f4")
    np.testing.assert_array_equal(back, [0, 1, 2, 3])


@pytest.mark.parametrize("blob, match", [
    (b"\x01\x02", "too short"),
    (struct.pack("<Q", 1000) + b"{}", "header claims 1000 bytes"),
    (struct.pack("<Q", 2**63) + b"{}", "truncated or not safetensors"),
    (struct.pack("<Q", 4) + b"\xff\xfe{}", "not valid UTF-8 JSON"),
    (struct.pack("<Q", 5) + b"{nope", "not valid UTF-8 JSON"),
    (struct.pack("<Q", 2) + b"[]", "must be a JSON object"),
    (struct.pack("<Q", 29) + b'{"a": {"x": 1}, "a": {"y": 2}}'[:29], "not valid UTF-8 JSON|repeats"),
])
def test_malformed_headers_are_refused(blob, match):
    with pytest.raises(SafetensorsError, match=match):
        load(blob)


def test_duplicate_keys_are_refused():
    entry = '{"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}'
    text = ('{"a": ' + entry + ', "a": ' + entry + "}").encode()
    with pytest.raises(SafetensorsError, match=r"repeats the key\(s\) \['a'\]"):
        load(struct.pack("<Q", len(text)) + text + b"\x00")


@pytest.mark.parametrize("entry, data, match", [
    ({"dtype": "F32", "shape": [2]}, b"", "exactly the fields"),
    ({"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}, b"\x00", "dtype 'F8_E4M3' is not supported"),
    ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}, b"\x00" * 4, "non-negative ints"),
    ({"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}, b"\x00" * 4, "non-negative ints"),
    ({"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}, b"\x00" * 4, r"0 <= begin <= end"),
    ({"dtype": "F32", "shape": [1], "data_offsets": [0]}, b"\x00" * 4, r"\[begin, end\]"),
    ({"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 8]}, b"\x00" * 8, "needs 16 bytes but"),
    ({"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, b"\x00" * 8, "truncated"),
    ({"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, b"\x00" * 6, "2 trailing bytes"),
    ({"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}, b"\x00" * 8, "leaves a hole at byte 0"),
])
def test_malformed_entries_are_refused(entry, data, match):
    with pytest.raises(SafetensorsError, match=match):
        load(_blob({"w": entry}, data))


def test_overlapping_tensors_are_refused():
    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
              "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}
    with pytest.raises(SafetensorsError, match="'b' at data_offsets \\[4, 8\\] overlaps"):
        load(_blob(header, b"\x00" * 8))


def test_bad_metadata_is_refused(tmp_path):
    with pytest.raises(SafetensorsError, match="__metadata__ must be an object of strings"):
        load(_blob({"__metadata__": {"epochs": 3}}))
    with pytest.raises(SafetensorsError, match="metadata must map str to str"):
        save({}, metadata={"epochs": 3})


def test_writer_refuses_what_the_format_cannot_hold():
    with pytest.raises(SafetensorsError, match="dtype complex64"):
        save({"z": np.zeros(2, dtype=np.complex64)})
    with pytest.raises(SafetensorsError, match="tensor names must be non-empty strings"):
        save({"__metadata__": np.zeros(1)})


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x00\x01")
    with pytest.raises(SafetensorsError, match="broken.safetensors"):
        load_file(path)
