"""The pooling family in 1, 2 and 3 dimensions with PyTorch's options (issue 14 item 6): MaxPool3d,
AvgPool1d/3d, LPPool1d/3d, return_indices with MaxUnpool1d/2d/3d, divisor_override, fit="pad" keeping
PyTorch's partial window, BatchNorm3d and ConvTranspose1d/3d. Parity over PyTorch's OpInfo samples (float64,
forward, indices and every gradient), numeric gradients, errors, and torch/ONNX/summary/save/load."""

import numpy as np
import pytest
from everywhere_checks import check_everywhere
from opinfo_samples import samples

import cnnkit as ck
from cnnkit.errors import ShapeError

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _close(ours, theirs, what):
    np.testing.assert_allclose(ours, theirs.detach().numpy() if hasattr(theirs, "detach") else theirs,
                               rtol=1e-10, atol=1e-12, err_msg=what)


def _grad(ty, tx, dy):
    return torch.autograd.grad(ty, tx, torch.from_numpy(dy))[0].numpy()


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_opinfo_samples_with_indices_and_ceil_mode(nd):
    ran = refused = 0
    for tx, _, kw in samples(f"nn.functional.max_pool{nd}d"):
        kw = dict(kw)
        indices = kw.pop("return_indices", False)
        try:
            layer = getattr(ck, f"MaxPool{nd}d")(kw["kernel_size"], kw.get("stride") or None,
                                                 kw.get("padding", 0), kw.get("dilation", 1), indices,
                                                 fit="pad" if kw.get("ceil_mode") else "crop")
        except ValueError:  # cnnkit's padding rule (<= kernel_size // 2) is stricter with dilation
            refused += 1
            continue
        out = getattr(F, f"max_pool{nd}d")(tx, return_indices=indices, **kw)
        ours = layer(tx.detach().numpy())
        what = f"{tuple(tx.shape)} {kw}"
        if indices:
            (ty, t_indices), (y, y_indices) = out, ours
            np.testing.assert_array_equal(y_indices, t_indices.numpy(), err_msg=what)
        else:
            ty, y = out, ours
        _close(y, ty, what)
        dy = np.random.default_rng(0).standard_normal(y.shape)
        _close(layer.backward(dy), _grad(ty, tx, dy), what)
        ran += 1
    assert ran > 10 * max(refused, 1), (ran, refused)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_avg_pool_opinfo_samples_with_divisor_override(nd):
    names = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
    ran = 0
    for tx, args, kw in samples(f"nn.functional.avg_pool{nd}d"):
        options = {**dict(zip(names, args, strict=False)), **kw}
        divisor = options.get("divisor_override")
        if divisor is not None and divisor <= 0:
            continue  # PyTorch's own error samples
        stride = options.get("stride") or None
        padding = options.get("padding", 0)
        padding = padding[0] if isinstance(padding, tuple) and len(padding) == 1 else padding  # torch's (1,)
        layer = getattr(ck, f"AvgPool{nd}d")(options["kernel_size"], stride, padding,
                                             count_include_pad=options.get("count_include_pad", True),
                                             divisor_override=divisor,
                                             fit="pad" if options.get("ceil_mode") else "crop")
        ty = getattr(F, f"avg_pool{nd}d")(tx, *args, **kw)
        y = layer(tx.detach().numpy())
        what = f"{tuple(tx.shape)} {options}"
        _close(y, ty, what)
        dy = np.random.default_rng(0).standard_normal(y.shape)
        _close(layer.backward(dy), _grad(ty, tx, dy), what)
        ran += 1
    assert ran >= 5


@pytest.mark.parametrize("nd, variant", [(1, ""), (1, "grad"), (2, ""), (2, "grad"), (3, "grad")])
def test_max_unpool_opinfo_samples(nd, variant):
    for tx, args, kw in samples(f"nn.functional.max_unpool{nd}d", variant):
        (indices,) = args
        layer = getattr(ck, f"MaxUnpool{nd}d")(kw["kernel_size"], kw.get("stride"), kw.get("padding", 0))
        ty = getattr(F, f"max_unpool{nd}d")(tx, indices, **kw)
        size = kw.get("output_size")
        y = layer(tx.detach().numpy(), indices.numpy(), None if size is None else tuple(size))
        what = f"{tuple(tx.shape)} {kw}"
        _close(y, ty, what)
        dy = np.random.default_rng(0).standard_normal(y.shape)
        _close(layer.backward(dy), _grad(ty, tx, dy), what)


