"""Timing and machine description shared by every suite.

Timings are the *minimum* over repeated runs, with the contenders interleaved (a, b, a, b, ...) so that a
burst of load from another process hits both sides alike; the minimum is the least noisy estimate of
what the code costs when nothing else interferes.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field

import numpy as np

from cnnkit.fast.measure import numpy_cpu, numpy_simd


@dataclass
class Timing:
    """Best (minimum) seconds per call of each named contender."""

    best: dict[str, float] = field(default_factory=dict)
    runs: int = 0

    def ratio(self, ours: str = "cnnkit", theirs: str = "torch") -> float:
        return self.best[ours] / self.best[theirs]


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def use_clock(name: str):
    """"wall" (default: what a user waits) or "cpu" (this process's CPU seconds: with one thread per
    library it is insensitive to other processes competing for the cores, so it steers work on a busy
    machine; with more threads it also counts their spinning)."""
    global clock
    clock = CLOCKS[name]


SETTLE, CALLS = 0.25, 3  # see compare()


def compare(contenders: dict, *, min_runs: int = 5, max_runs: int = 15, budget: float = 1.5) -> Timing:
    """Time each zero-argument callable, interleaved, keeping the minimum.

    Rounds until ``max_runs`` rounds or ``budget`` seconds have been spent, but at least ``min_runs``. In
    each round a contender is called, untimed, for ``SETTLE`` seconds (at least once), then ``CALLS``
    more times, timed. The untimed calls matter on two threads: the worker threads of OpenBLAS (NumPy)
    keep spinning on a core for about 105 ms after a matrix multiply, OpenMP's (PyTorch) for 5-10 ms
    (measured), so a contender timed right after the other library lost a core to its spinning threads
    (PyTorch's 3x3 convolutions ran 1.4-2x slower right after cnnkit's; cnnkit's depthwise layer took
    8.9 ms alone and 11.5 ms right after PyTorch's). Settled, each library is timed in the steady state of
    a loop that calls it alone, and the rounds still interleave them against bursts of outside load.
    """
    timing = Timing({name: float("inf") for name in contenders})
    start = time.perf_counter()
    while timing.runs < max_runs and (timing.runs < min_runs or time.perf_counter() - start < budget):
        for name, fn in contenders.items():
            settled = time.perf_counter() + SETTLE
            fn()
            while time.perf_counter() < settled:
                fn()
            for _ in range(CALLS):
                t0 = clock()
                fn()
                timing.best[name] = min(timing.best[name], clock() - t0)
        timing.runs += 1
    return timing


def gemm_peak(n: int = 2048, runs: int = 5) -> float:
    """GFLOP/s of one float32 n x n matrix multiply through NumPy (the BLAS ceiling every kernel shares)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty_like(a)
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def torch_gemm_peak(n: int = 2048, runs: int = 5) -> float:
    """The same multiply through PyTorch (oneDNN/MKL or its own OpenBLAS)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


# ``python -m benchmarks --isa avx2``: every library held to AVX2 through its own switch, on a CPU that has
# AVX-512 -- what the AVX2 machines run (OpenBLAS's Haswell kernel, NumPy's x86-64-v3 loops,
# PyTorch's AVX2 kernels in ATen, oneDNN and MKL). The cores, caches and clock stay this machine's: an
# emulation of the instruction set, not of another CPU. Set before any library loads (the process starts
# again with them: see benchmarks.__main__).
ISA_ENVIRONMENT = {
    "avx2": {"OPENBLAS_CORETYPE": "Haswell", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}
# NumPy's loops above AVX2 (it refuses to disable what it did not find, so only those it found)
ISA_NUMPY_ABOVE = {"avx2": ("X86_V4", "AVX512_ICL", "AVX512_SPR")}
ISA_MARK = "CNNKIT_BENCH_ISA"  # names the --isa whose environment this process runs in


def isa_environment(isa: str, environ=None) -> dict | None:
    """The environment to run ``--isa isa`` in, or None when ``environ`` (default: os.environ) is it
    already (or ``isa`` is "native").

    Raises:
        ValueError: the CPU cannot run ``isa`` (no AVX2: not an x86-64 CPU of the last ten years).
    """
    if isa == "native":
        return None
    environ = dict(os.environ if environ is None else environ)
    if environ.get(ISA_MARK) == isa:
        return None
    features, _ = numpy_cpu()
    if not features.get(isa.upper()):
        raise ValueError(f"--isa {isa}: this CPU has no {isa.upper()} ({cpu_model()}); use --isa native.")
    above = [f for f in ISA_NUMPY_ABOVE[isa] if features.get(f)]
    return {**environ, **ISA_ENVIRONMENT[isa], ISA_MARK: isa,
            **({"NPY_DISABLE_CPU_FEATURES": " ".join(above)} if above else {})}


def simd_in_use() -> str:
    """The vector instruction sets the libraries run, which ``--isa`` may hold below the CPU's flags."""
    import torch

    return (f"NumPy {numpy_simd() or 'baseline only'}; PyTorch {torch.backends.cpu.get_cpu_capability()}"
            + (f" (--isa {os.environ[ISA_MARK]})" if ISA_MARK in os.environ else ""))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _simd_flags() -> str:
    """The CPU's vector instruction sets (the ratios depend on them: AVX-512 or AVX2 only), as the measured
    dispatch keys its cache by them."""
    from cnnkit.fast.measure import machine as host

    return host()["flags"] or "unknown"


def machine() -> dict:
    """What the numbers depend on: CPU, cores, load, library versions, BLAS kernel and thread counts."""
    import torch

    info = {
        "cpu": cpu_model(),
        "SIMD flags": _simd_flags(),
        "SIMD in use": simd_in_use(),
        "logical cores": os.cpu_count(),
        "load average (1, 5, 15 min)": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch threads": torch.get_num_threads(),
    }
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                "OPENBLAS_THREAD_TIMEOUT"):
        info[var] = os.environ.get(var, "(unset)")
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        info["numpy BLAS"] = "unknown (pip install threadpoolctl)"
    else:
        for pool in threadpool_info():
            if pool.get("user_api") == "blas":
                info["numpy BLAS"] = (f"{pool['internal_api']} {pool.get('version')} kernel "
                                      f"{pool.get('architecture')}, {pool['num_threads']} threads")
                break
    lines = [line.strip() for line in torch.__config__.parallel_info().splitlines()]
    libraries = [line.split(" Version")[0].split(" v")[0] for line in lines
                 if line.startswith(("Intel(R) oneAPI", "Intel(R) MKL-DNN", "OpenBLAS"))]
    backend = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("ATen parallel")), "?")
    info["torch kernels"] = f"{', '.join(libraries) or 'unknown'}; parallel backend {backend}"
    return info


def slow_blas_warning() -> str | None:
    """A sentence when the environment is known to slow OpenBLAS down, else None."""
    chosen = ISA_ENVIRONMENT.get(os.environ.get(ISA_MARK, ""), {})  # --isa's own kernel is no accident
    bad = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ and v not in chosen]
    if bad:
        return (f"{' and '.join(bad)} set: OpenBLAS may pick a slower kernel. Run "
                f"`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks` for honest numbers.")
    return None
