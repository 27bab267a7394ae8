"""cnnkit.reference.rearrange: pixel_shuffle, pixel_unshuffle, channel_shuffle and unflatten against
PyTorch (forward and dx, exactly) on its OpInfo samples and a sweep, round trips, numeric gradients."""

import numpy as np
import pytest
from reference_checks import assert_all_same, assert_gradients

from cnnkit.reference import rearrange as R


def _opinfo_cases():
    try:
        from opinfo_samples import samples

        cases = []
        for name, op in [("nn.functional.pixel_shuffle", "pixel_shuffle"),
                         ("nn.functional.pixel_unshuffle", "pixel_unshuffle"),
                         ("nn.functional.channel_shuffle", "channel_shuffle"), ("unflatten", "unflatten")]:
            for x, args, kwargs in samples(name):
                cases.append((op, x.detach().numpy(), tuple(args) + tuple(kwargs.values())))
        return cases
    except pytest.skip.Exception:
        return [None]


def _theirs(op, x, args, dy):
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    fn = torch.unflatten if op == "unflatten" else getattr(torch.nn.functional, op)
    y = fn(tx, *args)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), tx.grad.numpy()


def _ours(op, x, args, dy):
    y, cache = getattr(R, op)(x, *args)
    return y, getattr(R, f"{op}_backward")(dy, cache)


@pytest.mark.parametrize("case", _opinfo_cases(),
                         ids=lambda c: "none" if c is None else f"{c[0]}-{c[1].shape}-{c[2]}")
def test_match_pytorch_on_its_opinfo_samples(case):
    if case is None:
        pytest.skip("needs torch and expecttest for PyTorch's OpInfo samples")
    op, x, args = case
    y, _ = getattr(R, op)(x, *args)
    dy = np.random.default_rng(0).standard_normal(y.shape)
    assert_all_same(_ours(op, x, args, dy), _theirs(op, x, args, dy), ("y", "dx"), tol=0)


@pytest.mark.parametrize("op, shape, args", [
    ("pixel_shuffle", (2, 12, 3, 4), (2,)), ("pixel_shuffle", (3, 2, 18, 2, 3), (3,)),
    ("pixel_shuffle", (18, 2, 3), (3,)), ("pixel_unshuffle", (2, 3, 6, 4), (2,)),
    ("pixel_unshuffle", (2, 2, 1, 9, 6), (3,)), ("channel_shuffle", (2, 12, 3), (3,)),
    ("channel_shuffle", (2, 6, 2, 3, 2), (2,)), ("channel_shuffle", (2, 8, 1), (4,)),
    ("unflatten", (2, 24, 3), (1, (2, 3, 4))), ("unflatten", (2, 24, 3), (-2, (-1, 6))),
    ("unflatten", (6, 5), (0, (2, 3))),
])
def test_match_pytorch_over_shapes(op, shape, args):
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    y, _ = getattr(R, op)(x, *args)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    assert_all_same(_ours(op, x, args, dy), _theirs(op, x, args, dy), ("y", "dx"), tol=0)


def test_round_trips():
    x = np.random.default_rng(2).standard_normal((2, 8, 3, 5))
    np.testing.assert_array_equal(R.pixel_unshuffle(R.pixel_shuffle(x, 2)[0], 2)[0], x)
    np.testing.assert_array_equal(R.channel_shuffle(R.channel_shuffle(x, 2)[0], 4)[0], x)


def test_numeric_gradients():
    x = np.random.default_rng(3).standard_normal((1, 4, 2, 2))
    for op, args in [("pixel_shuffle", (2,)), ("pixel_unshuffle", (2,)), ("channel_shuffle", (2,)),
                     ("unflatten", (1, (2, 2)))]:
        assert_gradients(lambda x, op=op, args=args: getattr(R, op)(x, *args), getattr(R, f"{op}_backward"),
                         dict(x=x))


def _flatten_cases():
    try:
        from opinfo_samples import samples

        return [(x.detach().numpy(), kwargs) for x, _, kwargs in samples("flatten")]
    except pytest.skip.Exception:
        return [None]


@pytest.mark.parametrize("case", _flatten_cases(),
                         ids=lambda c: "none" if c is None else f"{c[0].shape}-{c[1]}")
def test_flatten_matches_pytorch_on_its_opinfo_samples(case):
    """Flatten(start_dim, end_dim), Unflatten's inverse (its kernel is cnnkit.reference.linear.flatten)."""
    if case is None:
        pytest.skip("needs torch and expecttest for PyTorch's OpInfo samples")
    torch = pytest.importorskip("torch")
    import cnnkit.reference as reference

    x, kwargs = case
    kwargs = {"start_dim": 0, "end_dim": -1, **kwargs}  # torch.flatten's defaults
    if x.ndim == 0:
        pytest.skip("a 0-d tensor: torch.flatten makes it (1,); cnnkit's Flatten takes arrays with axes")
    y, cache = reference.flatten(x, kwargs["start_dim"], kwargs["end_dim"])
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.flatten(tx, **kwargs)
    dy = np.random.default_rng(0).standard_normal(y.shape)
    ty.backward(torch.tensor(dy))
    assert_all_same((y, reference.flatten_backward(dy, cache)), (ty.detach().numpy(), tx.grad.numpy()),
                    ("y", "dx"), tol=0)
