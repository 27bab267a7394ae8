"""The light core (STYLE rule 8): `import cnnkit` and its NumPy parts load no optional dependency.

Checked in a fresh interpreter, because this test session has already imported torch, matplotlib and the
rest for the parity tests; only a new process shows what `import cnnkit` itself pulls in.
"""

import json
import os
import subprocess
import sys

from conftest import ROOT

# The extras' packages (test, viz, data, onnx, mpi, cli): none may be needed to import the core.
OPTIONAL = ("torch", "onnx", "onnxruntime", "matplotlib", "PIL", "typer", "rich", "click", "safetensors",
            "mpi4py", "threadpoolctl")


def _imported_after(statement):
    code = (f"import sys, json; {statement}; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return set(json.loads(out.stdout))


def test_import_cnnkit_needs_numpy_only():
    loaded = _imported_after("import cnnkit")
    assert "numpy" in loaded and "cnnkit" in loaded  # the probe sees real imports
    assert sorted(loaded.intersection(OPTIONAL)) == []


def test_every_numpy_part_imports_no_optional_dependency():
    """One process imports them all: if the union loads no optional package, no single module does."""
    modules = ["layers", "functional", "losses", "analysis", "models", "optim", "train", "io", "data",
               "transfer", "interop", "viz", "train.parallel.mpi", "gradcheck", "init"]
    loaded = _imported_after("; ".join(f"import cnnkit.{m}" for m in modules))
    assert sorted(loaded.intersection(OPTIONAL)) == []


def test_the_probe_would_see_a_heavy_import():
    """Guard against a probe that cannot fail: importing an optional package is reported."""
    assert "rich" in _imported_after("import cnnkit, rich")
