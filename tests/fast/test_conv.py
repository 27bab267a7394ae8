"""Every fast convolution kernel against the reference kernel (property tests over random shapes) and
against PyTorch (the seeded parity grid with each algorithm forced), float64 gradients, the dispatch, and
the errors. (Speed is measured by ``python -m benchmarks``, never asserted.)"""

import contextlib
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cnnkit as ck
from cnnkit.fast import depthwise, dispatch, pointwise, winograd
from cnnkit.fast import im2col as im2col_module
from cnnkit.functional.conv import choose_algorithm, conv2d, convnd_backward
from cnnkit.reference import conv as reference
from conftest import assert_parity
from conv_cases import grid, torch_parity

GRID = grid(240, seed=1)
WINOGRAD = ("winograd", "winograd2")


@st.composite
def conv_cases(draw):
    """A random valid convolution: 1-3 axes, groups (depthwise too), stride, dilation, uneven padding,
    odd sizes, batch 0 to 3."""
    nd = draw(st.sampled_from([1, 2, 2, 2, 3]))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    C, K = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    if draw(st.booleans()) and nd == 2:
        groups = K = C
    F = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    S = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    D = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    P = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    size = tuple(draw(st.integers(max(1, d * (f - 1) + 1 - lo - hi), 9)) for f, d, (lo, hi) in zip(F, D, P))
    return dict(x=(draw(st.integers(0, 3)), C, *size), w=(K, C // groups, *F), stride=S, padding=P,
                dilation=D, groups=groups, bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


def _run(kernel, case, x, w, b, dy, input_grad=True):
    y, cache = kernel.forward(x, w, b, case["stride"], case["padding"], case["dilation"], case["groups"],
                              "crop", name="conv")
    return (y, *kernel.backward(dy, cache, input_grad=input_grad))


@settings(max_examples=150, deadline=None)
@given(conv_cases())
def test_every_fast_kernel_equals_the_reference_kernel(case):
    """Forward, dx, dweight and dbias of each kernel that can compute the case equal the textbook's
    (float64: only rounding differs, Winograd's transforms most)."""
    rng = np.random.default_rng(case["seed"])
    x, w = rng.standard_normal(case["x"]), rng.standard_normal(case["w"])
    b = rng.standard_normal(case["w"][0]) if case["bias"] else None
    y, _ = reference.convnd(x, w, b, case["stride"], case["padding"], case["dilation"], case["groups"],
                            "crop")
    dy = rng.standard_normal(y.shape)
    expected = _run(dispatch.CONV_KERNELS["reference"], case, x, w, b, dy)
    _, _, out, pads = ck.geometry.conv_setup(x.shape, w.shape, case["stride"], case["padding"],
                                             case["dilation"], case["groups"], "crop")
    names = ["im2col"]
    if pointwise.fits(w.shape, case["stride"], pads):
        names.append("pointwise")
    for name in ("winograd", "winograd2", "depthwise"):
        try:
            choose_algorithm(w.shape, case["stride"], case["dilation"], case["groups"], name)
        except ValueError:
            continue
        names.append(name)
    # im2col's backward takes dW as one multiply from ONE_MULTIPLY_MIN_FILTERS numbers (larger than these
    # cases' filters): the same cases once more with that path for every size
    one_multiply = mock.patch.object(im2col_module, "ONE_MULTIPLY_MIN_FILTERS", -1)
    # and with row bands of one output row each, forward and backward (on large images only, otherwise)
    bands = mock.patch.multiple(im2col_module, COLUMNS_PER_PART=1, BACKWARD_BAND_COLUMNS=1)
    for name, context in [*((name, contextlib.nullcontext()) for name in names), ("im2col", one_multiply),
                          ("im2col", bands)]:
        with context:
            got = _run(dispatch.CONV_KERNELS[name], case, x, w, b, dy)
        for ours, theirs, what in zip(got, expected, ("y", "dx", "dw", "db")):
            if theirs is None:
                assert ours is None, (name, what)
                continue
            assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (name, what)
            np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9, err_msg=f"{name} {what}")
        if name not in WINOGRAD:  # Winograd computes dx with dW (they share the transformed dy)
            assert _run(dispatch.CONV_KERNELS[name], case, x, w, b, dy, input_grad=False)[1] is None
    if x.ndim == 4:  # channels-last input (a Winograd layer's output): the same numbers, and im2col's
        # channels-last columns (from LAST_COLUMNS_MIN_CHANNELS channels on; here from 1)
        last = mock.patch.object(im2col_module, "LAST_COLUMNS_MIN_CHANNELS", 1)
        for name, context in [*((name, contextlib.nullcontext()) for name in names), ("im2col", last)]:
            with context:
                got = _run(dispatch.CONV_KERNELS[name], case, ck.layout.channels_last(x), w, b, dy)
            for ours, theirs, what in zip(got, expected, ("y", "dx", "dw", "db")):
                if theirs is not None:
                    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9,
                                               err_msg=f"{name} {what} (NHWC)")


