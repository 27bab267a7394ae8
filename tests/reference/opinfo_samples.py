"""PyTorch's own OpInfo sample inputs (torch.testing._internal.common_methods_invocations.op_db), as plain
NumPy cases: the sweep of shapes and arguments PyTorch tests each op with, reused as our parity sweep.

Importing op_db takes seconds and needs the ``expecttest`` package (in the test extra), so it happens once
per process and only in tests that ask for it.
"""

from __future__ import annotations

import functools

import pytest


@functools.lru_cache(maxsize=1)
def _op_db():
    pytest.importorskip("expecttest", reason="OpInfo samples need expecttest (in the test extra)")
    from torch.testing._internal.common_methods_invocations import op_db

    return op_db


def samples(name: str, variant: str = ""):
    """The float64 sample inputs of OpInfo ``name`` (e.g. "nn.functional.pad", variant "reflect"), as a list
    of (input tensor (requires_grad), args tuple, kwargs dict)."""
    torch = pytest.importorskip("torch")
    infos = [op for op in _op_db() if op.name == name and op.variant_test_name == variant]
    assert infos, f"no OpInfo named {name!r} (variant {variant!r})"
    out = []
    for s in infos[0].sample_inputs("cpu", torch.float64, requires_grad=True):
        out.append((s.input, tuple(s.args), dict(s.kwargs)))
    return out


def sample_ids(cases):
    """Readable ids: input shape and arguments."""
    return [f"{tuple(x.shape)}-{args}-{kwargs}".replace(" ", "") for x, args, kwargs in cases]
