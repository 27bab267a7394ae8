"""OpenBLAS's idle threads, set before NumPy loads OpenBLAS: ``import cnnkit`` runs this first.

After a multiply on several threads, OpenBLAS's worker threads keep spinning for 2^28 CPU cycles (about
0.1 s) waiting for the next one. cnnkit's fast kernels switch between BLAS's threads (a large multiply)
and their own (batch parts with a one-thread BLAS, elementwise chunks), and a spinning BLAS thread takes a
core from them: the 7x7 stem after a two-thread multiply took 27.8 ms instead of 18.8 (AMD EPYC, two
cores). ``OPENBLAS_THREAD_TIMEOUT=16`` (2^16 cycles, ~25 us) lets the workers sleep almost at once;
ResNet-18 / ResNet-50 inference at batch 8 on two threads went from 1.23-1.34 / 1.25-1.40 x PyTorch's time
to 1.02-1.12 / 1.09-1.21 (values 12-20 measured alike). OpenBLAS reads the variable once, when it loads:
a process that imported NumPy before cnnkit keeps its setting (export the variable to have it there). A
value already in the environment is kept.
"""

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")
