"""Helpers shared by the MPI tests: the weights of a run, and the check that two runs trained alike."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np

SRC = str(Path(__file__).resolve().parents[3] / "src")
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
ENV = {"OMP_NUM_THREADS": "1", "PYTHONPATH": SRC}


def environment(**extra) -> dict:
    return {**os.environ, **ENV, **extra}


def cnnkit_train(*args) -> list[str]:
    """``cnnkit train ARGS`` as this interpreter runs it (the checkout's cnnkit, no report)."""
    return [sys.executable, "-m", "cnnkit", "train", "--no-report", *map(str, args)]


def checkpoint_weights(run) -> dict[str, np.ndarray]:
    """The model's parameters and buffers in a run directory's checkpoint."""
    from cnnkit.io import load_checkpoint

    return load_checkpoint(run).model.state_dict()


def assert_same_weights(a, b, keys=None, rtol=1e-5):
    """Every array of ``a`` equals ``b``'s within ``rtol`` of its largest magnitude (float32 sums in another
    order differ by a few units in the last place). ``a``, ``b``: dicts or ``np.load`` results."""
    names = sorted(a.files if hasattr(a, "files") else a)
    assert names == sorted(b.files if hasattr(b, "files") else b)
    for key in keys or names:
        scale = max(np.abs(a[key]).max(), 1e-12)
        assert np.abs(a[key] - b[key]).max() <= rtol * scale, key
