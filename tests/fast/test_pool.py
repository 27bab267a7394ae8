"""The fast pooling kernels in batch chunks on the elementwise threads: the same bits whether the batch is
cut into one-sample chunks, processed whole or spread over two threads; max pooling's phase layout against
a naive loop. (Through the layers, which run the fast kernels by default.)"""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit import runtime


@pytest.fixture
def restore_runtime():
    chunk_bytes, threads = runtime.CHUNK_BYTES, runtime.elementwise_threads()
    yield
    runtime.CHUNK_BYTES = chunk_bytes
    runtime.set_elementwise_threads(threads)


LAYERS = [
    lambda: ck.MaxPool2d(2),  # non-overlapping: writes dx directly
    lambda: ck.MaxPool2d(3, 2, padding=1, fit="crop"),  # overlapping with a stride: strided adds
    lambda: ck.MaxPool2d(2, stride=1),  # stride 1: adds up in the padded layout
    lambda: ck.MaxPool2d((2, 3), (1, 2), padding=(1, 1), dilation=(2, 1), fit="pad"),
    lambda: ck.AvgPool2d(3, 2, padding=1, count_include_pad=False, fit="pad"),
    lambda: ck.AvgPool2d(2),
    lambda: ck.BlurPool2d(3, fit="pad"),
    lambda: ck.Blur2d(3, filter_size=4, stride=3, fit="pad"),
]


@pytest.mark.parametrize("make", LAYERS)
def test_chunks_and_threads_give_identical_results(make, restore_runtime):
    """Ties (small integers) everywhere, a channels-last input and a 7-sample batch (uneven chunks)."""
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, (7, 3, 12, 10)).astype(np.float32)
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    results = []
    for chunk_bytes, threads in ((1 << 40, 1), (1, 1), (1, 2), (x[:1].nbytes * 2, 2)):
        runtime.CHUNK_BYTES = chunk_bytes
        runtime.set_elementwise_threads(threads)
        layer = make()
        y = layer(x)
        dy = np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
        results.append((y, layer.backward(dy)))
    for y, dx in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])


def _naive_max_pool(x, k, s, p):
    """Loops over every output position: the max and a one-hot dx for dy = 1 (first max wins ties)."""
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    y, dxp = np.empty((N, C, Ho, Wo), x.dtype), np.zeros_like(xp)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, c, i * s:i * s + k, j * s:j * s + k]
                    a, b = np.unravel_index(np.argmax(window), window.shape)  # the first max
                    y[n, c, i, j] = window[a, b]
                    dxp[n, c, i * s + a, j * s + b] += 1
    return y, dxp[:, :, p:p + H, p:p + W]


@pytest.mark.parametrize("k, s, p, size", [(2, 2, 0, 8), (3, 2, 1, 9), (2, 1, 0, 7), (3, 3, 1, 7),
                                           (4, 2, 2, 10)])
def test_phase_layout_max_pool_matches_a_naive_loop(k, s, p, size):
    x = np.random.default_rng(k * 10 + s).integers(0, 4, (2, 2, size, size + 1)).astype(np.float32)
    layer = ck.MaxPool2d(k, s, padding=p, fit="crop")
    y = layer(x)
    y_ref, dx_ref = _naive_max_pool(x, k, s, p)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(layer.backward(np.ones_like(y)), dx_ref)


@pytest.mark.parametrize("k, s, p, fit", [(2, 2, 0, "error"), (2, 2, 1, "crop"), (3, 3, 1, "pad"),
                                          ((2, 3), (2, 3), 0, "pad"), (1, 2, 0, "crop")])
@pytest.mark.parametrize("dy_layout", ["NCHW", "channels-last", "neither"])
def test_channels_last_max_pool_matches_the_reference_kernel(k, s, p, fit, dy_layout, restore_runtime):
    """Non-overlapping windows on channels-last input read the input in place (no NCHW phases) and write
    channels-last y, switches and dx: the reference kernel's numbers bit for bit, ties (small integers),
    NaN and -inf included, whichever memory order dy comes in (NCHW, channels-last, or (N, C, W, H)
    memory: copied into the switches' order first); the no_grad forward gives the same y."""
    from cnnkit.functional import max_pool2d, max_pool2d_backward
    from cnnkit.layout import channels_last, is_channels_last

    rng = np.random.default_rng(11)
    x = rng.integers(-2, 3, (5, 16, 12, 14)).astype(np.float32)
    x[0, 3, 1, 1], x[1, 0, :, :4], x[2, 5, 7, 7] = np.nan, -np.inf, np.inf
    x = channels_last(x)
    runtime.set_elementwise_threads(2)
    runtime.CHUNK_BYTES = x[:1].nbytes * 2  # uneven chunks of the 5 images, on two threads
    y, cache = max_pool2d(x, k, s, p, fit=fit)
    y_ref, cache_ref = max_pool2d(x, k, s, p, fit=fit, algorithm="reference")
    np.testing.assert_array_equal(y, y_ref)
    assert is_channels_last(y) and not y.flags.c_contiguous
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dy = {"channels-last": channels_last, "NCHW": np.ascontiguousarray,
          "neither": lambda a: np.ascontiguousarray(a.swapaxes(2, 3)).swapaxes(2, 3)}[dy_layout](dy)
    dx = max_pool2d_backward(dy, cache)
    np.testing.assert_array_equal(dx, max_pool2d_backward(dy, cache_ref))
    assert is_channels_last(dx)
    with ck.no_grad():
        np.testing.assert_array_equal(max_pool2d(x, k, s, p, fit=fit)[0], y_ref)


@pytest.mark.parametrize("k, s, p, fit", [(2, 2, 0, "crop"), (3, 2, 1, "crop"), (2, 1, 0, "error"),
                                          (3, 3, 1, "pad")])
def test_a_nan_takes_its_windows_gradient_as_in_the_reference(k, s, p, fit):
    """The first NaN of a window is its max and gets its gradient (PyTorch's rule, the reference's); the
    fast kernel had sent it to the first finite max. NCHW input: the phase layout."""
    from cnnkit.functional import max_pool2d, max_pool2d_backward

    rng = np.random.default_rng(12)
    x = rng.integers(-2, 3, (2, 3, 9, 10)).astype(np.float32)
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = x[1, 2, 4, 5] = x[1, 1, 8, 9] = np.nan
    y, cache = max_pool2d(x, k, s, p, fit=fit)
    y_ref, cache_ref = max_pool2d(x, k, s, p, fit=fit, algorithm="reference")
    np.testing.assert_array_equal(y, y_ref)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(max_pool2d_backward(dy, cache), max_pool2d_backward(dy, cache_ref))
