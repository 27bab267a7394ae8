"""cnnkit.reference.example_norm: group, instance and layer normalization against PyTorch (forward and the
gradients of x, weight and bias; float64) on its OpInfo samples and a sweep of shapes and options, numeric
gradients, worked values, dtypes."""

import numpy as np
import pytest
from reference_checks import assert_gradients

from cnnkit.reference import example_norm as R


def _torch(fn, x, params, dy):
    """fn(x, *params) in torch float64; (y, dx, dparam...) with None for absent params."""
    torch = pytest.importorskip("torch")
    tensors = [torch.tensor(x, requires_grad=True)]
    tensors += [None if p is None else torch.tensor(p, requires_grad=True) for p in params]
    y = fn(*tensors)
    y.backward(torch.tensor(dy))
    return (y.detach().numpy(), *(None if t is None else t.grad.numpy() for t in tensors))


def assert_all_same(ours, theirs, names):
    """Same shapes and dtypes, values to 1e-10 relative, or 1e-12 absolute: a group of equal values has
    x_hat = 0 exactly here, and rounding noise of 1e-16 in PyTorch."""
    assert len(ours) == len(theirs)
    for a, b, name in zip(ours, theirs, names, strict=True):
        if a is None or b is None:
            assert a is None and b is None, name
            continue
        assert a.shape == b.shape and a.dtype == b.dtype, (name, a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=name)


def _opinfo(name):
    try:
        from opinfo_samples import samples

        out = []
        for x, args, kwargs in samples(f"nn.functional.{name}"):
            conv = lambda v: v.detach().numpy() if hasattr(v, "detach") else v  # noqa: E731
            out.append((x.detach().numpy(), [conv(a) for a in args], {k: conv(v) for k, v in kwargs.items()}))
        return out
    except pytest.skip.Exception:
        return [None]


def _skip_without(case):
    if case is None:
        pytest.skip("needs torch and expecttest for PyTorch's OpInfo samples")


def _id(case):
    return "none" if case is None else str(case[0].shape)


@pytest.mark.parametrize("case", _opinfo("group_norm"), ids=_id)
def test_group_norm_matches_pytorch_on_its_opinfo_samples(case):
    _skip_without(case)
    x, (groups,), kw = case
    weight, bias, eps = kw.get("weight"), kw.get("bias"), kw.get("eps", 1e-5)
    y, cache = R.group_norm(x, groups, weight, bias, eps)
    dy = np.random.default_rng(0).standard_normal(x.shape)
    tF = pytest.importorskip("torch.nn.functional", reason="PyTorch parity needs torch")

    theirs = _torch(lambda t, w, b: tF.group_norm(t, groups, w, b, eps), x, [weight, bias], dy)
    assert_all_same((y, *R.group_norm_backward(dy, cache)), theirs, ("y", "dx", "dweight", "dbias"))


@pytest.mark.parametrize("case", _opinfo("instance_norm"), ids=_id)
def test_instance_norm_matches_pytorch_on_its_opinfo_samples(case):
    """Input statistics (the samples all use them); the running statistics torch updates in place are the
    mean over the batch of the instance means and of the unbiased instance variances."""
    _skip_without(case)
    x, _, kw = case
    weight, bias, eps = kw.get("weight"), kw.get("bias"), kw.get("eps", 1e-5)
    y, cache = R.instance_norm(x, weight, bias, eps=eps)
    dy = np.random.default_rng(0).standard_normal(x.shape)
    torch = pytest.importorskip("torch", reason="PyTorch parity needs torch")
    tF = pytest.importorskip("torch.nn.functional", reason="PyTorch parity needs torch")

    rm, rv = kw.get("running_mean"), kw.get("running_var")
    trm = None if rm is None else torch.tensor(rm)
    trv = None if rv is None else torch.tensor(rv)
    momentum = kw.get("momentum", 0.1)
    theirs = _torch(lambda t, w, b: tF.instance_norm(t, trm, trv, w, b, True, momentum, eps), x,
                    [weight, bias], dy)
    assert_all_same((y, *R.instance_norm_backward(dy, cache)), theirs, ("y", "dx", "dweight", "dbias"))
    if rm is not None:
        n = np.prod(x.shape[2:])
        new_mean = (1 - momentum) * rm + momentum * cache["mean"].mean(axis=0)
        new_var = (1 - momentum) * rv + momentum * (cache["var"] * n / (n - 1)).mean(axis=0)
        assert_all_same((new_mean, new_var), (trm.numpy(), trv.numpy()), ("running_mean", "running_var"))


@pytest.mark.parametrize("case", _opinfo("layer_norm"), ids=_id)
def test_layer_norm_matches_pytorch_on_its_opinfo_samples(case):
    _skip_without(case)
    x, args, kw = case
    shape, weight, bias = tuple(args[0]), *(list(args[1:]) + [None, None])[:2]
    eps = kw.get("eps", 1e-5)
    y, cache = R.layer_norm(x, shape, weight, bias, eps)
    dy = np.random.default_rng(0).standard_normal(x.shape)
    tF = pytest.importorskip("torch.nn.functional", reason="PyTorch parity needs torch")

    theirs = _torch(lambda t, w, b: tF.layer_norm(t, shape, w, b, eps), x, [weight, bias], dy)
    assert_all_same((y, *R.layer_norm_backward(dy, cache)), theirs, ("y", "dx", "dweight", "dbias"))


