"""cnnkit.reference.upsample: interpolate against PyTorch (forward and dx, float64) on its OpInfo samples for
nearest, nearest-exact, linear, bilinear and trilinear (and upsample_nearest/upsample_bilinear), a sweep of
sizes, factors and align_corners, numeric gradients, worked values and an error per bad argument."""

import numpy as np
import pytest
from reference_checks import assert_all_same, assert_gradients

from cnnkit.reference import upsample as R

VARIANTS = [("interpolate", m) for m in ("nearest", "nearest-exact", "linear", "bilinear", "trilinear")] + \
    [("upsample_nearest", ""), ("upsample_bilinear", "")]


def _opinfo_cases():
    try:
        from opinfo_samples import samples

        cases = []
        for name, variant in VARIANTS:
            for x, args, kwargs in samples(f"nn.functional.{name}", variant):
                kw = dict(kwargs)
                if args:
                    kw["size"] = args[0]
                if name == "upsample_nearest":
                    kw["mode"] = "nearest"
                elif name == "upsample_bilinear":
                    kw.update(mode="bilinear", align_corners=True)
                kw = {k: tuple(v) if k == "size" and v is not None else v for k, v in kw.items()}
                cases.append((x.detach().numpy(), kw))
        return cases
    except pytest.skip.Exception:
        return [None]


def _theirs(x, kwargs, dy):
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    y = torch.nn.functional.interpolate(tx, **kwargs)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), tx.grad.numpy()


def _ours(x, kwargs, dy):
    y, cache = R.interpolate(x, **kwargs)
    return y, R.interpolate_backward(dy, cache)


def _torch_backward_disagrees_with_its_forward(x, kwargs, out):
    """PyTorch 2.13's 1-D and 3-D nearest kernels compute the forward with the scale factor, but their
    backward copies (m = n) or halves (m = 2n) the index, as its 2-D kernel does both ways: there its
    gradient is not the gradient of its output. Ours is (the forward equals torch's; numeric check)."""
    spatial = x.shape[2:]
    return (kwargs.get("mode", "nearest") == "nearest" and len(spatial) != 2
            and kwargs.get("scale_factor") is not None and not kwargs.get("recompute_scale_factor")
            and any(m in (n, 2 * n) for n, m in zip(spatial, out, strict=True)))


def _check(x, kwargs):
    y, _ = R.interpolate(x, **kwargs)
    dy = np.random.default_rng(0).standard_normal(y.shape)
    ours, theirs = _ours(x, kwargs, dy), _theirs(x, kwargs, dy)
    if _torch_backward_disagrees_with_its_forward(x, kwargs, y.shape[2:]):
        assert_all_same(ours[0], theirs[0], ("y",))
        assert_gradients(lambda x: R.interpolate(x, **kwargs), R.interpolate_backward, dict(x=x))
        return
    assert_all_same(ours, theirs, ("y", "dx"))


@pytest.mark.parametrize("case", _opinfo_cases(),
                         ids=lambda c: "none" if c is None else f"{c[0].shape}-{sorted(c[1].items())}")
def test_match_pytorch_on_its_opinfo_samples(case):
    if case is None:
        pytest.skip("needs torch and expecttest for PyTorch's OpInfo samples")
    _check(*case)


def _sweep():
    cases = []
    for mode, shape in [("nearest", (2, 3, 7)), ("nearest", (1, 2, 5, 6)), ("nearest-exact", (1, 2, 5, 6)),
                        ("nearest", (1, 2, 3, 4, 5)), ("linear", (2, 2, 7)), ("bilinear", (2, 2, 5, 6)),
                        ("trilinear", (1, 2, 3, 4, 5))]:
        nd = len(shape) - 2
        corners = [None] if mode.startswith("nearest") else [None, False, True]
        for align in corners:
            for factor in (2, 3, 0.5, 1.5, 2.25, 1, 0.3, (2, 1.5, 3)[:nd] if nd > 1 else 4):
                for recompute in (None, True):
                    cases.append((shape, dict(scale_factor=factor, mode=mode, align_corners=align,
                                              recompute_scale_factor=recompute)))
            for size in (1, 2, 9, (13, 4, 6)[:nd] if nd > 1 else 16):
                cases.append((shape, dict(size=size, mode=mode, align_corners=align)))
    return cases