def _winograd_fits(cfg):
    return cfg["nd"] == 2 and cfg["kernel_size"] == (3, 3) and cfg["stride"] == cfg["dilation"] == (1, 1)


def _winograd_grid(n, seed):
    """3x3 stride-1 layers: channels up to 48 (where Winograd is used), odd sizes, uneven padding."""
    r = np.random.default_rng(seed)
    configs = []
    for _ in range(n):
        groups = int(r.choice([1, 1, 1, 2, 4]))
        C, K = groups * int(r.integers(1, 48 // groups + 1)), groups * int(r.integers(1, 40 // groups + 1))
        size, padding = (tuple(int(v) for v in r.integers(lo, hi, 2)) for lo, hi in ((3, 14), (0, 3)))
        configs.append(dict(nd=2, N=int(r.integers(1, 4)), C=C, K=K, size=size, kernel_size=(3, 3),
                            stride=(1, 1), padding=padding, dilation=(1, 1), groups=groups,
                            bias=bool(r.random() < 0.8)))
    return configs


def _depthwise_grid(n, seed):
    """groups = C = K, any kernel size, stride, dilation and padding (MobileNet's layers and odd ones)."""
    r = np.random.default_rng(seed)
    configs = []
    while len(configs) < n:
        C, k, s, d, p = (int(r.integers(1, 20)), *(tuple(int(v) for v in r.integers(lo, hi, 2))
                                                   for lo, hi in ((1, 6), (1, 3), (1, 3), (0, 3))))
        size = tuple(int(v) for v in r.integers(4, 16, 2))
        if all(dd * (kk - 1) + 1 <= n + 2 * pp for dd, kk, pp, n in zip(d, k, p, size, strict=True)):
            configs.append(dict(nd=2, N=int(r.integers(1, 4)), C=C, K=C, size=size, kernel_size=k, stride=s,
                                padding=p, dilation=d, groups=C, bias=bool(r.random() < 0.8)))
    return configs


@pytest.mark.parametrize("cfg", GRID, ids=lambda c: f"{c['nd']}d-C{c['C']}K{c['K']}g{c['groups']}")
def test_im2col_and_reference_forced_match_pytorch(cfg):
    torch_parity(cfg, "im2col")
    torch_parity(cfg, "reference")


@pytest.mark.parametrize("algorithm", WINOGRAD)
@pytest.mark.parametrize("cfg", [c for c in GRID if _winograd_fits(c)] + _winograd_grid(40, seed=7),
                         ids=lambda c: f"C{c['C']}K{c['K']}g{c['groups']}-{c['size']}-p{c['padding']}")
def test_winograd_forced_matches_pytorch(cfg, algorithm):
    torch_parity(cfg, algorithm)


@pytest.mark.parametrize("cfg", [c for c in GRID if c["nd"] == 2 and c["groups"] == c["C"] == c["K"]]
                         + _depthwise_grid(30, seed=8),
                         ids=lambda c: f"C{c['C']}-k{c['kernel_size']}s{c['stride']}d{c['dilation']}")
@pytest.mark.parametrize("path", ["planes", "channels-last"])
def test_depthwise_forced_matches_pytorch(cfg, path, monkeypatch):
    """Both of the depthwise kernel's paths: flat planes (large maps) and channels-last (small maps)."""
    monkeypatch.setattr(depthwise, "DEPTHWISE_CHANNELS_LAST_POSITIONS", 0 if path == "planes" else 10**9)
    torch_parity(cfg, "depthwise")


@pytest.mark.parametrize("make, shape", [
    (lambda: ck.Conv2d(3, 3, 3, padding=1, groups=3, algorithm="depthwise"), (2, 3, 5, 6)),
    (lambda: ck.Conv2d(4, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=4, bias=False,
                       algorithm="depthwise"), (1, 4, 7, 6)),
])
def test_numeric_gradients_depthwise(make, shape):
    errors = ck.gradcheck(make(), np.random.default_rng(1).standard_normal(shape))
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("algorithm", ["auto", "reference", "im2col", *WINOGRAD])
@pytest.mark.parametrize("make, shape", [
    (lambda a: ck.Conv2d(3, 4, 3, padding=1, algorithm=a), (2, 3, 5, 6)),
    (lambda a: ck.Conv2d(4, 6, 3, padding=((0, 2), (1, 0)), groups=2, algorithm=a), (1, 4, 7, 5)),
    (lambda a: ck.Conv2d(2, 3, 3, bias=False, algorithm=a), (2, 2, 9, 4)),
])
def test_numeric_gradients_for_every_algorithm(make, shape, algorithm):
    errors = ck.gradcheck(make(algorithm), np.random.default_rng(1).standard_normal(shape))
    assert max(errors.values()) < 1e-6, errors


def test_auto_uses_winograd_for_wide_3x3_layers_and_matches_pytorch():
    """The default dispatch on a layer of the benchmark suite's shape class (C >= 32), at a small size."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 40, 16, 16)).astype(np.float32)  # 2 * 4 * 4 = 32 tiles of 4 x 4
    w = rng.standard_normal((36, 40, 3, 3)).astype(np.float32) * 0.1
    b = rng.standard_normal(36).astype(np.float32)
    y, cache = conv2d(x, w, b, padding=1)
    assert cache.backward is winograd.conv2d_backward and cache.data["algorithm"] == "winograd4"
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = convnd_backward(dy, cache)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, padding=1)
    ty.backward(torch.tensor(dy))
    for ours, theirs, what in ((y, ty, "y"), (dx, tx.grad, "dx"), (dw, tw.grad, "dw"), (db, tb.grad, "db")):
        assert_parity(ours, theirs, what=what)


@pytest.mark.parametrize("weight_shape, stride, dilation, groups, expected", [
    ((64, 64, 3, 3), (1, 1), (1, 1), 1, "winograd"),
    ((64, 32, 3, 3), (1, 1), (1, 1), 2, "winograd"),  # 32 channels per group
    ((64, 8, 3, 3), (1, 1), (1, 1), 1, "im2col"),  # too few channels to repay the transforms
    ((64, 64, 3, 3), (2, 2), (1, 1), 1, "im2col"),
    ((64, 64, 3, 3), (1, 1), (2, 2), 1, "im2col"),
    ((64, 64, 5, 5), (1, 1), (1, 1), 1, "im2col"),
    ((64, 64, 3, 3, 3), (1, 1, 1), (1, 1, 1), 1, "im2col"),
    ((64, 1, 3, 3), (1, 1), (1, 1), 64, "depthwise"),
    ((32, 1, 5, 5), (2, 2), (2, 2), 32, "depthwise"),
    ((64, 1, 3, 3), (1, 1), (1, 1), 32, "im2col"),  # a channel multiplier of 2: not depthwise's case
    ((64, 1, 3), (1,), (1,), 64, "im2col"),  # 1-D
])
def test_dispatch(weight_shape, stride, dilation, groups, expected):
    assert choose_algorithm(weight_shape, stride, dilation, groups) == expected


def test_dispatch_takes_winograd_from_fewer_channels_when_a_backward_follows():
    """16-31 input channels: Winograd in training (forward + backward measured faster), im2col for
    inference (the forward alone measured faster with im2col)."""
    import cnnkit as ck

    assert choose_algorithm((32, 16, 3, 3), (1, 1), (1, 1), 1) == "winograd"
    with ck.no_grad():
        assert choose_algorithm((32, 16, 3, 3), (1, 1), (1, 1), 1) == "im2col"
        assert choose_algorithm((32, 32, 3, 3), (1, 1), (1, 1), 1) == "winograd"
    assert choose_algorithm((32, 15, 3, 3), (1, 1), (1, 1), 1) == "im2col"


@pytest.mark.parametrize("batch, out, expected", [
    (8, (7, 7), "winograd"),  # 8 * 2 * 2 = 32 tiles: ResNet's last stage at 224 x 224, batch 8
    (4, (7, 7), "im2col"),  # 16 tiles: the filter transform costs more than it saves
    (1, (2, 2), "im2col"),
    (1, (28, 28), "winograd"),
])
def test_dispatch_needs_enough_tiles(batch, out, expected):
    assert choose_algorithm((512, 512, 3, 3), (1, 1), (1, 1), 1, out=out, batch=batch) == expected


def test_winograd_output_is_channels_last_memory_with_nchw_shape():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y, _ = conv2d(x, w, padding=1, algorithm="winograd")
    assert y.shape == (2, 4, 6, 6) and y.transpose(0, 2, 3, 1).flags.c_contiguous
    expected, _ = conv2d(x, w, padding=1, algorithm="im2col")
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_conv_transpose_at_a_winograd_shape_matches_pytorch():
    """A 3x3 stride-1 ConvTranspose2d with 32 output channels: its backward is a convolution of that shape."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    layer = ck.ConvTranspose2d(8, 32, 3, padding=1, rng=rng)
    x = rng.standard_normal((2, 8, 16, 16)).astype(np.float32)  # its backward's conv: 2 * 4 * 4 tiles
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(layer.weight.data, requires_grad=True)
    ty = torch.nn.functional.conv_transpose2d(tx, tw, torch.tensor(layer.bias.data), padding=1)
    ty.backward(torch.tensor(dy))
    assert_parity(dx, tx.grad, what="dx")
    assert_parity(layer.weight.grad, tw.grad, what="dweight")


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(algorithm="winograd"), ValueError,
     r"conv2d: algorithm='winograd' computes 2-D 3x3 convolutions.*received kernel_size=\(5, 5\)"),
    (dict(algorithm="fft"), ValueError, r"Invalid algorithm 'fft', should be one of"),
    (dict(algorithm="depthwise"), ValueError,
     r"algorithm='depthwise' computes 2-D convolutions with groups = in_channels = out_channels; received "
     r"weight \(2, 2, 5, 5\)"),
])
def test_functional_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        conv2d(np.zeros((1, 2, 8, 8), np.float32), np.zeros((2, 2, 5, 5), np.float32), **kwargs)


