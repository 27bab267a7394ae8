"""ConvTranspose2d: the adjoint of Conv2d, numeric gradients, PyTorch parity over a seeded grid, errors."""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.functional import conv2d, conv_transpose2d
from conftest import assert_parity


def _grid(n, seed):
    """n seeded transposed-conv configurations that PyTorch accepts (output_padding < stride or dilation)."""
    r = np.random.default_rng(seed)
    configs = []
    while len(configs) < n:
        groups = int(r.choice([1, 1, 2, 3]))
        C, K = groups * int(r.integers(1, 4)), groups * int(r.integers(1, 4))
        k = tuple(int(v) for v in r.integers(1, 5, 2))
        s = tuple(int(v) for v in r.integers(1, 4, 2))
        d = tuple(int(v) for v in r.integers(1, 3, 2))
        p = tuple(int(v) for v in r.integers(0, 3, 2))
        op = tuple(int(r.integers(0, max(ss, dd))) for ss, dd in zip(s, d, strict=True))
        size = tuple(int(v) for v in r.integers(1, 7, 2))
        out = [(n - 1) * ss - 2 * pp + dd * (kk - 1) + oo + 1
               for n, ss, pp, dd, kk, oo in zip(size, s, p, d, k, op, strict=True)]
        if min(out) < 1:
            continue
        configs.append(dict(N=int(r.integers(1, 3)), C=C, K=K, size=size, kernel_size=k, stride=s, padding=p,
                            output_padding=op, groups=groups, dilation=d, bias=bool(r.random() < 0.8)))
    return configs


@pytest.mark.parametrize("cfg", _grid(80, seed=1),
                         ids=lambda c: f"C{c['C']}K{c['K']}g{c['groups']}s{c['stride']}d{c['dilation']}")
def test_parity_with_pytorch(cfg, tF, torch):
    """Forward, dx, dweight and dbias match torch.nn.functional.conv_transpose2d (float32)."""
    rng = np.random.default_rng(0)
    layer = ck.ConvTranspose2d(cfg["C"], cfg["K"], cfg["kernel_size"], cfg["stride"], cfg["padding"],
                               cfg["output_padding"], cfg["groups"], cfg["bias"], cfg["dilation"], rng=rng)
    x = rng.standard_normal((cfg["N"], cfg["C"], *cfg["size"])).astype(np.float32)
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)

    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.weight.data, requires_grad=True)
    tb = torch.tensor(layer.bias.data, requires_grad=True) if cfg["bias"] else None
    ty = tF.conv_transpose2d(tx, tw, tb, cfg["stride"], cfg["padding"], cfg["output_padding"], cfg["groups"],
                             cfg["dilation"])
    ty.backward(torch.tensor(dy))
    assert y.dtype == dx.dtype == np.float32
    assert layer.output_shape(x.shape) == y.shape
    assert_parity(y, ty, what="forward")
    assert_parity(dx, tx.grad, what="dx")
    assert_parity(layer.weight.grad, tw.grad, what="dweight")
    if cfg["bias"]:
        assert_parity(layer.bias.grad, tb.grad, what="dbias")


@pytest.mark.parametrize("make, shape", [
    (lambda: ck.ConvTranspose2d(2, 3, 3), (2, 2, 3, 4)),
    (lambda: ck.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1), (2, 2, 3, 3)),
    (lambda: ck.ConvTranspose2d(4, 2, (2, 3), (2, 1), (0, 1), groups=2, bias=False), (1, 4, 3, 4)),
    (lambda: ck.ConvTranspose2d(2, 2, 3, stride=3, dilation=2, output_padding=(2, 1)), (1, 2, 2, 3)),
    (lambda: ck.ConvTranspose2d(3, 3, 1, groups=3), (2, 3, 3, 3)),  # 1x1 depthwise
    (lambda: ck.ConvTranspose2d(2, 4, 4, stride=2, padding=1), (1, 2, 3, 2)),  # the DCGAN/U-Net upsampler
])
def test_numeric_gradients(make, shape):
    errors = ck.gradcheck(make(), np.random.default_rng(1).standard_normal(shape))
    assert set(errors) >= {"input", "weight"}
    assert max(errors.values()) < 1e-6, errors