@pytest.mark.parametrize("nd", [1, 3])
def test_conv_transpose_opinfo_samples(nd):
    for tx, (tw, tb), kw in samples(f"nn.functional.conv_transpose{nd}d"):
        w = tw.detach().numpy()
        layer = getattr(ck, f"ConvTranspose{nd}d")(w.shape[0], w.shape[1] * kw.get("groups", 1), w.shape[2:],
                                                   kw.get("stride", 1), kw.get("padding", 0),
                                                   kw.get("output_padding", 0), kw.get("groups", 1),
                                                   tb is not None, kw.get("dilation", 1))
        layer.weight.data = w.copy()
        layer.weight.grad = np.zeros_like(w)
        if tb is not None:
            layer.bias.data, layer.bias.grad = tb.detach().numpy().copy(), np.zeros(tb.shape)
        ty = getattr(F, f"conv_transpose{nd}d")(tx, tw, tb, **kw)
        y = layer(tx.detach().numpy())
        what = f"{tuple(tx.shape)} {kw}"
        _close(y, ty, what)
        dy = np.random.default_rng(0).standard_normal(y.shape)
        grads = torch.autograd.grad(ty, [tx, tw], torch.from_numpy(dy))
        _close(layer.backward(dy), grads[0], what)
        _close(layer.weight.grad, grads[1], what)


def test_batch_norm_3d_matches_torch_in_training_and_eval():
    layer, module = ck.BatchNorm3d(3, momentum=0.2).astype(np.float64), torch.nn.BatchNorm3d(3, momentum=0.2)
    module = module.double()
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 4, 2)) * 2 + 1
    for mode in ("train", "eval"):
        layer.train(mode == "train"), module.train(mode == "train")
        tx = torch.tensor(x, requires_grad=True)
        ty = module(tx)
        _close(layer(x), ty, mode)
        dy = np.random.default_rng(1).standard_normal(x.shape)
        _close(layer.backward(dy), _grad(ty, tx, dy), mode)
        _close(layer.running_var, module.running_var, mode)


@pytest.mark.parametrize("layer, module, n", [
    (ck.MaxPool1d(3, 2, fit="pad"), torch.nn.MaxPool1d(3, 2, ceil_mode=True), 2),
    (ck.AvgPool1d(4, 3, 1, fit="pad"), torch.nn.AvgPool1d(4, 3, 1, ceil_mode=True), 1),
    (ck.AvgPool1d(5, 4, fit="pad", count_include_pad=False), torch.nn.AvgPool1d(5, 4, ceil_mode=True,
                                                                               count_include_pad=False), 2),
])
def test_fit_pad_keeps_pytorchs_partial_window_wider_than_the_input(layer, module, n):
    """PyTorch's ceil mode pools what a window covers even when the window is wider than the padded input
    (by less than a stride); cnnkit's fit="pad" did raise, now it gives the same one window."""
    tx = torch.tensor(np.random.default_rng(0).standard_normal((1, 2, n)), requires_grad=True)
    ty = module(tx)
    y = layer(tx.detach().numpy())
    assert y.shape == tuple(ty.shape) == (1, 2, 1)
    _close(y, ty, "partial window")
    _close(layer.backward(np.ones_like(y)), _grad(ty, tx, np.ones(y.shape)), "partial window")
    with pytest.raises(ShapeError, match=r"the kernel \(F=3\) is larger than the padded input"):
        ck.MaxPool1d(3, 2, fit="pad")(np.ones((1, 1, 1)))  # overhanging by a whole stride: no window


@pytest.mark.parametrize("layer, shape", [
    (ck.MaxPool3d(2, stride=(1, 2, 2), padding=(0, 1, 0), fit="pad"), (1, 2, 3, 4, 5)),
    (ck.AvgPool1d(3, 2, 1, divisor_override=2, fit="pad"), (2, 2, 7)),
    (ck.AvgPool3d(2, divisor_override=5, fit="crop", count_include_pad=False), (1, 2, 3, 4, 5)),
    (ck.LPPool1d(3, 2, fit="crop"), (2, 2, 7)),
    (ck.LPPool3d(2, (1, 2, 2)), (1, 2, 2, 4, 4)),
    (ck.ConvTranspose1d(2, 4, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=2), (2, 2, 4)),
    (ck.ConvTranspose3d(2, 2, 2, stride=(2, 1, 2), dilation=(1, 2, 1)), (1, 2, 2, 3, 2)),
])
def test_numeric_gradients(layer, shape):
    x = np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape) / 11.0 + 0.1  # no ties
    assert max(ck.gradcheck(layer, x).values()) < 1e-7


def test_unpool_gradient_and_the_deconvnet_round_trip():
    x = np.random.default_rng(0).permutation(2 * 3 * 6 * 6).reshape(2, 3, 6, 6) / 7.0
    pool, unpool = ck.MaxPool2d(2, return_indices=True), ck.MaxUnpool2d(2)
    y, indices = pool(x)
    back = unpool(y, indices)
    # each window keeps only its max, in place: pooling the unpooled map gives the same maxima back
    np.testing.assert_array_equal(pool(back)[0], y)
    assert np.count_nonzero(back) == y.size
    errors = ck.gradcheck(_Unpool(indices), y)
    assert errors["input"] < 1e-8


