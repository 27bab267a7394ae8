"""Batch norm in batch chunks on threads (cnnkit.fast.norm): the same statistics, output and
gradients as the float64 formula, whatever the thread count and memory layout."""

import numpy as np
import pytest

from cnnkit.fast.norm import batch_norm, batch_norm_backward
from cnnkit.layout import channels_last
from cnnkit.runtime import batch_chunks, set_elementwise_threads


def reference(x, w, b, dy, eps=1e-5):
    x, dy = x.astype(np.float64), dy.astype(np.float64)
    axes = (0, 2, 3)
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    x_hat = (x - mean) / np.sqrt(var + eps)
    y = x_hat * w.reshape(1, -1, 1, 1) + b.reshape(1, -1, 1, 1)
    g = dy * w.reshape(1, -1, 1, 1)
    dx = (g - g.mean(axis=axes, keepdims=True) - x_hat * (g * x_hat).mean(axis=axes, keepdims=True)) \
        / np.sqrt(var + eps)
    return y, dx, (dy * x_hat).sum(axis=axes), dy.sum(axis=axes), mean.ravel(), var.ravel()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("last", [False, True])
def test_chunked_batch_norm_matches_the_formula(threads, last):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((12, 8, 96, 64)) * 3 + 5).astype(np.float32)
    assert len(batch_chunks(len(x), x[:1].nbytes)) >= 2  # really in several chunks
    w, b = rng.standard_normal(8).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    y_ref, dx_ref, dw_ref, db_ref, mean_ref, var_ref = reference(x, w, b, dy)
    x = channels_last(x) if last else x
    set_elementwise_threads(threads)
    try:
        y, cache = batch_norm(x, w, b)
        dx, dw, db = batch_norm_backward(dy, cache)
    finally:
        set_elementwise_threads(1)
    assert y.dtype == dx.dtype == np.float32
    np.testing.assert_allclose(cache["batch_mean"], mean_ref, rtol=1e-5)
    np.testing.assert_allclose(cache["batch_var"], var_ref, rtol=1e-4)
    np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-3, atol=1e-1)
    np.testing.assert_allclose(db, db_ref, rtol=1e-4, atol=1e-2)


def test_fixed_statistics_are_one_affine_map_in_chunks():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, 8, 96, 64)).astype(np.float32)
    w, b = rng.standard_normal(8).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    mean, var = rng.standard_normal(8).astype(np.float32), rng.uniform(0.5, 2, 8).astype(np.float32)
    set_elementwise_threads(2)
    try:
        y, cache = batch_norm(x, w, b, mean, var)
    finally:
        set_elementwise_threads(1)
    expected = (x.astype(np.float64) - mean.reshape(1, -1, 1, 1)) / np.sqrt(var.reshape(1, -1, 1, 1) + 1e-5) \
        * w.reshape(1, -1, 1, 1) + b.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    assert "x_hat" not in cache  # evaluation never makes it
