"""The branch-free selections of cnnkit.fast.activation give np.where's bits; the fast leaky ReLU
(a max for slopes in [0, 1]) and its general path agree with the definition."""

import numpy as np
import pytest

from cnnkit.fast import activation as F
from cnnkit.fast.norm import _channel_sum

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.5, np.finfo(np.float32).tiny]


def _bits(a):
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64])
def test_keep_where_and_select_are_np_where_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    values = np.array(SPECIAL if np.dtype(dtype).kind == "f" else [3, -4, 0, 7], dtype=dtype)
    a = rng.choice(values, (4, 5, 6)).astype(dtype)
    b = rng.choice(values, (4, 5, 6)).astype(dtype)
    mask = rng.random((4, 5, 6)) > 0.5
    np.testing.assert_array_equal(_bits(F.keep_where(mask, a)), _bits(np.where(mask, a, 0).astype(dtype)))
    np.testing.assert_array_equal(_bits(F.select(mask, a, b)), _bits(np.where(mask, a, b)))


def test_keep_where_into_a_strided_view_and_other_dtypes():
    a = np.arange(12, dtype=np.float32).reshape(3, 4) - 5
    mask = a > 0
    out = np.full((3, 8), 7, np.float32)
    F.keep_where(mask, a, out=out[:, ::2])
    np.testing.assert_array_equal(out[:, ::2], np.where(mask, a, 0))
    assert (out[:, 1::2] == 7).all()
    c = a.astype(np.complex128)  # no unsigned integer of 16 bytes: falls back to np.where
    np.testing.assert_array_equal(F.keep_where(mask, c), np.where(mask, c, 0))
    np.testing.assert_array_equal(F.select(mask, c, -c), np.where(mask, c, -c))


def test_select_casts_to_the_first_dtype():
    a = np.array([1.0, 2.0], np.float32)
    y = F.select(np.array([True, False]), a, np.array([0.1, 0.2], np.float64))
    assert y.dtype == np.float32 and y.tolist() == [1.0, np.float32(0.2)]


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.5, 1.0, 2.0, -0.3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leaky_relu_fast_and_general_paths_match_the_definition(slope, dtype):
    x = np.array(SPECIAL + [-1e30, 1e30, 3.0, -7.0], dtype)
    dy = np.linspace(-2, 2, x.size).astype(dtype)
    with np.errstate(invalid="ignore"):  # inf * 0 (slope 0), as np.where's second branch computes too
        y, cache = F.leaky_relu(x, slope)
        expected = np.where(x > 0, x, x * dtype(slope))
    assert y.dtype == dtype
    np.testing.assert_array_equal(_bits(y[~np.isnan(x)]), _bits(expected[~np.isnan(x)]))
    assert np.isnan(y[np.isnan(x)]).all()
    np.testing.assert_array_equal(F.leaky_relu_backward(dy, cache), np.where(x > 0, dy, dy * dtype(slope)))
    assert y[x == np.inf].tolist() == [np.inf]


def test_channel_sum_is_the_same_for_any_memory_order():
    x = np.random.default_rng(1).standard_normal((3, 4, 5, 6))
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(_channel_sum(x), x.sum(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(_channel_sum(nhwc, x), (x * x).sum(axis=(0, 2, 3)), rtol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("last", [False, True])
def test_relu_in_batch_chunks_is_bitwise_the_whole_array_result(threads, last):
    """Arrays of RELU_CHUNKED_ELEMENTS or more go through in batch chunks, maybe on threads: same bits, same
    memory order as the input, NaN kept, -0.0 and the gradient at 0 as for small arrays."""
    from cnnkit.fast import activation as A
    from cnnkit.layout import channels_last, is_channels_last
    from cnnkit.runtime import set_elementwise_threads

    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 8, 96, 64)).astype(np.float32)
    assert x.size >= A.RELU_CHUNKED_ELEMENTS
    x[0, 0, 0, :4] = [np.nan, -0.0, 0.0, np.inf]
    x = channels_last(x) if last else x
    dy = rng.standard_normal(x.shape).astype(np.float32)
    set_elementwise_threads(threads)
    try:
        y, mask = A.relu(x)
        dx = A.relu_backward(dy, mask)
    finally:
        set_elementwise_threads(1)
    np.testing.assert_array_equal(y.view(np.uint32), np.maximum(x, 0).view(np.uint32))
    np.testing.assert_array_equal(mask, x > 0)
    np.testing.assert_array_equal(dx.view(np.uint32), np.where(x > 0, dy, np.float32(0)).view(np.uint32))
    assert is_channels_last(y) == last and is_channels_last(dx) == (last and is_channels_last(dy))


@pytest.mark.parametrize("shape", [(20, 16, 32, 32), (3, 24, 30, 30), (2, 5, 7, 9)])  # 32x32: 8 at a time
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("chunk_images", [None, 3])  # None: the whole batch is one chunk
def test_add_of_terms_in_different_layouts_is_the_plain_sum_in_the_first_terms_layout(shape, relu,
                                                                                     chunk_images,
                                                                                     monkeypatch):
    """A channels-last body plus an NCHW shortcut (a ResNet's first block), and the other way round: the
    kernel copies b into a's layout first (in chunks); the sum is np.add's bit for bit, in a's layout."""
    from cnnkit import runtime
    from cnnkit.layout import channels_last, is_channels_last

    if chunk_images:
        monkeypatch.setattr(runtime, "CHUNK_BYTES", chunk_images * 4 * np.prod(shape[1:]))

    rng = np.random.default_rng(4)
    nchw = rng.standard_normal(shape).astype(np.float32)
    last = channels_last(rng.standard_normal(shape).astype(np.float32))
    for a, b in ((last, nchw), (nchw, last)):
        expected = np.add(a, b)
        if relu:
            expected = np.maximum(expected, 0)
        y, cache = F.add(a, b, relu=relu)
        assert cache is None and np.array_equal(y, expected)
        assert is_channels_last(y) == is_channels_last(a) and (y.flags.c_contiguous or is_channels_last(y))
