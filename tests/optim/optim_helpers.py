"""Helpers for optimizer parity: the same parameters and the same gradients fed to cnnkit and torch.optim."""

import numpy as np

from cnnkit.layers import Parameter
from conftest import assert_parity, import_torch

SHAPES = [(4, 3, 3, 3), (4,), (10, 7)]


def make_pair(seed=0, dtype=np.float32):
    """Three cnnkit Parameters and three torch tensors holding the same values (skips without torch)."""
    torch = import_torch()
    r = np.random.default_rng(seed)
    ours = [Parameter(r.standard_normal(s).astype(dtype)) for s in SHAPES]
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in ours]
    return ours, theirs


def run_parity(make_ours, make_theirs, steps=6, seed=0, tol=1e-5, grad_scale=1.0):
    """Step both optimizers on identical random gradients and compare every parameter after every step."""
    torch = import_torch()
    ours, theirs = make_pair(seed)
    opt, topt = make_ours(ours), make_theirs(theirs)
    r = np.random.default_rng(seed + 1)
    for step in range(steps):
        for p, t in zip(ours, theirs, strict=True):
            g = (r.standard_normal(p.shape) * grad_scale).astype(np.float32)
            p.grad[...] = g
            t.grad = torch.tensor(g)
        opt.step()
        topt.step()
        for i, (p, t) in enumerate(zip(ours, theirs, strict=True)):
            assert p.data.dtype == np.float32
            assert_parity(p.data, t, tol=tol, what=f"step {step + 1}, parameter {i}")
    return opt, topt, ours, theirs