@pytest.mark.parametrize("shape, kwargs", _sweep(), ids=lambda v: str(v))
def test_match_pytorch_over_sizes_factors_and_corners(shape, kwargs):
    try:
        R.interpolate(np.zeros(shape), **kwargs)
    except ValueError as e:  # an empty output, which PyTorch refuses too
        assert "would be empty" in str(e)
        return
    _check(np.random.default_rng(len(shape)).standard_normal(shape), kwargs)


@pytest.mark.parametrize("kwargs", [dict(scale_factor=2), dict(size=(5, 3), mode="nearest-exact"),
                                    dict(scale_factor=1.7, mode="bilinear"),
                                    dict(size=(7, 2), mode="bilinear", align_corners=True)])
def test_numeric_gradients(kwargs):
    x = np.random.default_rng(1).standard_normal((2, 2, 4, 3))
    assert_gradients(lambda x: R.interpolate(x, **kwargs), R.interpolate_backward, dict(x=x))


def test_worked_values():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert R.interpolate(x, scale_factor=2)[0][0, 0].tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4],
                                                                  [3, 3, 4, 4]]
    corners = R.interpolate(x, size=3, mode="bilinear", align_corners=True)[0][0, 0]
    assert corners.tolist() == [[1.0, 1.5, 2.0], [2.0, 2.5, 3.0], [3.0, 3.5, 4.0]]
    # the gradient of nearest upsampling by 2 sums each 2x2 block back onto its pixel
    assert R.interpolate_backward(np.ones((1, 1, 4, 4)), R.interpolate(x, scale_factor=2)[1]).tolist() == \
        [[[[4.0, 4.0], [4.0, 4.0]]]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_the_dtype(dtype):
    x = np.ones((1, 2, 3, 3), dtype)
    for mode in ("nearest", "bilinear"):
        y, cache = R.interpolate(x, scale_factor=1.5, mode=mode)
        assert y.dtype == R.interpolate_backward(y, cache).dtype == dtype


@pytest.mark.parametrize("shape, kwargs, error, pattern", [
    ((1, 1, 4), dict(scale_factor=2, mode="cubic"), ValueError,
     r"interpolate: Received mode='cubic'; expected one of 'nearest', 'nearest-exact', 'linear'"),
    ((1, 1, 4), dict(), ValueError, r"Received size=None, scale_factor=None; give exactly one of them"),
    ((1, 1, 4), dict(size=3, scale_factor=2), ValueError, r"give exactly one of them"),
    ((1, 1, 4), dict(scale_factor=2, align_corners=True), ValueError,
     r"align_corners=True with mode='nearest'; align_corners applies to the linear modes only"),
    ((1, 1, 4), dict(scale_factor=2, mode="linear", align_corners=1), TypeError,
     r"Received align_corners=1; expected True, False or None"),
    ((1, 1, 4, 4), dict(scale_factor=2, mode="linear"), ValueError,
     r"mode='linear' takes an input \(N, C, \*S\) with 1 spatial axes; received shape \(1, 1, 4, 4\)"),
    ((1, 1, 4, 4), dict(size=(2, 3, 4)), ValueError, r"Received size=\(2, 3, 4\) for 2 spatial axes"),
    ((1, 1, 4, 4), dict(size=2.0), TypeError, r"Received size=2.0; expected positive ints"),
    ((1, 1, 4, 4), dict(scale_factor=-1), ValueError, r"Received scale_factor=-1; expected positive finite"),
    ((1, 1, 4, 4), dict(scale_factor=0.1), ValueError, r"the output of shape \(1, 1, 0, 0\) would be empty"),
])
def test_bad_arguments(shape, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        R.interpolate(np.zeros(shape), **kwargs)
