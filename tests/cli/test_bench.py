"""cnnkit bench: runs the checkout's benchmark suite with python -m benchmarks' options, or says why not."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import assert_one_line, run_main

from cnnkit.cli import bench
from cnnkit.fast.measure import numpy_cpu

ROOT = Path(__file__).resolve().parents[2]
HARNESS_OPTIONS = {"--help", "--suites", "--configs", "--cases", "--budget", "--output", "--no-before",
                   "--notes", "--isa"}


def options_in(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))


def test_finds_the_checkout_from_inside_it(tmp_path):
    assert bench.find_checkout(ROOT / "docs") == ROOT
    assert bench.find_checkout(ROOT) == ROOT


def test_runs_a_suite_with_the_harness_options(capsys, monkeypatch):
    pytest.importorskip("torch", reason="the benchmark suite times cnnkit against PyTorch")
    monkeypatch.chdir(ROOT / "docs")
    code, out, _ = run_main(["bench", "--suites", "memory", "--configs", "cpu:1", "--no-before",
                             "--output", "-"], capsys)
    assert code == 0
    assert "== cpu clock, 1 thread(s)" in out and "GEMM peak: NumPy" in out
    assert "memory lenet5" in out and "summary estimate" in out


def test_help_lists_every_option_of_the_harness(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, _ = run_main(["bench", "--help"], capsys)
    assert code == 0 and out.startswith("usage: cnnkit bench ")
    assert options_in(out) == HARNESS_OPTIONS
    # ... and exactly the harness's own list, so a new option shows up here without an edit
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.__main__ import main as harness_main
    finally:
        sys.path.remove(str(ROOT))
    with pytest.raises(SystemExit):
        harness_main(["--help"])
    assert options_in(capsys.readouterr().out) == HARNESS_OPTIONS


def test_outside_a_checkout_it_says_where_to_run(capsys, monkeypatch):
    monkeypatch.setattr(bench, "find_checkout", lambda start=None: None)
    code, _, err = run_main(["bench", "--suites", "conv"], capsys)
    assert code == 1
    assert_one_line(err)
    assert err.strip() == ("cnnkit: error: cnnkit bench needs a source checkout of cnnkit (its benchmarks/ "
                           "folder is not installed with the package); in the checkout run: "
                           "pip install -e \".[bench]\" && python -m benchmarks --suites conv")


def test_without_pytorch_it_says_what_to_install(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ModuleNotFoundError
    code, _, err = run_main(["bench", "--suites", "memory", "--configs", "cpu:1", "--output", "-"], capsys)
    assert code == 1
    assert err.strip() == ('cnnkit: error: cnnkit bench compares against PyTorch; install it with: '
                           'pip install -e ".[bench]"')


@pytest.fixture
def installed(tmp_path):
    """A non-editable install: a copy of the package alone on the path, run outside the checkout."""
    site = tmp_path / "site-packages"
    shutil.copytree(ROOT / "src" / "cnnkit", site / "cnnkit", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(site)}

    def run(*args):
        code = f"import cnnkit; assert cnnkit.__file__.startswith({str(site)!r}); " \
               f"from cnnkit.cli import main; main({list(args)!r})"
        return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)

    return run


def test_an_installed_package_exits_1_and_names_the_command_to_run_in_a_checkout(installed):
    done = installed("bench", "--configs", "cpu:1")
    assert done.returncode == 1, done.stderr
    assert_one_line(done.stderr)
    assert "needs a source checkout" in done.stderr
    assert done.stderr.strip().endswith('pip install -e ".[bench]" && python -m benchmarks --configs cpu:1')


def test_an_installed_package_still_answers_help(installed):
    done = installed("bench", "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage: cnnkit bench" in done.stdout and "needs a source checkout" in done.stdout


@pytest.mark.parametrize("args", [["bench", "--suites", "nope", "--output", "-"]])
def test_bad_harness_options_exit_2(capsys, args, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, _, err = run_main(args, capsys)
    assert code == 2 and "invalid choice: 'nope'" in err and "cnnkit bench: error:" in err


def test_isa_avx2_restarts_with_every_library_held_to_avx2(monkeypatch):
    pytest.importorskip("torch", reason="the benchmark suite times cnnkit against PyTorch")
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import harness

    assert harness.isa_environment("native", {}) is None
    if not numpy_cpu()[0].get("AVX2"):
        with pytest.raises(ValueError, match="this CPU has no AVX2"):
            harness.isa_environment("avx2", {})
        return
    env = harness.isa_environment("avx2", {"PATH": "/bin"})
    assert env["PATH"] == "/bin" and env["OPENBLAS_CORETYPE"] == "Haswell" and env[harness.ISA_MARK] == "avx2"
    assert harness.isa_environment("avx2", env) is None  # already restarted: runs here
    # the real thing: a process started with it runs NumPy, OpenBLAS and PyTorch on AVX2 kernels
    code = ("from benchmarks import harness; from threadpoolctl import threadpool_info; "
            "print(harness.simd_in_use()); "
            "print([p.get('architecture') for p in threadpool_info() if p['user_api'] == 'blas'])")
    out = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, check=True).stdout
    assert "X86_V4" not in out and "AVX512" not in out, out
    assert "PyTorch AVX2 (--isa avx2)" in out and "Haswell" in out, out


def test_the_before_kernel_still_loads_and_computes_what_ours_does(monkeypatch):
    """`python -m benchmarks` (without --no-before) times commit 921ff98's convolution beside today's."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import baseline

    old = baseline.load()
    if old is None:
        pytest.skip("no git history here (a shallow clone or an unpacked archive)")
    import numpy as np

    import cnnkit as ck

    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s) for s in ((2, 3, 9, 9), (4, 3, 3, 3), (4,)))
    y_old, cache = old.convnd(x, w, b, stride=2, padding=1)
    y, _ = ck.functional.conv2d(x, w, b, stride=2, padding=1)
    np.testing.assert_allclose(y_old, y, rtol=1e-10, atol=1e-12)
    assert old.convnd_backward(np.ones_like(y), cache)[1].shape == w.shape
