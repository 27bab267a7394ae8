"""BatchNorm1d/2d and LocalResponseNorm: numeric gradients, PyTorch parity (train and eval, running
statistics over several steps, state-dict keys), worked examples and errors."""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.functional.norm import local_response_norm
from conftest import assert_parity, import_torch


def _randomize(layer, rng):
    """Non-trivial affine parameters (the defaults 1 and 0 would hide a mixed-up weight or bias)."""
    if layer.weight is not None:
        layer.weight.data[...] = rng.uniform(0.5, 1.5, layer.weight.shape)
        layer.bias.data[...] = rng.standard_normal(layer.bias.shape)
    return layer


def _torch_copy(layer):
    torch = import_torch()
    make = getattr(torch.nn, type(layer).__name__)  # BatchNorm1d/2d: the same names
    theirs = make(layer.num_features, layer.eps, layer.momentum, layer.affine, layer.track_running_stats)
    if layer.affine:
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(layer.weight.data))
            theirs.bias.copy_(torch.tensor(layer.bias.data))
    return theirs


def _step(ours, theirs, x, dy):
    """One forward/backward on both; compare the output and every gradient."""
    torch = import_torch()
    ours.zero_grad()
    y = ours(x)
    dx = ours.backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    theirs.zero_grad()
    ty = theirs(tx)
    ty.backward(torch.tensor(dy))
    assert y.dtype == dx.dtype == np.float32
    assert_parity(y, ty, what="forward")
    assert_parity(dx, tx.grad, what="dx")
    if ours.affine:
        assert_parity(ours.weight.grad, theirs.weight.grad, what="dweight")
        assert_parity(ours.bias.grad, theirs.bias.grad, what="dbias")


@pytest.mark.parametrize("make, shape", [
    (lambda: ck.BatchNorm1d(5), (8, 5)),
    (lambda: ck.BatchNorm1d(3), (4, 3, 7)),
    (lambda: ck.BatchNorm1d(4, momentum=0.3), (3, 4)),  # (N=2 would make dx ~ eps: the output is +-1)
    (lambda: ck.BatchNorm2d(3), (4, 3, 5, 5)),
    (lambda: ck.BatchNorm2d(6, eps=1e-3), (2, 6, 3, 4)),
    (lambda: ck.BatchNorm2d(2, momentum=None), (3, 2, 4, 4)),
    (lambda: ck.BatchNorm2d(3, affine=False), (4, 3, 3, 3)),
    (lambda: ck.BatchNorm2d(3, track_running_stats=False), (4, 3, 3, 3)),
    (lambda: ck.BatchNorm2d(16), (1, 16, 8, 8)),
])
def test_batch_norm_parity_with_pytorch(make, shape):
    """Five training steps (outputs, all gradients, running statistics), then eval mode."""
    rng = np.random.default_rng(len(shape) * 10 + shape[1])
    ours = _randomize(make(), rng)
    theirs = _torch_copy(ours)
    for _ in range(5):
        x = (rng.standard_normal(shape) * 3 + rng.standard_normal((1, shape[1], *(1,) * (len(shape) - 2))))
        _step(ours, theirs, x.astype(np.float32), rng.standard_normal(shape).astype(np.float32))
    if ours.track_running_stats:
        assert_parity(ours.running_mean, theirs.running_mean, what="running_mean")
        assert_parity(ours.running_var, theirs.running_var, what="running_var")
        assert ours.num_batches_tracked.dtype == np.int64 and int(ours.num_batches_tracked) == 5
        assert int(theirs.num_batches_tracked) == 5
    ours.eval()
    theirs.eval()
    for _ in range(2):
        x = rng.standard_normal(shape).astype(np.float32)
        _step(ours, theirs, x, rng.standard_normal(shape).astype(np.float32))
    if ours.track_running_stats:  # eval mode leaves the running statistics alone
        assert int(ours.num_batches_tracked) == 5
        assert_parity(ours.running_var, theirs.running_var, what="running_var after eval")


