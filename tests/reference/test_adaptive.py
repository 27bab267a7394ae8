"""Adaptive pooling kernels: PyTorch's window rule, numeric gradients, parity over its OpInfo samples."""

import math

import numpy as np
import pytest
from opinfo_samples import samples
from reference_checks import assert_gradients, assert_same

from cnnkit.errors import ShapeError
from cnnkit.reference import adaptive as A

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("n", range(1, 12))
@pytest.mark.parametrize("m", range(1, 12))
def test_windows_follow_pytorchs_rule(n, m):
    start, end = A.adaptive_windows(n, m)
    assert start.tolist() == [math.floor(i * n / m) for i in range(m)]
    assert end.tolist() == [math.ceil((i + 1) * n / m) for i in range(m)]
    assert start[0] == 0 and end[-1] == n and (end > start).all()  # every input is covered, no window empty


def test_divisible_sizes_are_an_ordinary_pool():
    x = np.arange(36.0).reshape(1, 1, 6, 6)
    y, _ = A.adaptive_avg_pool(x, 3)
    assert y[0, 0].tolist() == x.reshape(3, 2, 3, 2).mean(axis=(1, 3)).tolist()
    y, cache = A.adaptive_max_pool(x, (2, 3))
    assert y[0, 0].tolist() == [[13, 15, 17], [31, 33, 35]]
    assert cache["indices"][0, 0].tolist() == [[13, 15, 17], [31, 33, 35]]  # flat positions in the plane


def test_ties_go_to_the_first_max_and_shared_maxima_sum_their_gradients():
    x = np.array([[[1.0, 5.0, 5.0, 0.0, 2.0]]])
    y, cache = A.adaptive_max_pool(x, 3)  # windows [0, 2), [1, 4), [3, 5)
    assert y.tolist() == [[[5.0, 5.0, 2.0]]] and cache["indices"].tolist() == [[[1, 1, 4]]]
    dx = A.adaptive_max_pool_backward(np.array([[[1.0, 10.0, 100.0]]]), cache)
    assert dx.tolist() == [[[0.0, 11.0, 0.0, 0.0, 100.0]]]


@pytest.mark.parametrize("shape, size", [((2, 3, 7), 3), ((1, 2, 5, 7), (3, 4)), ((2, 1, 3, 4), (5, 6)),
                                         ((1, 2, 4, 5, 3), (2, None, 3))])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_numeric_gradients(shape, size, kind):
    x = np.random.default_rng(0).permutation(math.prod(shape)).reshape(shape) / 7.0  # no ties
    forward = getattr(A, f"adaptive_{kind}_pool")
    backward = getattr(A, f"adaptive_{kind}_pool_backward")
    assert_gradients(lambda x: forward(x, size), backward, {"x": x})


OPS = [(f"nn.functional.adaptive_{kind}_pool{nd}d", kind, nd) for kind in ("avg", "max") for nd in (1, 2, 3)]


@pytest.mark.parametrize("name, kind, nd", OPS, ids=[op[0].rsplit(".", 1)[1] for op in OPS])
def test_pytorch_opinfo_samples(name, kind, nd):
    """Every sample PyTorch tests the op with (batched and unbatched inputs, None axes, up- and downsizing):
    forward, indices and input gradient equal PyTorch's in float64."""
    F = torch.nn.functional
    cases = samples(name)
    assert cases
    for tx, args, kwargs in cases:
        size = args[0] if args else kwargs["output_size"]
        ty = getattr(F, f"adaptive_{kind}_pool{nd}d")(tx, size)
        x = tx.detach().numpy()
        batched = x.reshape(-1, *x.shape[-nd - 1:]) if x.ndim == nd + 2 else x[None]
        y, cache = getattr(A, f"adaptive_{kind}_pool")(batched, size)
        assert_same(y.reshape(ty.shape), ty.detach().numpy(), f"{name} {tuple(x.shape)} {size}")
        dy = np.random.default_rng(1).standard_normal(tuple(ty.shape))
        (dx_torch,) = torch.autograd.grad(ty, tx, torch.from_numpy(dy))
        dx = getattr(A, f"adaptive_{kind}_pool_backward")(dy.reshape(y.shape), cache)
        assert_same(dx.reshape(x.shape), dx_torch.numpy(), f"{name} dx {tuple(x.shape)} {size}")
        if kind == "max":
            _, indices = getattr(F, f"adaptive_max_pool{nd}d")(tx, size, return_indices=True)
            assert (cache["indices"].reshape(indices.shape) == indices.numpy()).all()


def test_float32_stays_float32():
    x = np.ones((1, 2, 5, 5), np.float32)
    for kind in ("avg", "max"):
        y, cache = getattr(A, f"adaptive_{kind}_pool")(x, 3)
        assert y.dtype == np.float32
        assert getattr(A, f"adaptive_{kind}_pool_backward")(np.ones_like(y), cache).dtype == np.float32


@pytest.mark.parametrize("size, error, match", [
    (0, ValueError, r"adaptive_avg_pool: Received output_size=0; expected an int >= 1, None"),
    ((2, 3, 4), ValueError, r"Received output_size=\(2, 3, 4\); expected .* a sequence of 2"),
    (2.5, TypeError, r"Received output_size=2.5"),
    ((True, 2), TypeError, r"Received output_size=\(True, 2\)"),
])
def test_bad_output_sizes(size, error, match):
    with pytest.raises(error, match=match):
        A.adaptive_avg_pool(np.ones((1, 1, 4, 4)), size)


def test_bad_inputs():
    with pytest.raises(ShapeError, match=r"adaptive_max_pool: expected an input \(N, C, \*S\) with 1 to 3 "
                                         r"spatial axes, received shape \(2, 3\)"):
        A.adaptive_max_pool(np.ones((2, 3)), 1)
    with pytest.raises(ShapeError, match=r"every spatial axis needs at least one position, received shape "
                                         r"\(1, 1, 0, 3\)"):
        A.adaptive_max_pool(np.ones((1, 1, 0, 3)), 2)
