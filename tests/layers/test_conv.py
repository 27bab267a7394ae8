"""Conv1d/2d/3d: numeric gradients, PyTorch parity over a seeded grid, the notes' examples, and errors."""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.functional import conv2d
from conv_cases import grid, torch_parity


@pytest.mark.parametrize("cfg", grid(240, seed=1),
                         ids=lambda c: f"{c['nd']}d-C{c['C']}K{c['K']}g{c['groups']}")
def test_parity_with_pytorch(cfg):
    """Forward, dx, dweight and dbias match torch.nn.functional.convNd (float32, PyTorch's floor rule)."""
    torch_parity(cfg)


@pytest.mark.parametrize("make, shape", [
    (lambda: ck.Conv2d(2, 3, 3), (2, 2, 5, 5)),
    (lambda: ck.Conv2d(2, 4, 3, stride=2, padding=1), (2, 2, 7, 7)),
    (lambda: ck.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2), (1, 4, 7, 6)),
    (lambda: ck.Conv2d(3, 3, 3, padding=1, groups=3, bias=False), (2, 3, 5, 4)),  # depthwise
    (lambda: ck.Conv2d(4, 5, 1), (2, 4, 3, 3)),  # 1x1: a pure matrix multiply
    (lambda: ck.Conv2d(2, 2, 3, stride=2, fit="pad"), (1, 2, 6, 6)),
    (lambda: ck.Conv2d(2, 2, 3, stride=2, fit="crop"), (1, 2, 6, 6)),
    (lambda: ck.Conv2d(2, 3, 3, padding="same", dilation=2), (1, 2, 6, 5)),
    (lambda: ck.Conv1d(3, 2, 4, stride=3, padding=2), (2, 3, 12)),
    (lambda: ck.Conv3d(2, 2, (2, 3, 1), stride=(1, 2, 1)), (1, 2, 3, 5, 4)),
])
def test_numeric_gradients(make, shape):
    errors = ck.gradcheck(make(), np.random.default_rng(1).standard_normal(shape))
    assert set(errors) >= {"input", "weight"}
    assert max(errors.values()) < 1e-6, errors


def test_notes_1d_filters_on_binary_image():
    """The notes' 1-D example: (-1, +1) finds the edges of a binary signal, (-1, +1, -1) isolated ones."""
    signal = np.array([[[0, 0, 1, 1, 1, 0, 0, 1, 0, 0]]], dtype=np.float32)
    edge = ck.Conv1d(1, 1, 2, bias=False)
    edge.weight.data[...] = [[[-1, 1]]]
    assert edge(signal)[0, 0].tolist() == [0, 1, 0, 0, -1, 0, 1, -1, 0]
    spot = ck.Conv1d(1, 1, 3, bias=False)
    spot.weight.data[...] = [[[-1, 1, -1]]]
    assert spot(signal)[0, 0].tolist() == [-1, 0, -1, 0, -1, -1, 1, -1]  # +1 only at the isolated 1


@pytest.mark.parametrize("stride, expected", [(1, 5), (2, 3)])
def test_notes_output_sizes(stride, expected):
    layer = ck.Conv2d(1, 1, 3, stride=stride, padding=1)
    assert layer.output_shape((1, 1, 5, 5)) == (1, 1, expected, expected)


def test_notes_stride_that_does_not_fit():
    with pytest.raises(ck.ShapeError,
                       match=r"\([HW] - F \+ 2P\)/S \+ 1 = \(5 - 3 \+ 2\)/3 \+ 1 = 2.33333 is not"):
        ck.Conv2d(1, 1, 3, stride=3, padding=1).output_shape((1, 1, 5, 5))
    layer = ck.Conv2d(3, 16, 3, stride=2)
    with pytest.raises(ck.ShapeError, match=r"Conv2d\(3->16.*\(10 - 3 \+ 0\)/2 \+ 1 = 4.5 is not an integer; "
                                            r"use padding=\(\(0, 1\), \(0, 1\)\).*fit='crop'"):
        layer(np.zeros((1, 3, 10, 10), np.float32))
    assert ck.Conv2d(3, 16, 3, stride=2, fit="crop").output_shape((1, 3, 10, 10)) == (1, 16, 4, 4)
    assert ck.Conv2d(3, 16, 3, stride=2, fit="pad").output_shape((1, 3, 10, 10)) == (1, 16, 5, 5)


def test_fit_pad_zero_pads_the_far_side():
    x = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6)
    w = np.ones((1, 1, 3, 3), np.float32)
    y, _ = conv2d(x, w, stride=2, fit="pad")
    padded = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1)))
    expected, _ = conv2d(padded, w, stride=2)
    np.testing.assert_array_equal(y, expected)


def test_alexnet_first_layer():
    layer = ck.Conv2d(3, 96, 11, stride=4)
    assert layer.output_shape((1, 3, 227, 227)) == (1, 96, 55, 55)
    assert layer.weight.shape == (96, 3, 11, 11) and layer.num_parameters() == 34_944


def test_float64_stays_float64_and_float32_stays_float32():
    layer = ck.Conv2d(2, 3, 3)
    assert layer(np.zeros((1, 2, 4, 4), np.float32)).dtype == np.float32
    layer.astype(np.float64)
    assert layer(np.zeros((1, 2, 4, 4))).dtype == np.float64


