"""Padding kernels: the four modes' index rules, numeric gradients, parity over PyTorch's OpInfo samples."""

import numpy as np
import pytest
from opinfo_samples import samples
from reference_checks import assert_gradients, assert_same

from cnnkit.errors import ShapeError
from cnnkit.reference import padding as P

torch = pytest.importorskip("torch")


def test_each_mode_on_one_row():
    x = np.arange(4.0)[None, None]
    rows = {mode: P.padnd(x, ((2, 3),), mode, value=-1.0)[0][0, 0].tolist() for mode in P.MODES}
    assert rows == {"constant": [-1, -1, 0, 1, 2, 3, -1, -1, -1], "reflect": [2, 1, 0, 1, 2, 3, 2, 1, 0],
                    "replicate": [0, 0, 0, 1, 2, 3, 3, 3, 3], "circular": [2, 3, 0, 1, 2, 3, 0, 1, 2]}


def test_negative_pads_crop():
    x = np.arange(5.0)[None, None]
    assert P.padnd(x, ((-2, 1),), "constant")[0][0, 0].tolist() == [2, 3, 4, 0]
    assert P.padnd(x, ((-1, -1),), "reflect")[0][0, 0].tolist() == [1, 2, 3]


@pytest.mark.parametrize("mode", P.MODES)
@pytest.mark.parametrize("shape, pads", [((2, 2, 5), ((2, 3),)), ((1, 2, 4, 5), ((1, 2), (3, 0))),
                                         ((1, 1, 3, 4, 3), ((1, 1), (0, 2), (2, 1))),
                                         ((2, 1, 5, 6), ((-1, 2), (2, -3)))])
def test_numeric_gradients(mode, shape, pads):
    x = np.random.default_rng(0).standard_normal(shape)
    assert_gradients(lambda x: P.padnd(x, pads, mode, value=0.5), P.padnd_backward, {"x": x})


VARIANTS = ["constant", "reflect", "replicate", "replicate_negative", "circular"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_pytorch_opinfo_samples(variant):
    """Every nn.functional.pad sample PyTorch tests (1-3 padded axes, batched or not, empty batches and
    negative pads): the output and the input gradient equal PyTorch's."""
    F = torch.nn.functional
    cases = samples("nn.functional.pad", variant)
    assert cases
    for tx, args, kwargs in cases:
        pad, mode = args[0], (args[1] if len(args) > 1 else kwargs.get("mode", "constant"))
        value = args[2] if len(args) > 2 else kwargs.get("value", 0.0)
        nd = len(pad) // 2
        ty = F.pad(tx, *args, **kwargs)
        x = tx.detach().numpy()
        # (N, C, *S): the padded axes are the last nd, everything before them is batch and channels
        lead = x.shape[:x.ndim - nd]
        batched = x.reshape(int(np.prod(lead[:-1])) if len(lead) > 1 else 1, lead[-1] if lead else 1,
                            *x.shape[x.ndim - nd:])
        y, cache = P.padnd(batched, P.torch_order(tuple(pad), nd), mode, value)
        what = f"{mode} {tuple(x.shape)} {pad}"
        assert_same(y.reshape(ty.shape), ty.detach().numpy(), what)
        dy = np.random.default_rng(1).standard_normal(tuple(ty.shape))
        (dx_torch,) = torch.autograd.grad(ty, tx, torch.from_numpy(dy))
        assert_same(P.padnd_backward(dy.reshape(y.shape), cache).reshape(x.shape), dx_torch.numpy(), what)


def test_float32_stays_float32():
    y, cache = P.padnd(np.ones((1, 1, 3, 3), np.float32), ((1, 1), (1, 1)), "reflect")
    assert y.dtype == np.float32 and P.padnd_backward(np.ones_like(y), cache).dtype == np.float32


def test_torch_order():
    assert P.torch_order((1, 2, 3, 4), 2) == ((3, 4), (1, 2))
    assert P.torch_order([[1, 2], [3, 4]], 2) == ((1, 2), (3, 4))
    with pytest.raises(ValueError, match=r"pad: Received padding=\(1, 2, 3\); expected an int, 4 ints"):
        P.torch_order((1, 2, 3), 2)
    with pytest.raises(ValueError, match=r"Received padding=\(\(1, 2\),\); expected"):
        P.torch_order(((1, 2),), 2)
    with pytest.raises(TypeError, match=r"Received padding=1.5"):
        P.torch_order(1.5, 1)


@pytest.mark.parametrize("mode, pads, match", [
    ("reflect", ((3, 0),), r"reflect padding \(3, 0\) on spatial axis 0 \(size 3\) must be smaller than"),
    ("circular", ((0, 4),), r"circular padding \(0, 4\) on spatial axis 0 \(size 3\) must be at most the"),
    ("replicate", ((-2, -1),), r"padding \(-2, -1\) on spatial axis 0 \(size 3\) would leave 0 positions"),
    ("constant", ((-2, -2),), r"would leave -1 positions"),
])
def test_pads_a_mode_cannot_make(mode, pads, match):
    with pytest.raises(ShapeError, match=match):
        P.padnd(np.ones((1, 1, 3)), pads, mode)


def test_bad_mode_and_pair_count():
    with pytest.raises(ValueError, match=r"pad: Received mode='mirror'; expected one of 'constant', "):
        P.padnd(np.ones((1, 1, 3)), ((1, 1),), "mirror")
    with pytest.raises(ShapeError, match=r"pad: 2 \(before, after\) pairs for an input with 1 spatial axes"):
        P.padnd(np.ones((1, 1, 3)), ((1, 1), (1, 1)))