def test_layer_errors_and_repr():
    with pytest.raises(ValueError, match=r"Conv2d: Invalid algorithm 'fast', should be one of \('auto'"):
        ck.Conv2d(3, 4, 3, algorithm="fast")
    with pytest.raises(ValueError, match=r"algorithm='winograd2' computes 2-D 3x3.*stride=\(2, 2\)"):
        ck.Conv2d(3, 4, 3, stride=2, algorithm="winograd2")  # refused at construction, not in forward
    with pytest.raises(ValueError, match=r"algorithm='depthwise' computes 2-D convolutions with groups"):
        ck.Conv2d(4, 8, 3, groups=4, algorithm="depthwise")
    layer = ck.Conv2d(3, 4, 3, algorithm="im2col")
    assert repr(layer) == "Conv2d(3->4, kernel_size=3, stride=1, padding=0, algorithm='im2col')"
    assert ck.layers.from_config(layer.config()).algorithm == "im2col"


@pytest.mark.parametrize("algorithm, kwargs", [
    ("im2col", dict(padding=0)), ("im2col", dict(padding=1, stride=2)), ("winograd", dict(padding=1)),
    ("depthwise", dict(padding=1, groups=4)),
])
def test_results_never_alias_scratch_memory(algorithm, kwargs):
    """Kernels reuse scratch buffers between calls; what they return must survive the next call."""
    rng = np.random.default_rng(6)
    w = rng.standard_normal((4, 4 // kwargs.get("groups", 1), 3, 3)).astype(np.float32)
    first = [rng.standard_normal((2, 4, 7, 7)).astype(np.float32) for _ in range(2)]
    y, cache = conv2d(first[0], w, np.ones(4, np.float32), algorithm=algorithm, **kwargs)
    results = (y, *convnd_backward(first[1][:, :, :y.shape[2], :y.shape[3]].copy(), cache))
    kept = [a.copy() for a in results]
    y2, cache2 = conv2d(-2 * first[0], w, algorithm=algorithm, **kwargs)  # same shapes, other values
    convnd_backward(np.ones_like(y2), cache2)
    for before, after in zip(kept, results, strict=True):
        np.testing.assert_array_equal(before, after)
    assert "cols" not in cache2.data  # the columns live in scratch memory, never in a cache


@pytest.mark.parametrize("algorithm", ["im2col", "winograd"])
def test_batch_parts_give_the_same_result(algorithm, monkeypatch):
    """Kernels work through the batch a few images at a time; one image per part changes nothing."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 6, 7, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((5, 4, 7, 9)).astype(np.float32)
    whole = conv2d(x, w, np.ones(4, np.float32), padding=1, groups=2, algorithm=algorithm)
    whole = (whole[0], *convnd_backward(dy, whole[1]))
    monkeypatch.setattr(im2col_module, "COLUMNS_PER_PART", 1)
    monkeypatch.setattr(winograd, "WINOGRAD_PART_ELEMENTS", 1)
    monkeypatch.setattr(winograd, "WINOGRAD_MIN_PART_TILES", 1)
    parts = conv2d(x, w, np.ones(4, np.float32), padding=1, groups=2, algorithm=algorithm)
    parts = (parts[0], *convnd_backward(dy, parts[1]))
    for a, b in zip(whole, parts, strict=True):  # dweight sums in another order: float32 rounding differs
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


@pytest.mark.parametrize("path", ["planes", "channels-last"])
@pytest.mark.parametrize("stride, dilation", [((1, 1), (1, 1)), ((2, 1), (1, 2))])
def test_depthwise_items_and_threads_give_the_same_result(stride, dilation, path, monkeypatch):
    """The depthwise kernel cuts the batch into blocks of planes (or of images, channels-last) and may run
    them on threads: one plane (image) per block, on two threads, gives the same numbers bit for bit (dweight
    to rounding on the channels-last path: its partial sums are per block); input_grad=False drops dx."""
    from cnnkit import runtime as batching

    monkeypatch.setattr(depthwise, "DEPTHWISE_CHANNELS_LAST_POSITIONS", 0 if path == "planes" else 10**9)

    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 5, 9, 8)).astype(np.float32)
    w = rng.standard_normal((5, 1, 3, 3)).astype(np.float32)

    def run(input_grad=True):
        y, cache = conv2d(x, w, np.ones(5, np.float32), stride, 1, dilation, groups=5, algorithm="depthwise")
        return (y, *convnd_backward(np.cos(y), cache, input_grad=input_grad))

    whole = run()
    monkeypatch.setattr(depthwise, "DEPTHWISE_ITEM_ELEMENTS", 1)
    monkeypatch.setattr(depthwise, "CHUNK_BYTES", 1)  # channels-last: one image per chunk
    batching.set_elementwise_threads(2)
    try:
        split = run()
        no_dx = run(input_grad=False)
    finally:
        batching.set_elementwise_threads(1)
    y, dx, dw, db = whole
    assert np.array_equal(y, split[0]) and np.array_equal(dx, split[1]) and np.array_equal(db, split[3])
    np.testing.assert_allclose(dw, split[2], rtol=1e-5, atol=1e-5)
    assert no_dx[1] is None and np.array_equal(no_dx[2], split[2]) and np.array_equal(no_dx[3], db)


@pytest.mark.parametrize("channels", [8, 96])
def test_winograd_threaded_parts_give_the_same_result(channels):
    """Small layers run the batch parts of forward and backward on the elementwise threads (one-thread
    BLAS each); two parts here."""
    from cnnkit import runtime as batching

    assert channels ** 2 <= winograd.WINOGRAD_THREADED_PARTS
    rng = np.random.default_rng(9)
    x = rng.standard_normal((6, channels, 9, 7)).astype(np.float32)
    w = rng.standard_normal((channels, channels, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((6, channels, 9, 7)).astype(np.float32)
    one = conv2d(x, w, np.ones(channels, np.float32), padding=1, algorithm="winograd")
    one = (one[0], *convnd_backward(dy, one[1]))
    batching.set_elementwise_threads(2)
    try:
        two = conv2d(x, w, np.ones(channels, np.float32), padding=1, algorithm="winograd")
        two = (two[0], *convnd_backward(dy, two[1]))
    finally:
        batching.set_elementwise_threads(1)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())


def test_im2col_threaded_parts_give_the_same_result(monkeypatch):
    """Small filters with enough work run im2col's batch parts on the elementwise threads."""
    from cnnkit import runtime as batching

    monkeypatch.setattr(im2col_module, "THREADED_MIN_MACS", 1)
    monkeypatch.setattr(im2col_module, "COLUMNS_PER_PART", 1)  # one image per part: several parts per thread
    rng = np.random.default_rng(10)
    x = rng.standard_normal((5, 3, 9, 8)).astype(np.float32)
    for kwargs in (dict(padding=2), dict(stride=2, padding=1, fit="crop")):  # wide grid, window slices
        w = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
        one = conv2d(x, w, np.ones(4, np.float32), algorithm="im2col", **kwargs)
        dy = np.cos(one[0])
        one = (one[0], *convnd_backward(dy, one[1]))
        batching.set_elementwise_threads(2)
        try:
            two = conv2d(x, w, np.ones(4, np.float32), algorithm="im2col", **kwargs)
            two = (two[0], *convnd_backward(dy, two[1]))
        finally:
            batching.set_elementwise_threads(1)
        for a, b in zip(one, two, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())


def test_im2col_threads_larger_filters_only_on_parts_that_fall_evenly(monkeypatch):
    """Filter matrices above THREADED_PARTS take the threads only with two or more parts per thread in a
    multiple of the threads; their results equal the one-thread ones either way."""
    from cnnkit import runtime as batching

    monkeypatch.setattr(im2col_module, "THREADED_MIN_MACS", 1)
    monkeypatch.setattr(im2col_module, "THREADED_PARTS", 0)
    monkeypatch.setattr(im2col_module, "COLUMNS_PER_PART", 1)  # one image per part
    rng = np.random.default_rng(11)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    batching.set_elementwise_threads(2)
    try:
        assert [im2col_module._parts(w.shape, n, 49, 1)[1] for n in (1, 2, 3, 4, 5, 6)] == [1, 1, 1, 2, 1, 2]
        for n in (4, 5):
            x = rng.standard_normal((n, 3, 9, 8)).astype(np.float32)
            two = conv2d(x, w, None, padding=1, algorithm="im2col")
            dy = np.cos(two[0])
            two = (two[0], *convnd_backward(dy, two[1]))
            batching.set_elementwise_threads(1)
            one = conv2d(x, w, None, padding=1, algorithm="im2col")
            one = (one[0], *convnd_backward(dy, one[1]))
            batching.set_elementwise_threads(2)
            for a, b in zip(one, two, strict=True):
                if a is not None:
                    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())
    finally:
        batching.set_elementwise_threads(1)


@pytest.mark.parametrize("algorithm, kwargs, groups, kernel", [
    ("reference", dict(padding=1), 1, 3), ("im2col", dict(padding=1), 1, 3),
    ("im2col", dict(stride=2, padding=1, fit="crop"), 1, 3),
    ("im2col", dict(), 1, 1), ("winograd", dict(padding=1), 1, 3), ("depthwise", dict(padding=1), 4, 3),
])
def test_empty_batch(algorithm, kwargs, groups, kernel):
    """A batch of no images gives empty outputs and zero gradients (nothing read from scratch memory)."""
    x = np.zeros((0, 4, 8, 8), np.float32)
    w = np.ones((4, 4 // groups, kernel, kernel), np.float32)
    y, cache = conv2d(x, w, np.ones(4, np.float32), groups=groups, algorithm=algorithm, **kwargs)
    dx, dw, db = convnd_backward(np.zeros_like(y), cache)
    assert y.shape[0] == 0 and dx.shape == x.shape
    assert not dw.any() and not db.any() and dw.shape == w.shape