def test_accepts_any_memory_order():
    """A channels-last array viewed as NCHW gives the same result as a contiguous one."""
    rng = np.random.default_rng(3)
    layer = ck.Conv2d(3, 4, 3, padding=1, rng=rng)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    nhwc_view = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(layer(nhwc_view), layer(x), rtol=1e-6, atol=1e-6)


def test_backward_accumulates_gradients():
    rng = np.random.default_rng(4)
    layer = ck.Conv2d(2, 2, 3, rng=rng)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    dy = np.ones((1, 2, 3, 3), np.float32)
    layer(x)
    layer.backward(dy)
    once = layer.weight.grad.copy()
    layer(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.weight.grad, 2 * once, rtol=1e-6)


@pytest.mark.parametrize("make, x, error, pattern", [
    (lambda: ck.Conv2d(3, 4, 3), np.zeros((8, 8), np.float32), ck.ShapeError, r"expected a 4-D input"),
    (lambda: ck.Conv2d(3, 4, 3), np.zeros((1, 2, 8, 8), np.float32), ck.ShapeError,
     r"expected 3 input channels"),
    (lambda: ck.Conv2d(3, 4, 3), np.zeros((1, 3, 8, 8), np.int64), TypeError, r"floating-point"),
    (lambda: ck.Conv2d(3, 4, 3), [[0.0]], TypeError, r"expected a NumPy array"),
    (lambda: ck.Conv2d(3, 4, 5), np.zeros((1, 3, 2, 2), np.float32), ck.ShapeError,
     r"kernel \(F=5\) is larger than the padded input"),
])
def test_bad_input_gets_a_clear_error(make, x, error, pattern):
    with pytest.raises(error, match=pattern):
        make()(x)


@pytest.mark.parametrize("make, shape, pattern", [
    (lambda: ck.Conv2d(3, 4, 3), (1, 2, 8, 8), r"Conv2d\(3->4.*\): expected input \(N, C, H, W\) with C=3, "
                                              r"received shape \(1, 2, 8, 8\)"),
    (lambda: ck.Conv2d(3, 4, 3), (3, 8),
     r"expected input \(N, C, H, W\) with C=3, received shape \(3, 8\)"),
    (lambda: ck.Conv1d(3, 4, 3), (1, 3, 4, 4), r"Conv1d\(3->4.*\): expected input \(N, C, W\) with C=3"),
    (lambda: ck.Conv3d(3, 4, 3), (1, 3, 4, 4),
     r"Conv3d\(3->4.*\): expected input \(N, C, D, H, W\) with C=3"),
    (lambda: ck.Conv2d(3, 4, 5), (1, 3, 2, 2), r"kernel \(F=5\) is larger than the padded input"),
])
def test_output_shape_raises_what_forward_raises(make, shape, pattern):
    """output_shape (used by summary and check, without data) reports the same problems as forward."""
    with pytest.raises(ck.ShapeError, match=pattern):
        make().output_shape(shape)


def test_output_shape_of_a_one_axis_shape_is_a_shape_error():
    with pytest.raises(ck.ShapeError, match=r"Conv2d\(3->4.*\): expected input \(N, C, H, W\)"):
        ck.Conv2d(3, 4, 3).output_shape((3,))


@pytest.mark.parametrize("make, x, pattern", [
    (lambda: ck.Conv1d(3, 4, 3), np.zeros((1, 3, 4, 4), np.float32),
     r"Conv1d\(3->4.*\): expected a 3-D input \(N, C, W\), received shape \(1, 3, 4, 4\)"),
    (lambda: ck.Conv3d(3, 4, 3), np.zeros((3, 4, 4), np.float32),
     r"Conv3d\(3->4.*\): expected a 5-D input \(N, C, D, H, W\), received shape \(3, 4, 4\)"),
])
def test_conv1d_and_conv3d_check_the_rank(make, x, pattern):
    with pytest.raises(ck.ShapeError, match=pattern):
        make()(x)


def test_unknown_algorithm_lists_the_choices():
    with pytest.raises(ValueError,
                       match=r"Conv2d: Invalid algorithm 'fft', should be one of "
                             r"\('auto', 'reference', 'im2col'"):
        ck.Conv2d(3, 4, 3, algorithm="fft")


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(in_channels=0, out_channels=4, kernel_size=3), r"Received in_channels=0"),
    (dict(in_channels=3, out_channels=4, kernel_size=0), r"Received kernel_size=0"),
    (dict(in_channels=3, out_channels=4, kernel_size=3, stride=-1), r"Received stride=-1"),
    (dict(in_channels=3, out_channels=4, kernel_size=3, groups=2), r"divisible by groups"),
    (dict(in_channels=3, out_channels=4, kernel_size=3, padding="full"), r"Invalid padding string 'full'"),
    (dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding="same"),
     r"only defined for stride=1"),
    (dict(in_channels=3, out_channels=4, kernel_size=3, fit="round"), r"Invalid fit 'round'"),
])
def test_bad_hyperparameters(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        ck.Conv2d(**kwargs)


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="backward was called before forward"):
        ck.Conv2d(1, 1, 3).backward(np.zeros((1, 1, 1, 1), np.float32))


def test_config_round_trip():
    layer = ck.Conv2d(4, 8, (3, 5), stride=(2, 1), padding=(1, 2), groups=2, bias=False)
    rebuilt = ck.layers.from_config(layer.config())
    assert rebuilt.config() == layer.config() and rebuilt.weight.shape == layer.weight.shape
    assert repr(rebuilt) == ("Conv2d(4->8, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2), groups=2, "
                             "bias=False)")
