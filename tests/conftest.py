"""Shared test helpers: PyTorch parity tolerance, real-data locations, seeded generators."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Test files are imported by path (--import-mode=importlib), so two folders may each have a test_cli.py.
# Helper modules next to the tests (viz_models.py, data_helpers.py, ...) are imported by plain name, so each
# test folder is put on the path; their names must stay unique across folders.
sys.path[:0] = [str(d) for d in sorted(Path(__file__).parent.iterdir())
                if d.is_dir() and d.name != "__pycache__"]
SHARED = ROOT.parent / "shared"
MNIST_DIR = Path(os.environ.get("CNNKIT_TEST_MNIST", SHARED / "datasets" / "mnist"))
TORCHVISION_FIXTURES = SHARED / "fixtures" / "torchvision"

# PyTorch is only the reference of the parity tests: without it they skip with this reason and everything
# else (gradient checks, reference kernels, errors) still runs.
TORCH_REASON = "PyTorch parity test: needs torch (pip install -e \".[test]\" installs torch==2.13.0)"


def import_torch():
    """``torch`` for a parity test, or a skip (of the test, or of the module at its top) without it.

    Keeps PyTorch to the same two cores the NumPy engine uses, which also makes its float32 results
    reproducible.
    """
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    if torch.get_num_threads() != 2:
        torch.set_num_threads(2)
    return torch


@pytest.fixture(scope="session")
def torch():
    """PyTorch for the parity tests of a module whose other tests run without it (see import_torch)."""
    return import_torch()


@pytest.fixture(scope="session")
def tF(torch):
    """``torch.nn.functional``, PyTorch's kernels that the parity tests compare ours with."""
    return torch.nn.functional


@pytest.fixture
def matplotlib():
    """For tests that draw (PNG files, the HTML report): skips without matplotlib, the viz extra."""
    return pytest.importorskip("matplotlib", reason='draws with matplotlib: pip install -e ".[viz]"')


@pytest.fixture(autouse=True)
def _torch_on_two_cores():
    """Modules that import torch themselves (``pytest.importorskip`` at their top) get two threads too."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 2:
        torch.set_num_threads(2)


def rel_err(a, b) -> float:
    """max |a - b| / max |b|: the parity metric (float32 results agree to about 1e-6 of their scale)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.abs(b).max(initial=0.0)
    return float(np.abs(a - b).max(initial=0.0) / (scale if scale > 0 else 1.0))


def assert_parity(ours, theirs, tol=1e-4, what="output"):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    err = rel_err(ours, theirs)
    assert err <= tol, f"{what}: relative error {err:.2e} > {tol}"


@pytest.fixture
def rng():
    return np.random.default_rng(0)


MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture
def mnist_dir():
    """The full MNIST folder. A fresh clone has none, so the tests that need it skip (the embedded subset
    covers the rest); CI has the data and sets CNNKIT_REQUIRE_MNIST=1 so that a missing copy fails there."""
    missing = [name for name in MNIST_FILES if not (MNIST_DIR / name).exists()]
    if missing:
        reason = (f"needs full MNIST at {MNIST_DIR} (../shared/datasets/mnist from the project root, or "
                  f"$CNNKIT_TEST_MNIST); missing {', '.join(missing)}")
        if os.environ.get("CNNKIT_REQUIRE_MNIST") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return MNIST_DIR
