"""A fresh clone has no ../shared/datasets/mnist: the tests that need full MNIST skip and say why, and CI
(CNNKIT_REQUIRE_MNIST=1) turns the same absence into a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NEEDS_MNIST = ["tests/data/test_idx.py::test_real_mnist_train",
               "tests/data/test_loader.py::test_auto_normalization_of_real_mnist",
               "tests/data/test_embedded.py::test_script_rebuilds_the_same_arrays"]


def _pytest(tmp_path, **env):
    environment = {**os.environ, "CNNKIT_TEST_MNIST": str(tmp_path / "no-mnist-here"), **env}
    if "CNNKIT_REQUIRE_MNIST" not in env:
        environment.pop("CNNKIT_REQUIRE_MNIST", None)
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *NEEDS_MNIST]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)


def test_tests_needing_full_mnist_skip_with_the_reason(tmp_path):
    run = _pytest(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 skipped" in run.stdout
    assert "needs full MNIST at" in run.stdout and "no-mnist-here" in run.stdout
    assert "../shared/datasets/mnist from the project root" in run.stdout


def test_ci_can_require_the_data(tmp_path):
    run = _pytest(tmp_path, CNNKIT_REQUIRE_MNIST="1")
    assert run.returncode == 1 and "3 errors" in run.stdout, run.stdout  # a fixture failure is an error
    assert "Failed: needs full MNIST at" in run.stdout