def test_upsampling_example():
    """A 2x2 kernel of ones with stride 2 copies every pixel into a 2x2 block (nearest-neighbour)."""
    layer = ck.ConvTranspose2d(1, 1, 2, stride=2, bias=False)
    layer.weight.data[...] = 1
    y = layer(np.array([[[[1, 2], [3, 4]]]], np.float32))
    assert y[0, 0].tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    dx = layer.backward(np.ones_like(y))
    assert dx[0, 0].tolist() == [[4, 4], [4, 4]]  # each input painted four outputs


def test_overlapping_patches_add_up():
    """Stride 1, kernel 3: an impulse paints the kernel; two impulses' patches overlap and sum."""
    layer = ck.ConvTranspose2d(1, 1, 3, bias=False)
    layer.weight.data[...] = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    x = np.zeros((1, 1, 2, 2), np.float32)
    x[0, 0, 0, 0] = x[0, 0, 0, 1] = 1
    y = layer(x)[0, 0]
    assert y.tolist() == [[0, 1, 3, 2], [3, 7, 9, 5], [6, 13, 15, 8], [0, 0, 0, 0]]


@pytest.mark.parametrize("stride, padding, dilation, groups",
                         [(1, 0, 1, 1), (2, 1, 1, 1), (3, 2, 2, 2), (2, 0, 1, 4)])
