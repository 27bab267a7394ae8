"""Padding layers: PyTorch's modules and argument order, parity over the OpInfo pad samples, numeric
gradients, errors, and every place a layer must work (summary, save/load, torch, ONNX)."""

import numpy as np
import pytest
from everywhere_checks import check_everywhere
from opinfo_samples import samples

import cnnkit as ck
from cnnkit.analysis import receptive_field
from cnnkit.errors import ShapeError

MODES = {"constant": ("ConstantPad", "ZeroPad"), "reflect": ("ReflectionPad",),
         "replicate": ("ReplicationPad",), "circular": ("CircularPad",)}
VARIANTS = ["constant", "reflect", "replicate", "replicate_negative", "circular"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_layers_match_torch_modules_over_opinfo_samples(variant):
    """Each pad sample through the layer of its mode and rank (batched (N, C, *S), unbatched (C, *S)) and the
    torch module of the same name: same output and input gradient."""
    torch = pytest.importorskip("torch")
    ran = 0
    for tx, args, kwargs in samples("nn.functional.pad", variant):
        pad, mode = tuple(args[0]), (args[1] if len(args) > 1 else kwargs.get("mode", "constant"))
        value = args[2] if len(args) > 2 else kwargs.get("value", 0.0)
        nd = len(pad) // 2
        if tx.ndim not in (nd + 1, nd + 2):
            continue  # F.pad pads any rank; the layers take (N, C, *S) or (C, *S), as torch's modules
        for prefix in MODES[mode]:
            name = f"{prefix}{nd}d"
            arguments = (pad, value) if prefix == "ConstantPad" else (pad,)
            layer, module = getattr(ck, name)(*arguments), getattr(torch.nn, name)(*arguments)
            ty = module(tx)
            y = layer(tx.detach().numpy())
            np.testing.assert_array_equal(y, ty.detach().numpy())
            dy = np.random.default_rng(0).standard_normal(y.shape)
            (dx,) = torch.autograd.grad(ty, tx, torch.from_numpy(dy))
            np.testing.assert_allclose(layer.backward(dy), dx.numpy(), rtol=1e-14, atol=1e-15)
            ran += 1
    assert ran >= 5


@pytest.mark.parametrize("layer, shape", [
    (ck.ReflectionPad2d((1, 2, 2, 0)), (2, 2, 4, 5)), (ck.ReplicationPad1d((3, 1)), (2, 3, 4)),
    (ck.CircularPad2d((2, 1, -1, 3)), (1, 2, 4, 3)), (ck.ConstantPad3d(1, 0.5), (1, 1, 2, 3, 2)),
    (ck.ZeroPad2d((-1, 1, 0, 2)), (2, 1, 3, 3)), (ck.ReflectionPad3d((1, 0, 0, 1, 1, 1)), (1, 1, 3, 2, 2)),
])
def test_numeric_gradients(layer, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    assert max(ck.gradcheck(layer, x).values()) < 1e-8


def test_pytorchs_order_and_cnnkits_pairs_say_the_same():
    torch_order = ck.ZeroPad2d((1, 2, 3, 4))  # left, right, top, bottom
    pairs = ck.ZeroPad2d(((3, 4), (1, 2)))  # (top, bottom), (left, right)
    assert torch_order.padding == pairs.padding == ((3, 4), (1, 2))
    assert torch_order.output_shape((1, 1, 5, 5)) == (1, 1, 12, 8)


@pytest.mark.parametrize("layer, shape", [(ck.ReflectionPad2d((1, 2, 0, 1)), (2, 3, 5, 4)),
                                          (ck.ReplicationPad3d(1), (1, 2, 2, 3, 2)),
                                          (ck.CircularPad1d((2, -1)), (2, 2, 5)),
                                          (ck.CircularPad2d(1), (1, 2, 3, 3)),
                                          (ck.ConstantPad2d((1, 0, -1, 2), -0.5), (2, 2, 4, 4)),
                                          (ck.ZeroPad3d((0, 1, 1, 0, 2, 2)), (1, 1, 2, 2, 2)),
                                          (ck.ReflectionPad1d(2), (1, 3, 4))])
def test_works_everywhere(layer, shape, tmp_path):
    check_everywhere(layer, shape, tmp_path)


def test_receptive_field_moves_by_the_leading_pad():
    fields = receptive_field(ck.Sequential(ck.ReflectionPad2d((2, 0, 1, 0)), ck.Conv2d(1, 1, 3)), (1, 8, 8))
    assert fields["0"].size == (1, 1) and fields["0"].start == (-1, -2)
    assert fields["1"].size == (3, 3) and fields["1"].start == (0, -1)


@pytest.mark.parametrize("make, error, match", [
    (lambda: ck.ZeroPad2d((1, 2, 3)), ValueError,
     r"ZeroPad2d: Received padding=\(1, 2, 3\); expected an int, 4 ints in PyTorch's order"),
    (lambda: ck.ReflectionPad1d(1.0), TypeError, r"ReflectionPad1d: Received padding=1.0; expected an int"),
    (lambda: ck.ReplicationPad3d(((1, 1), (1, 1))), ValueError, r"ReplicationPad3d: Received padding="),
    (lambda: ck.ConstantPad2d(1, "0"), TypeError, r"ConstantPad2d: Received value='0'; expected a real "),
    (lambda: ck.ConstantPad1d(1, True), TypeError, r"ConstantPad1d: Received value=True"),
])
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_inputs():
    with pytest.raises(ShapeError, match=r"ReflectionPad2d\(padding=3\): reflect padding \(3, 3\) on spatial "
                                         r"axis 0 \(size 3\) must be smaller than the size"):
        ck.ReflectionPad2d(3).output_shape((1, 1, 3, 8))
    with pytest.raises(ShapeError, match=r"CircularPad1d\(padding=4\): circular padding \(4, 4\) .* at most"):
        ck.CircularPad1d(4)(np.ones((1, 1, 3)))
    with pytest.raises(ShapeError, match=r"ZeroPad1d\(padding=-2\): padding \(-2, -2\) on spatial axis 0 "
                                         r"\(size 3\) would leave -1 positions"):
        ck.ZeroPad1d(-2).output_shape((1, 1, 3))
    with pytest.raises(ShapeError, match=r"ZeroPad2d\(padding=1\): expected a 4-D input \(N, C, H, W\), "
                                         r"received shape \(4, 4\) \(or one example without the batch axis"):
        ck.ZeroPad2d(1)(np.ones((4, 4)))
    with pytest.raises(RuntimeError, match=r"backward was called before forward"):
        ck.ZeroPad2d(1).backward(np.ones((1, 1, 3, 3)))


# What a checkpoint stores of each padding layer (its config) and how it prints, as written before the
# classes took their layout from ndim: files saved then load now.
SAVED = [
    ("ZeroPad1d(padding=(2, 1))", {"type": "ZeroPad1d", "padding": [2, 1]}),
    ("ZeroPad2d(padding=-1)", {"type": "ZeroPad2d", "padding": -1}),
    ("ZeroPad3d(padding=1)", {"type": "ZeroPad3d", "padding": 1}),
    ("ConstantPad1d(padding=(0, 2), value=-1.0)",
     {"type": "ConstantPad1d", "padding": [0, 2], "value": -1.0}),
    ("ConstantPad2d(padding=1, value=0.5)", {"type": "ConstantPad2d", "padding": 1, "value": 0.5}),
    ("ConstantPad3d(padding=(1, 1, 0, 0, 2, 0), value=0.5)",
     {"type": "ConstantPad3d", "padding": [1, 1, 0, 0, 2, 0], "value": 0.5}),
    ("ReflectionPad1d(padding=1)", {"type": "ReflectionPad1d", "padding": 1}),
    ("ReflectionPad2d(padding=1)", {"type": "ReflectionPad2d", "padding": 1}),
    ("ReflectionPad3d(padding=1)", {"type": "ReflectionPad3d", "padding": 1}),
    ("ReplicationPad1d(padding=2)", {"type": "ReplicationPad1d", "padding": 2}),
    ("ReplicationPad2d(padding=(1, 0, 2, 1))", {"type": "ReplicationPad2d", "padding": [1, 0, 2, 1]}),
    ("ReplicationPad3d(padding=(1, 0, 0, 1, 2, 2))",
     {"type": "ReplicationPad3d", "padding": [1, 0, 0, 1, 2, 2]}),
    ("CircularPad1d(padding=(1, 2))", {"type": "CircularPad1d", "padding": [1, 2]}),
    ("CircularPad2d(padding=1)", {"type": "CircularPad2d", "padding": 1}),
    ("CircularPad3d(padding=1)", {"type": "CircularPad3d", "padding": 1}),
]


@pytest.mark.parametrize("text, config", SAVED, ids=[text for text, _ in SAVED])
def test_configs_and_reprs_are_those_checkpoints_hold(text, config, tmp_path):
    layer = eval(f"ck.{text}")  # the constructor call, which is also the repr
    assert repr(layer) == text and layer.config() == config
    ck.save(ck.Sequential(layer), tmp_path / "pad.npz")
    again = ck.load(tmp_path / "pad.npz")[0]
    assert repr(again) == text and again.config() == config
    x = np.random.default_rng(0).standard_normal((1, 2) + (4,) * layer.ndim).astype(np.float32)
    np.testing.assert_array_equal(again.forward(x), layer.forward(x))
