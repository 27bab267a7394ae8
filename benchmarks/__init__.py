"""cnnkit vs PyTorch, side by side in one process: ``python -m benchmarks`` regenerates docs/performance.md.

Run it with the BLAS defaults, e.g. ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks``:
those two variables (set on some machines) halve NumPy's matrix multiply speed. The report prints the
BLAS kernel and thread counts actually in use, so a slow run says why.
"""

import importlib.util
import sys
from pathlib import Path

# From a checkout without `pip install -e .`, benchmark the source tree next to this folder.
if importlib.util.find_spec("cnnkit") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

# cnnkit before NumPy, as a script that imports it first (and `cnnkit` on the command line) has it: it sets
# OpenBLAS's thread timeout, which OpenBLAS reads once when NumPy loads it (cnnkit/_openblas.py).
import cnnkit  # noqa: E402, F401
