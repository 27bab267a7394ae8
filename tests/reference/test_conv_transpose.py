"""cnnkit.reference.conv_transpose: numeric gradients, the transpose of the reference convolution, equality
with cnnkit.functional over random shapes, PyTorch parity, and errors."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference_checks import assert_all_same, assert_gradients, assert_same, same_error, torch_grads

import cnnkit.functional as F
from cnnkit.errors import ShapeError
from cnnkit.reference import conv as RC
from cnnkit.reference import conv_transpose as R

GRADS = ("y", "dx", "dweight", "dbias")


@st.composite
def cases(draw, max_batch=3, symmetric=False):
    """A valid transposed convolution; ``symmetric``: one padding per axis (what PyTorch accepts)."""
    nd = draw(st.sampled_from([1, 2, 2, 3]))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    Cin, Cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    axes = st.lists(st.integers(1, 3), min_size=nd, max_size=nd)
    kernel, stride = draw(axes), draw(axes)
    dilation = draw(st.lists(st.integers(1, 2), min_size=nd, max_size=nd))
    size = draw(st.lists(st.integers(1, 4 if nd == 3 else 6), min_size=nd, max_size=nd))
    # output_padding must stay below stride or dilation (else it would add outputs no window reaches)
    output_padding = [draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)]
    pads = []
    for n, k, s, d, op in zip(size, kernel, stride, dilation, output_padding):
        room = (n - 1) * s + d * (k - 1) + op  # S_out >= 1 leaves this much to crop
        lo = draw(st.integers(0, min(2, room // 2)))
        pads.append((lo, lo) if symmetric else (lo, draw(st.integers(0, min(2, room - lo)))))
    return dict(x=(draw(st.integers(0, max_batch)), Cin, *size), w=(Cin, Cout // groups, *kernel),
                bias=draw(st.booleans()), stride=tuple(stride), padding=tuple(pads),
                output_padding=tuple(output_padding), groups=groups, dilation=tuple(dilation))


def _arrays(case, dtype=np.float64, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal(case["x"]).astype(dtype)
    w = r.standard_normal(case["w"]).astype(dtype)
    b = r.standard_normal(case["w"][1] * case["groups"]).astype(dtype) if case["bias"] else None
    return x, w, b


def _hyper(case):
    return (case["stride"], case["padding"], case["output_padding"], case["groups"], case["dilation"])


@settings(max_examples=50, deadline=None)
@given(cases())
def test_matches_functional(case):
    x, w, b = _arrays(case)
    y, cache = R.conv_transposend(x, w, b, *_hyper(case))
    y_f, cache_f = F.conv_transposend(x, w, b, *_hyper(case))
    dy = np.random.default_rng(1).standard_normal(y.shape)
    assert_all_same((y, *R.conv_transposend_backward(dy, cache)),
                    (y_f, *F.conv_transposend_backward(dy, cache_f)), GRADS)


@settings(max_examples=50, deadline=None)
@given(cases())
def test_is_the_backward_data_of_the_convolution(case):
    """y = conv_transpose(x, W) is the dx that convnd_backward gives for dy = x, on a y-sized input."""
    # output_padding >= stride (allowed when dilation is larger) gives the convolution more outputs than x
    assume(all(op < s for op, s in zip(case["output_padding"], case["stride"])))
    x, w, _ = _arrays({**case, "bias": False})
    y, _ = R.conv_transposend(x, w, None, *_hyper(case))
    stride, padding, _, groups, dilation = _hyper(case)
    conv_in = np.zeros(y.shape)  # only its shape matters to dx
    _, cache = RC.convnd(conv_in, w, None, stride, padding, dilation, groups, fit="crop")
    dx, _, _ = RC.convnd_backward(x, cache)
    assert_same(dx, y, "conv backward-data")


@pytest.mark.parametrize("case", [
    dict(x=(2, 2, 3), w=(2, 3, 3), bias=True, stride=(2,), padding=((1, 0),), output_padding=(1,), groups=1,
         dilation=(1,)),
    dict(x=(1, 4, 3, 2), w=(4, 1, 2, 3), bias=True, stride=(2, 1), padding=((0, 1), (1, 1)),
         output_padding=(1, 0), groups=2, dilation=(1, 2)),
    dict(x=(2, 2, 2, 2, 2), w=(2, 2, 2, 1, 2), bias=False, stride=(1, 2, 1), padding=((0, 0), (1, 0), (0, 1)),
         output_padding=(0, 1, 0), groups=1, dilation=(2, 1, 1)),
])
def test_numeric_gradients(case):
    x, w, b = _arrays(case)
    arrays = dict(x=x, weight=w) if b is None else dict(x=x, weight=w, bias=b)
    stride, padding, output_padding, groups, dilation = _hyper(case)
    assert_gradients(lambda **a: R.conv_transposend(**a, stride=stride, padding=padding, groups=groups,
                                                    output_padding=output_padding, dilation=dilation),
                     R.conv_transposend_backward, arrays)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_the_dtype(dtype):
    case = dict(x=(2, 4, 3, 3), w=(4, 3, 3, 3), bias=True, stride=(2, 2), padding=((1, 1), (0, 1)),
                output_padding=(1, 0), groups=2, dilation=(1, 1))
    x, w, b = _arrays(case, dtype)
    y, cache = R.conv_transpose2d(x, w, b, *_hyper(case))
    assert [a.dtype for a in (y, *R.conv_transpose2d_backward(y, cache))] == [dtype] * 4


@pytest.mark.parametrize("call", [
    lambda m: m.conv_transpose2d(np.zeros((1, 3, 4)), np.zeros((3, 2, 2, 2))),  # not 4-D
    lambda m: m.conv_transpose2d(np.zeros((1, 3, 4, 4)), np.zeros((2, 2, 2, 2))),  # C_in does not match
    lambda m: m.conv_transpose2d(np.zeros((1, 3, 4, 4)), np.zeros((3, 2, 2, 2)), groups=2),
    lambda m: m.conv_transpose2d(np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1)), padding=1),  # S_out < 1
    lambda m: m.conv_transposend(np.zeros((1, 1, 4)), np.zeros((1, 1, 2)), output_padding=-1),
    lambda m: m.conv_transposend(np.zeros((1, 1, 4)), np.zeros((1, 1, 2)), stride=(1, 1)),
])
def test_errors_match_functional(call):
    same_error(lambda: call(R), lambda: call(F))


def test_too_much_padding_says_why():
    with pytest.raises(ShapeError, match=r"conv_transpose2d: H_out = .* = -1 < 1; use less padding"):
        R.conv_transpose2d(np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1)), padding=1)


@settings(max_examples=40, deadline=None)
@given(cases(max_batch=2, symmetric=True))
def test_parity_with_pytorch(case):
    pytest.importorskip("torch")
    import torch.nn.functional as tF

    x, w, b = _arrays(case)
    stride, padding, output_padding, groups, dilation = _hyper(case)
    y, cache = R.conv_transposend(x, w, b, *_hyper(case))
    dy = np.random.default_rng(1).standard_normal(y.shape)
    fn = (tF.conv_transpose1d, tF.conv_transpose2d, tF.conv_transpose3d)[x.ndim - 3]
    ty, grads = torch_grads(lambda tx, tw, tb: fn(tx, tw, tb, stride, tuple(lo for lo, _ in padding),
                                                  output_padding, groups, dilation), (x, w, b), dy)
    assert_all_same((y, *R.conv_transposend_backward(dy, cache)), (ty, *grads), GRADS, tol=1e-12)
