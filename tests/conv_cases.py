"""Convolution test cases shared by tests/layers/test_conv.py and tests/fast/test_conv.py: a seeded grid of
valid layer configurations and the parity check of a layer (any forced algorithm) against PyTorch."""

import numpy as np
import pytest

import cnnkit as ck
from conftest import assert_parity

CONV = {1: ck.Conv1d, 2: ck.Conv2d, 3: ck.Conv3d}


def grid(n, seed):
    """n random but valid conv configurations (seeded: the same grid on every run)."""
    r = np.random.default_rng(seed)
    configs = []
    while len(configs) < n:
        nd = int(r.choice([1, 2, 2, 2, 3]))
        groups = int(r.choice([1, 1, 2, 3]))
        C, K = groups * int(r.integers(1, 4)), groups * int(r.integers(1, 4))
        if r.random() < 0.15:  # depthwise
            groups, K = C, C * int(r.integers(1, 3))
        k = tuple(int(v) for v in r.integers(1, 4, nd))
        s = tuple(int(v) for v in r.integers(1, 4, nd))
        d = tuple(int(v) for v in r.integers(1, 3, nd))
        p = tuple(int(v) for v in r.integers(0, 3, nd))
        size = tuple(int(v) for v in r.integers(3 if nd == 3 else 4, 7 if nd == 3 else 12, nd))
        if any(dd * (kk - 1) + 1 > n + 2 * pp for dd, kk, pp, n in zip(d, k, p, size)):
            continue
        configs.append(dict(nd=nd, N=int(r.integers(1, 4)), C=C, K=K, size=size, kernel_size=k, stride=s,
                            padding=p, dilation=d, groups=groups, bias=bool(r.random() < 0.8)))
    return configs


def torch_parity(cfg, algorithm="auto"):
    """Forward, dx, dweight and dbias of a layer match torch.nn.functional.convNd (float32, PyTorch's floor
    rule), with ``algorithm`` forced."""
    torch = pytest.importorskip("torch", reason="PyTorch parity needs torch (pip install -e '.[test]')")
    nd, rng = cfg["nd"], np.random.default_rng(0)
    layer = CONV[nd](cfg["C"], cfg["K"], cfg["kernel_size"], cfg["stride"], cfg["padding"], cfg["dilation"],
                     cfg["groups"], cfg["bias"], fit="crop", rng=rng, algorithm=algorithm)
    x = rng.standard_normal((cfg["N"], cfg["C"], *cfg["size"])).astype(np.float32)
    y = layer(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)

    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.weight.data, requires_grad=True)
    tb = torch.tensor(layer.bias.data, requires_grad=True) if cfg["bias"] else None
    conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}[nd]
    ty = conv(tx, tw, tb, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    ty.backward(torch.tensor(dy))
    assert y.dtype == dx.dtype == np.float32
    assert_parity(y, ty, what="forward")
    assert_parity(dx, tx.grad, what="dx")
    assert_parity(layer.weight.grad, tw.grad, what="dweight")
    if cfg["bias"]:
        assert_parity(layer.bias.grad, tb.grad, what="dbias")