def test_is_the_adjoint_of_conv2d(stride, padding, dilation, groups):
    """<conv2d(x, W), y> == <x, conv_transpose2d(y, W)>: the transposed convolution is the convolution's
    backward with respect to its input, with the same weight."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal((4, 4 // groups, 3, 3))
    x = rng.standard_normal((2, 4, 9, 9))
    y, _ = conv2d(x, w, None, stride, padding, dilation, groups, fit="crop")
    v = rng.standard_normal(y.shape)
    without = ck.ConvTranspose2d(4, 4, 3, stride, padding, 0, groups, True, dilation).output_shape(v.shape)
    output_padding = 9 - without[2]  # the rows the strided convolution skipped at the far end
    back, _ = conv_transpose2d(v, w, None, stride, padding, output_padding, groups, dilation)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(y * v), np.sum(x * back), rtol=1e-12)


def test_output_padding_picks_among_input_sizes():
    """A stride-2 convolution maps 7 and 8 to 4; output_padding=1 picks 8 on the way back."""
    assert ck.Conv2d(1, 1, 3, 2, 1, fit="crop").output_shape((1, 1, 8, 8))[2:] == (4, 4)
    assert ck.ConvTranspose2d(1, 1, 3, 2, 1).output_shape((1, 1, 4, 4))[2:] == (7, 7)
    assert ck.ConvTranspose2d(1, 1, 3, 2, 1, output_padding=1).output_shape((1, 1, 4, 4))[2:] == (8, 8)


def test_default_init_and_weight_shape_follow_pytorch():
    layer = ck.ConvTranspose2d(6, 4, 3, groups=2, rng=np.random.default_rng(0))
    assert layer.weight.shape == (6, 2, 3, 3) and layer.bias.shape == (4,)
    bound = 1 / np.sqrt(2 * 3 * 3)  # fan_in = C_out/groups * F * F, read from weight.shape[1:] as in PyTorch
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > 0.8 * bound
    assert layer.weight.data.dtype == np.float32


def test_float64_and_memory_order():
    rng = np.random.default_rng(3)
    layer = ck.ConvTranspose2d(3, 2, 3, stride=2, rng=rng)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    nhwc_view = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(layer(nhwc_view), layer(x), rtol=1e-6, atol=1e-6)
    layer.astype(np.float64)
    assert layer(x.astype(np.float64)).dtype == np.float64


def test_backward_accumulates_gradients():
    rng = np.random.default_rng(4)
    layer = ck.ConvTranspose2d(2, 2, 3, stride=2, rng=rng)
    x = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    for _ in range(2):
        dy = np.ones(layer.output_shape(x.shape), np.float32)
        layer(x)
        layer.backward(dy)
    once = ck.ConvTranspose2d(2, 2, 3, stride=2, rng=np.random.default_rng(4))
    once(x)
    once.backward(dy)
    np.testing.assert_allclose(layer.weight.grad, 2 * once.weight.grad, rtol=1e-6)
    np.testing.assert_allclose(layer.bias.grad, 2 * once.bias.grad, rtol=1e-6)


@pytest.mark.parametrize("x, error, pattern", [
    (np.zeros((4, 4), np.float32), ck.ShapeError, r"ConvTranspose2d\(3->2, .*\): expected a 4-D input"),
    (np.zeros((1, 2, 4, 4), np.float32), ck.ShapeError, r"expected 3 input channels"),
    (np.zeros((1, 3, 4, 4), np.int32), TypeError, r"floating-point"),
])
def test_bad_input_gets_a_clear_error(x, error, pattern):
    with pytest.raises(error, match=pattern):
        ck.ConvTranspose2d(3, 2, 3)(x)


def test_too_much_padding_for_the_input():
    layer = ck.ConvTranspose2d(1, 1, 3, padding=2)
    pattern = r"H_out = \(H - 1\)\*S - 2P \+ F \+ output_padding = \(1 - 1\)\*1 - 4 \+ 3 \+ 0 = -1 < 1"
    with pytest.raises(ck.ShapeError, match=pattern):
        layer(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(ck.ShapeError, match=pattern):
        layer.output_shape((1, 1, 1, 1))
    with pytest.raises(ck.ShapeError, match=r"expected input \(N, C, H, W\) with C=1"):
        layer.output_shape((1, 2, 5, 5))


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(in_channels=0, out_channels=2, kernel_size=3), ValueError, r"Transpose2d: Received in_channels=0"),
    (dict(in_channels=3, out_channels=2, kernel_size=(3, 0)), ValueError, r"Received kernel_size=\(3, 0\)"),
    (dict(in_channels=4, out_channels=3, kernel_size=3, groups=2), ValueError, r"divisible by groups"),
    (dict(in_channels=2, out_channels=2, kernel_size=3, stride=2, output_padding=2), ValueError,
     r"Received output_padding=2; it must be smaller than either the stride \(2\) or the dilation \(1\)"),
    (dict(in_channels=2, out_channels=2, kernel_size=3, padding="same"), ValueError,
     r"Received padding='same'; a transposed convolution takes an int"),
    (dict(in_channels=2, out_channels=2, kernel_size=3, padding=-1), ValueError, r"Received padding=-1"),
    (dict(in_channels=2, out_channels=2, kernel_size=3, dilation=0.5), TypeError, r"Received dilation=0.5"),
])
def test_bad_hyperparameters(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        ck.ConvTranspose2d(**kwargs)


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="backward was called before forward"):
        ck.ConvTranspose2d(1, 1, 3).backward(np.zeros((1, 1, 3, 3), np.float32))


def test_kernel_checks_rank_and_weight():
    with pytest.raises(ck.ShapeError, match=r"conv_transpose2d: expected a 4-D input"):
        conv_transpose2d(np.zeros((1, 2, 3), np.float32), np.zeros((2, 1, 3, 3), np.float32))
    with pytest.raises(ck.ShapeError, match=r"weight must be \(C_in=2, C_out/groups, \*F\)"):
        conv_transpose2d(np.zeros((1, 2, 3, 3), np.float32), np.zeros((3, 1, 3, 3), np.float32))


def test_config_round_trip_and_analysis_attributes():
    layer = ck.ConvTranspose2d(4, 8, (3, 5), stride=(2, 1), padding=(1, 2), output_padding=(1, 0), groups=2,
                               bias=False)
    rebuilt = ck.layers.from_config(layer.config())
    assert rebuilt.config() == layer.config() and rebuilt.weight.shape == layer.weight.shape == (4, 4, 3, 5)
    assert repr(rebuilt) == ("ConvTranspose2d(4->8, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2), "
                             "output_padding=(1, 0), groups=2, bias=False)")
    assert layer.kernel_size == (3, 5) and layer.padding == ((1, 1), (2, 2)) and layer.dilation == (1, 1)
    assert layer.transposed
