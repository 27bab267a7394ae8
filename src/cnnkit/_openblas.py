"""OpenBLAS's idle threads, set before NumPy loads OpenBLAS: ``import cnnkit`` runs this first.

After a multiply on several threads, OpenBLAS's worker threads keep spinning for 2^28 CPU cycles (about
0.1 s) waiting for the next one. cnnkit's fast kernels switch between BLAS's threads (a large multiply)
and their own (batch parts with a one-thread BLAS, elementwise chunks), and a spinning BLAS thread takes a
core from them. ``OPENBLAS_THREAD_TIMEOUT=16`` (2^16 cycles, tens of microseconds) lets the workers sleep
almost at once (measured: docs/performance.md, "Session 7"). OpenBLAS reads the variable once, when it
loads: a process that imported NumPy before cnnkit keeps its setting (export the variable to have it
there). A value already in the environment is kept.
"""

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")