def _params(rng, shape, affine):
    return (rng.standard_normal(shape), rng.standard_normal(shape)) if affine else (None, None)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape, groups", [((2, 6, 5), 3), ((3, 4, 3, 3), 1), ((3, 4, 3, 3), 4),
                                           ((2, 8, 2, 3, 2), 2), ((4, 6), 2)])
def test_group_norm_sweep(shape, groups, affine):
    tF = pytest.importorskip("torch.nn.functional", reason="PyTorch parity needs torch")

    rng = np.random.default_rng(sum(shape))
    x, dy = rng.standard_normal(shape) * 3 + 1, rng.standard_normal(shape)
    weight, bias = _params(rng, shape[1], affine)
    y, cache = R.group_norm(x, groups, weight, bias)
    theirs = _torch(lambda t, w, b: tF.group_norm(t, groups, w, b), x, [weight, bias], dy)
    assert_all_same((y, *R.group_norm_backward(dy, cache)), theirs, ("y", "dx", "dweight", "dbias"))


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("running", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 7), (3, 2, 4, 5), (2, 2, 3, 2, 3), (1, 4, 2)])
def test_instance_norm_sweep(shape, running, affine):
    """Instance statistics, and given running statistics (evaluation with track_running_stats)."""
    torch = pytest.importorskip("torch", reason="PyTorch parity needs torch")
    tF = pytest.importorskip("torch.nn.functional", reason="PyTorch parity needs torch")

    rng = np.random.default_rng(sum(shape))
    x, dy = rng.standard_normal(shape) * 2 - 1, rng.standard_normal(shape)
    weight, bias = _params(rng, shape[1], affine)
    mean, var = (rng.standard_normal(shape[1]), rng.uniform(0.5, 2, shape[1])) if running else (None, None)
    y, cache = R.instance_norm(x, weight, bias, mean, var, eps=1e-3)
    tm, tv = (None, None) if not running else (torch.tensor(mean), torch.tensor(var))
    theirs = _torch(lambda t, w, b: tF.instance_norm(t, tm, tv, w, b, not running, 0.1, 1e-3), x,
                    [weight, bias], dy)
    assert_all_same((y, *R.instance_norm_backward(dy, cache)), theirs, ("y", "dx", "dweight", "dbias"))


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape, normalized", [((4, 6), (6,)), ((2, 3, 4, 4), (3, 4, 4)),
                                               ((2, 3, 4, 5), (5,)), ((2, 3, 4, 5), (4, 5)), ((7,), (7,))])
def test_layer_norm_sweep(shape, normalized, affine):
    tF = pytest.importorskip("torch.nn.functional", reason="PyTorch parity needs torch")

    rng = np.random.default_rng(sum(shape))
    x, dy = rng.standard_normal(shape) * 3 + 2, rng.standard_normal(shape)
    weight, bias = _params(rng, normalized, affine)
    y, cache = R.layer_norm(x, normalized, weight, bias)
    theirs = _torch(lambda t, w, b: tF.layer_norm(t, normalized, w, b), x, [weight, bias], dy)
    assert_all_same((y, *R.layer_norm_backward(dy, cache)), theirs, ("y", "dx", "dweight", "dbias"))


def test_numeric_gradients():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 3, 2))
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    assert_gradients(lambda x, weight, bias: R.group_norm(x, 2, weight, bias), R.group_norm_backward,
                     dict(x=x, weight=w, bias=b))
    assert_gradients(lambda x, weight, bias: R.instance_norm(x, weight, bias), R.instance_norm_backward,
                     dict(x=x, weight=w, bias=b))
    mean, var = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    assert_gradients(lambda x, weight, bias: R.instance_norm(x, weight, bias, mean, var),
                     R.instance_norm_backward, dict(x=x, weight=w, bias=b))
    ws, bs = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    assert_gradients(lambda x, weight, bias: R.layer_norm(x, (3, 2), weight, bias), R.layer_norm_backward,
                     dict(x=x, weight=ws, bias=bs))
    assert_gradients(lambda x: R.layer_norm(x, (3, 2)), lambda dy, c: R.layer_norm_backward(dy, c)[0],
                     dict(x=x))


def test_instance_norm_is_group_norm_with_one_channel_per_group_and_layer_norm_with_one_group():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 4, 5, 2))
    np.testing.assert_allclose(R.instance_norm(x)[0], R.group_norm(x, 4)[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(R.layer_norm(x, (4, 5, 2))[0], R.group_norm(x, 1)[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keep_the_dtype(dtype):
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(dtype)
    w = np.ones(4, np.float32).astype(dtype)
    for y, cache, backward in [(*R.group_norm(x, 2, w, w), R.group_norm_backward),
                               (*R.instance_norm(x, w, w), R.instance_norm_backward),
                               (*R.instance_norm(x, w, w, np.zeros(4), np.ones(4)), R.instance_norm_backward),
                               (*R.layer_norm(x, (3,), np.ones(3, dtype), None), R.layer_norm_backward)]:
        grads = backward(x, cache)
        assert y.dtype == dtype and all(g is None or g.dtype == dtype for g in grads)
