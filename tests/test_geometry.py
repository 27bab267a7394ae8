"""cnnkit.geometry: the output-size rule (W - F + 2P)/S + 1 and its fit policies, padding pairs, argument
checks, conv/pool/transposed-conv geometry and window slices. (The advice of its errors is applied and
re-checked in test_geometry_advice.py.)"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnkit import ShapeError
from cnnkit.geometry import (
    as_tuple,
    axis_names,
    check_fit,
    conv_geometry,
    conv_setup,
    output_size,
    padding_pairs,
    pool_geometry,
    transpose_geometry,
    window_geometry,
    window_slices,
)

# --- the output-size rule --------------------------------------------------------------------------------

@pytest.mark.parametrize("args, kwargs, expected", [
    ((5, 3), dict(stride=1, padding=1), 5),             # the notes: 5x5 input, 3x3 filter, padding 1
    ((5, 3), dict(stride=2, padding=1), 3),
    ((227, 11), dict(stride=4), 55),                     # AlexNet's first layer
    ((32, 3), dict(padding=1, dilation=2), 30),          # effective F = 5
    ((7, 3), dict(padding=(0, 2)), 7),                   # a (before, after) pair
    ((10, 3), dict(stride=2, fit="crop"), 4),            # floor, like PyTorch
    ((10, 3), dict(stride=2, fit="pad"), 5),             # ceil mode
    ((3, 3), dict(), 1),
])
def test_output_size_worked_examples(args, kwargs, expected):
    assert output_size(*args, **kwargs) == expected


def test_window_geometry_returns_the_padding_applied():
    assert window_geometry(10, 3, 2, 0, fit="crop") == (4, 0, 0)  # the last column is never visited
    assert window_geometry(10, 3, 2, 0, fit="pad") == (5, 0, 1)   # one zero after makes the last window fit
    assert window_geometry(10, 3, 2, (1, 0), fit="pad") == (5, 1, 0)  # now it tiles: nothing added
    assert window_geometry(9, 3, 2, 1) == (5, 1, 1)


@given(n=st.integers(1, 40), k=st.integers(1, 6), s=st.integers(1, 5), lo=st.integers(0, 3),
       hi=st.integers(0, 3), d=st.integers(1, 3))
def test_fit_policies_are_floor_and_pytorchs_ceil_mode(n, k, s, lo, hi, d):
    F = d * (k - 1) + 1
    span = n + lo + hi
    if F > span:
        for fit in ("error", "crop") if F - span < s else ("error", "crop", "pad"):
            with pytest.raises(ShapeError, match=r"is larger than the padded input"):
                output_size(n, k, s, (lo, hi), d, fit)
        if F - span < s:  # PyTorch's ceil mode: ceil((span - F) / s) + 1 = 1 partial window from the start
            assert window_geometry(n, k, s, (lo, hi), d, "pad") == (1, lo, F - n - lo)
        return
    floor = (span - F) // s + 1
    assert output_size(n, k, s, (lo, hi), d, "crop") == floor
    ceil = math.ceil((span - F) / s) + 1
    if (span - F) % s and (ceil - 1) * s >= n + lo:  # PyTorch: the last window starts inside the input
        ceil -= 1                                      # or the leading padding
    out, before, after = window_geometry(n, k, s, (lo, hi), d, "pad")
    assert (out, before) == (ceil, lo)
    assert (out - 1) * s + F <= n + before + after  # the padding given is enough for the last window
    if (span - F) % s == 0:
        assert output_size(n, k, s, (lo, hi), d) == floor == out
    else:
        with pytest.raises(ShapeError, match=r"is not an integer; use "):
            output_size(n, k, s, (lo, hi), d)


def test_errors_show_the_formula_with_the_numbers():
    with pytest.raises(ShapeError, match=r"^output_size: \(W - F \+ 2P\)/S \+ 1 = \(10 - 3 \+ 0\)/2 \+ 1 = "
                                         r"4.5 is not an integer; use .*fit='crop'.*fit='pad'"):
        output_size(10, 3, stride=2)
    with pytest.raises(ShapeError, match=r"^conv1: \(H - F \+ 2P\)/S \+ 1 = \(2 - 5 \+ 0\)/1 \+ 1 < 1: the "
                                         r"kernel \(F=5\) is larger than the padded input \(H \+ 2P = 2\)"):
        window_geometry(2, 3, dilation=2, name="conv1", axis="H")


@pytest.mark.parametrize("fit", ["floor", "", None])
def test_fit_must_be_one_of_three(fit):
    with pytest.raises(ValueError, match=r"Invalid fit .*, should be one of 'error', 'pad', 'crop'"):
        output_size(10, 3, fit=fit)
    with pytest.raises(ValueError, match="Invalid fit"):
        check_fit(fit)
    assert check_fit("pad") == "pad"


# --- argument checks -------------------------------------------------------------------------------------

def test_axis_names():
    assert axis_names(1) == ("W",) and axis_names(2) == ("H", "W") and axis_names(3) == ("D", "H", "W")
    assert axis_names(4) == ("S0", "S1", "S2", "S3")


def test_as_tuple_repeats_an_int_and_checks_every_entry():
    assert as_tuple(3, 2, "kernel_size") == (3, 3)
    assert as_tuple([1, 2, 3], 3, "stride") == (1, 2, 3)
    assert as_tuple(np.int64(2), 1, "stride") == (2,)
    assert as_tuple(0, 2, "padding", minimum=0) == (0, 0)


@pytest.mark.parametrize("value, error, pattern", [
    ((3, 3, 3), ValueError, r"Received kernel_size=\(3, 3, 3\): expected an int or a sequence of 2 ints"),
    (True, TypeError, r"Received kernel_size=True: expected an int or a sequence of 2 ints"),
    (2.0, TypeError, r"Received kernel_size=2.0"),
    ((3, "3"), TypeError, r"Received kernel_size=\(3, '3'\)"),
    (0, ValueError, r"Received kernel_size=0: every entry must be >= 1"),
    ((3, -1), ValueError, r"every entry must be >= 1"),
])
def test_as_tuple_errors(value, error, pattern):
    with pytest.raises(error, match=pattern):
        as_tuple(value, 2, "kernel_size")


@pytest.mark.parametrize("padding, kernel_size, dilation, expected", [
    (1, None, None, ((1, 1), (1, 1))),
    ((0, 2), None, None, ((0, 0), (2, 2))),                # one int per axis: H=0, W=2 as in PyTorch
    (((0, 1), (2, 3)), None, None, ((0, 1), (2, 3))),      # one (before, after) pair per axis
    ("valid", None, None, ((0, 0), (0, 0))),
    ("same", (3, 5), (1, 1), ((1, 1), (2, 2))),
    ("same", (4, 2), (1, 1), ((1, 2), (0, 1))),            # an odd total puts the extra zero after
    ("same", (3, 3), (2, 1), ((2, 2), (1, 1))),            # dilation widens the kernel
])
def test_padding_pairs(padding, kernel_size, dilation, expected):
    assert padding_pairs(padding, 2, kernel_size, dilation) == expected


@pytest.mark.parametrize("padding, error, pattern", [
    ("full", ValueError, r"Invalid padding string 'full', should be one of 'valid', 'same' or an int"),
    (((0, 1),), ValueError, r"Received padding=\(\(0, 1\),\): expected 2 \(before, after\) pairs"),
    (((0, 1), (1, 2, 3)), ValueError, r"expected 2 \(before, after\) pairs"),
    (-1, ValueError, r"Received padding=-1: every entry must be >= 0"),
    (((0, -1), (0, 0)), ValueError, r"every entry must be >= 0"),
    (1.5, TypeError, r"Received padding=1.5"),
])
def test_padding_pairs_errors(padding, error, pattern):
    with pytest.raises(error, match=pattern):
        padding_pairs(padding, 2, (3, 3), (1, 1))


# --- whole windows ---------------------------------------------------------------------------------------

def test_conv_geometry_gives_sizes_and_pads_per_axis():
    assert conv_geometry((10, 7), (3, 3), (2, 1), 0, (1, 1), "pad") == ((5, 5), ((0, 1), (0, 0)))
    assert conv_geometry((8,), (3,), (1,), "same", (2,)) == ((8,), ((2, 2),))
    with pytest.raises(ShapeError, match=r"^conv: \(H - F \+ 2P\)/S \+ 1 = \(10 - 3 \+ 0\)/2 \+ 1 = 4.5"):
        conv_geometry((10, 7), (3, 3), (2, 1), 0, (1, 1))


def test_conv_setup_checks_channels_and_groups():
    stride, dilation, out, pads = conv_setup((2, 4, 9, 9), (6, 2, 3, 3), 2, 1, 1, groups=2)
    assert (stride, dilation, out, pads) == ((2, 2), (1, 1), (5, 5), ((1, 1), (1, 1)))
    with pytest.raises(ShapeError, match=r"conv2d: input has 4 channels and the weight \(6, 4, 3, 3\); with "
                                         r"groups=2 the weight must be \(K, C/groups=2, \.\.\.\)"):
        conv_setup((2, 4, 9, 9), (6, 4, 3, 3), 1, 0, 1, groups=2, name="conv2d")
    with pytest.raises(ShapeError, match="K divisible by groups"):
        conv_setup((2, 4, 9, 9), (5, 2, 3, 3), 1, 0, 1, groups=2)


def test_pool_geometry_defaults_the_stride_to_the_kernel():
    geo = pool_geometry((1, 3, 9, 8), 2, fit="crop")
    assert geo == dict(kernel_size=(2, 2), stride=(2, 2), dilation=(1, 1), out=(4, 4), pads=((0, 0), (0, 0)))
    assert pool_geometry((1, 3, 9), 3, 2, 1, nd=1)["out"] == (5,)
    with pytest.raises(ShapeError, match=r"max_pool2d: expected a 4-D input \(N, C, 2 spatial axes\), "
                                         r"received shape \(3, 9, 8\)"):
        pool_geometry((3, 9, 8), 2, nd=2, name="max_pool2d")
    with pytest.raises(ValueError, match=r"Received stride=0: every entry must be >= 1"):
        pool_geometry((1, 3, 9, 8), 2, 0)


@pytest.mark.parametrize("spatial, kernel_size, stride, padding, dilation, output_padding", [
    ((4, 5), (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), (1, 0)),
    ((7,), (4,), (3,), ((0, 2),), (2,), (0,)),
    ((1, 1, 1), (1, 2, 3), (1, 1, 2), ((0, 0),) * 3, (1, 1, 1), (0, 0, 0)),
])
def test_transpose_geometry_inverts_the_convolution_rule(spatial, kernel_size, stride, padding, dilation,
                                                         output_padding):
    out = transpose_geometry(spatial, kernel_size, stride, padding, dilation, output_padding)
    for n, m, k, s, pad, d, op in zip(spatial, out, kernel_size, stride, padding, dilation, output_padding):
        # a convolution with the same window maps the output back to the input (output_padding is cropped)
        assert output_size(m - op, k, s, pad, d, fit="crop") == n


def test_transpose_geometry_refuses_an_empty_output():
    with pytest.raises(ShapeError, match=r"conv_transpose: W_out = \(W - 1\)\*S - 2P \+ F \+ output_padding "
                                         r"= \(1 - 1\)\*1 - 4 \+ 3 \+ 0 = -1 < 1; use less padding"):
        transpose_geometry((1,), (3,), (1,), ((2, 2),), (1,), (0,))


@given(offset=st.tuples(st.integers(0, 2), st.integers(0, 2)), dilation=st.tuples(st.integers(1, 2),
       st.integers(1, 2)), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       out=st.tuples(st.integers(1, 4), st.integers(1, 4)))
def test_window_slices_read_what_each_tap_sees(offset, dilation, stride, out):
    """xp[window_slices(...)][..., i, j] is the input that tap `offset` of output (i, j)'s window reads."""
    size = [o * d + s * (n - 1) + 1 for o, d, s, n in zip(offset, dilation, stride, out)]
    xp = np.arange(2 * math.prod(size)).reshape(1, 2, *size)
    taps = xp[window_slices(offset, dilation, stride, out)]
    assert taps.shape == (1, 2, *out)
    for i in range(out[0]):
        for j in range(out[1]):
            row, col = i * stride[0] + offset[0] * dilation[0], j * stride[1] + offset[1] * dilation[1]
            assert (taps[..., i, j] == xp[..., row, col]).all()