@pytest.mark.parametrize("make, shape, mode", [
    (lambda: ck.BatchNorm1d(3), (5, 3), "train"),
    (lambda: ck.BatchNorm1d(2), (3, 2, 4), "train"),
    (lambda: ck.BatchNorm2d(3), (2, 3, 3, 2), "train"),
    (lambda: ck.BatchNorm2d(2, affine=False), (3, 2, 2, 2), "train"),
    (lambda: ck.BatchNorm2d(3), (2, 3, 3, 2), "eval"),
    (lambda: ck.BatchNorm1d(3), (4, 3), "eval"),
    (lambda: ck.BatchNorm2d(2, track_running_stats=False), (2, 2, 3, 3), "eval"),
])
def test_batch_norm_numeric_gradients(make, shape, mode):
    rng = np.random.default_rng(5)
    layer = _randomize(make(), rng)
    if layer.track_running_stats:  # running statistics that are not the trivial 0 and 1
        layer.running_mean[...] = rng.standard_normal(layer.num_features)
        layer.running_var[...] = rng.uniform(0.5, 2, layer.num_features)
    layer.train(mode == "train")
    errors = ck.gradcheck(layer, rng.standard_normal(shape) * 2 + 1)
    assert set(errors) == ({"input", "weight", "bias"} if layer.affine else {"input"})
    assert max(errors.values()) < 1e-6, errors


def test_batch_norm_worked_example():
    """Two examples per channel: normalised to -1 and +1 (up to eps); running stats use the unbiased var."""
    layer = ck.BatchNorm1d(2, eps=0.0 + 1e-12)
    x = np.array([[1.0, 10.0], [3.0, 30.0]], np.float32)
    np.testing.assert_allclose(layer(x), [[-1, -1], [1, 1]], atol=1e-5)
    np.testing.assert_allclose(layer.running_mean, [0.1 * 2, 0.1 * 20], rtol=1e-6)
    # batch variances 1 and 100 (biased); unbiased 2 and 200; running = 0.9 * 1 + 0.1 * unbiased
    np.testing.assert_allclose(layer.running_var, [0.9 + 0.2, 0.9 + 20], rtol=1e-6)
    layer.eval()
    expected = (x - layer.running_mean) / np.sqrt(layer.running_var + 1e-12)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-6)


def test_batch_norm_state_dict_matches_pytorch(torch):
    ours, theirs = ck.BatchNorm2d(4), torch.nn.BatchNorm2d(4)
    keys = list(theirs.state_dict())
    assert list(ours.state_dict()) == keys == ["weight", "bias", "running_mean", "running_var",
                                               "num_batches_tracked"]
    for k, v in theirs.state_dict().items():
        assert ours.state_dict()[k].shape == tuple(v.shape)
    assert ours.state_dict()["num_batches_tracked"].shape == () and ours.num_batches_tracked.dtype == np.int64
    # loading torch's (trained) state and evaluating gives torch's output
    theirs(torch.randn(6, 4, 3, 3) * 2 + 1)
    theirs.eval()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()}).eval()
    assert int(ours.num_batches_tracked) == 1
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 3)).astype(np.float32)
    assert_parity(ours(x), theirs(torch.tensor(x)), what="forward after load_state_dict")
    no_stats = ck.BatchNorm1d(3, affine=False, track_running_stats=False)
    assert list(no_stats.state_dict()) == list(torch.nn.BatchNorm1d(3, affine=False,
                                                                    track_running_stats=False).state_dict())


def test_batch_norm_float64_and_astype():
    layer = ck.BatchNorm2d(2).astype(np.float64)
    assert layer.running_mean.dtype == np.float64 and layer.num_batches_tracked.dtype == np.int64
    assert layer(np.ones((2, 2, 2, 2))).dtype == np.float64
    assert ck.BatchNorm2d(2).eval()(np.ones((1, 2, 2, 2), np.float32)).dtype == np.float32


def test_batch_norm_repr_and_config():
    layer = ck.BatchNorm2d(8, momentum=None, affine=False)
    assert repr(layer) == "BatchNorm2d(8, eps=1e-05, momentum=None, affine=False)"
    rebuilt = ck.layers.from_config(layer.config())
    assert rebuilt.config() == layer.config() and rebuilt.weight is None


@pytest.mark.parametrize("size, alpha, beta, k, shape", [
    (5, 1e-4, 0.75, 1.0, (2, 7, 4, 4)),  # the defaults (AlexNet uses size 5, k 2)
    (5, 1.0, 0.75, 2.0, (2, 7, 4, 4)),
    (2, 0.5, 0.5, 1.0, (1, 4, 3, 5)),  # even size: the window is one channel longer before than after
    (3, 2.0, 1.0, 0.5, (3, 5, 6)),  # 3-D input (N, C, L)
    (1, 1.0, 0.75, 1.0, (2, 3, 2, 2)),
    (8, 1.0, 0.75, 1.0, (2, 3, 2, 2)),  # window wider than the channels
    (3, 1.0, 0.75, 1.0, (1, 4, 2, 2, 2)),  # 5-D
])
def test_local_response_norm_parity_with_pytorch(size, alpha, beta, k, shape, tF, torch):
    rng = np.random.default_rng(size)
    x = rng.standard_normal(shape).astype(np.float32) * 2
    dy = rng.standard_normal(shape).astype(np.float32)
    layer = ck.LocalResponseNorm(size, alpha, beta, k)
    y = layer(x)
    dx = layer.backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    ty = tF.local_response_norm(tx, size, alpha, beta, k)
    ty.backward(torch.tensor(dy))
    assert y.dtype == dx.dtype == np.float32
    assert_parity(y, ty, what="forward")
    assert_parity(dx, tx.grad, what="dx")