class _Unpool(ck.Layer):
    """MaxUnpool2d with fixed indices, as a one-input layer for gradcheck."""

    def __init__(self, indices):
        self.indices, self.unpool = indices, ck.MaxUnpool2d(2)

    def forward(self, x):
        return self.unpool(x, self.indices)

    def backward(self, dy):
        return self.unpool.backward(dy)

    def output_shape(self, shape):
        return self.unpool.output_shape(shape)


@pytest.mark.parametrize("layer, shape", [
    (ck.MaxPool3d(2, fit="crop"), (2, 2, 5, 4, 4)), (ck.AvgPool1d(3, 2, 1, fit="pad"), (2, 3, 8)),
    (ck.AvgPool3d(2, divisor_override=3), (1, 2, 4, 2, 4)),
    (ck.AvgPool2d(3, 2, 1, divisor_override=4), (2, 2, 7, 7)),
    (ck.LPPool1d(2, 2), (2, 2, 6)), (ck.BatchNorm3d(2), (2, 2, 3, 3, 3)),
    (ck.ConvTranspose1d(2, 3, 3, stride=2, padding=1), (2, 2, 5)),
    (ck.ConvTranspose3d(2, 2, 2, stride=2, groups=2), (1, 2, 2, 3, 2)),
])
def test_works_everywhere(layer, shape, tmp_path):
    check_everywhere(layer, shape, tmp_path)


def test_return_indices_and_unpooling_through_torch():
    from cnnkit.interop.torch import from_torch, to_torch

    x = np.random.default_rng(0).standard_normal((2, 3, 6, 7)).astype(np.float32)
    pool, unpool = ck.MaxPool2d(3, 2, 1, return_indices=True, fit="pad"), ck.MaxUnpool2d(3, 2, 1)
    tpool, tunpool = to_torch(pool), to_torch(unpool)
    assert isinstance(tunpool, torch.nn.MaxUnpool2d) and tpool.return_indices and tpool.ceil_mode
    y, indices = pool(x)
    ty, tindices = tpool(torch.from_numpy(x))
    np.testing.assert_array_equal(indices, tindices.numpy())
    np.testing.assert_array_equal(unpool(y, indices, x.shape), tunpool(ty, tindices, x.shape).numpy())
    assert from_torch(tpool).return_indices and isinstance(from_torch(tunpool), ck.MaxUnpool2d)


def test_layers_without_an_onnx_form_say_so(tmp_path):
    from cnnkit.interop.onnx import export

    with pytest.raises(TypeError, match=r"returns indices too; ONNX export takes one output per layer"):
        export(ck.Sequential(ck.MaxPool2d(2, return_indices=True)), tmp_path / "m.onnx", (1, 4, 4))


@pytest.mark.parametrize("make, error, match", [
    (lambda: ck.AvgPool3d(2, divisor_override=0), ValueError,
     r"AvgPool3d: Received divisor_override=0; expected a positive int"),
    (lambda: ck.AvgPool1d(2, divisor_override=1.5), ValueError, r"AvgPool1d: Received divisor_override=1.5"),
    (lambda: ck.MaxPool3d(2, return_indices="yes"), TypeError,
     r"MaxPool3d: Received return_indices='yes'; expected a bool"),
    (lambda: ck.MaxUnpool2d(0), ValueError, r"MaxUnpool2d: Received kernel_size=0"),
    (lambda: ck.LPPool1d(0.5, 2), ValueError, r"LPPool2d: Received norm_type=0.5; expected a finite number"),
    (lambda: ck.ConvTranspose3d(2, 2, (2, 2)), ValueError,
     r"ConvTranspose3d: Received kernel_size=\(2, 2\): expected an int or a sequence of 3 ints"),
])
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_unpooling_inputs():
    unpool = ck.MaxUnpool2d(2)
    x = np.ones((1, 1, 2, 2))
    with pytest.raises(ShapeError, match=r"MaxUnpool2d\(kernel_size=2\): indices have shape \(1, 1, 2, 3\) "
                                         r"but the input has shape \(1, 1, 2, 2\)"):
        unpool(x, np.zeros((1, 1, 2, 3), np.int64))
    with pytest.raises(ShapeError, match=r"found an index in \[0, 16\] outside the output plane of 16 "):
        unpool(x, np.array([[[[0, 16], [1, 2]]]]))
    with pytest.raises(TypeError, match=r"expected integer indices, received dtype float64"):
        unpool(x, np.zeros((1, 1, 2, 2)))
    with pytest.raises(ShapeError, match=r"received output_size=\(7, 4\); each size must lie between "
                                         r"\(3, 3\) and \(5, 5\)"):
        unpool(x, np.zeros((1, 1, 2, 2), np.int64), (7, 4))
    with pytest.raises(RuntimeError, match=r"backward was called before forward"):
        ck.MaxUnpool1d(2).backward(np.ones((1, 1, 4)))