@pytest.mark.parametrize("size, shape", [(5, (2, 7, 3, 3)), (2, (1, 4, 3, 2)), (4, (2, 3, 5))])
def test_local_response_norm_numeric_gradients(size, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    errors = ck.gradcheck(ck.LocalResponseNorm(size, alpha=1.0, beta=0.75, k=2.0), x)
    assert errors["input"] < 1e-6, errors


def test_local_response_norm_naive_loop():
    """Torch's definition written out: window c - size//2 .. c + (size-1)//2, alpha divided by size."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 3, 3))
    size, alpha, beta, k = 4, 0.7, 0.6, 1.5
    expected = np.empty_like(x)
    for c in range(6):
        window = range(max(0, c - size // 2), min(6, c + (size - 1) // 2 + 1))
        s = sum(x[:, j] ** 2 for j in window)
        expected[:, c] = x[:, c] / (k + alpha / size * s) ** beta
    np.testing.assert_allclose(local_response_norm(x, size, alpha, beta, k)[0], expected, rtol=1e-12)


@pytest.mark.parametrize("make, x, error, pattern", [
    (lambda: ck.BatchNorm2d(3), np.zeros((3, 4), np.float32), ck.ShapeError,
     r"BatchNorm2d\(3, .*\): expected a 4-D \(N, C, H, W\) input with C=3, received shape \(3, 4\)"),
    (lambda: ck.BatchNorm2d(3), np.zeros((2, 4, 4, 4), np.float32), ck.ShapeError, r"with C=3"),
    (lambda: ck.BatchNorm1d(3), np.zeros((2, 3, 4, 4), np.float32), ck.ShapeError,
     r"expected a 2-D \(N, C\) or 3-D \(N, C, L\) input"),
    (lambda: ck.BatchNorm1d(3), np.zeros((1, 3), np.float32), ck.ShapeError,
     r"more than 1 value per channel when training.*\.eval\(\)"),
    (lambda: ck.BatchNorm2d(3), np.zeros((2, 3, 4, 4), np.int64), TypeError, r"floating-point"),
    (lambda: ck.LocalResponseNorm(3), np.zeros((2, 3), np.float32), ck.ShapeError,
     r"LocalResponseNorm\(size=3\): expected an input \(N, C, \*S\) with at least 3 axes"),
    (lambda: ck.LocalResponseNorm(3), np.zeros((2, 3, 3), np.int64), TypeError, r"floating"),
])
def test_bad_input(make, x, error, pattern):
    with pytest.raises(error, match=pattern):
        make()(x)


def test_single_example_is_fine_in_eval_mode():
    assert ck.BatchNorm1d(3).eval()(np.ones((1, 3), np.float32)).shape == (1, 3)


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: ck.BatchNorm2d(0), ValueError, r"BatchNorm2d: Received num_features=0"),
    (lambda: ck.BatchNorm2d(3, eps=0), ValueError, r"BatchNorm2d: Received eps=0; expected a small positive"),
    (lambda: ck.BatchNorm1d(3, momentum=1.5), ValueError,
     r"BatchNorm1d: Received momentum=1.5; expected a number in \[0, 1\]"),
    (lambda: ck.BatchNorm1d(3, momentum="0.1"), TypeError, r"Received momentum='0.1'"),
    (lambda: ck.LocalResponseNorm(0), ValueError, r"LocalResponseNorm: Received size=0"),
    (lambda: ck.LocalResponseNorm(5, k=0.0), ValueError, r"Received k=0.0.*expected k > 0"),
    (lambda: ck.LocalResponseNorm(5, beta=float("nan")), ValueError, r"Received beta=nan"),
])
def test_bad_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


@pytest.mark.parametrize("make", [lambda: ck.BatchNorm2d(2), lambda: ck.LocalResponseNorm(3)])
def test_backward_before_forward(make):
    with pytest.raises(RuntimeError, match="backward was called before forward"):
        make().backward(np.zeros((2, 2, 2, 2)))
