"""cnnkit bench: runs the checkout's benchmark suite with python -m benchmarks' options, or says why not."""

from pathlib import Path

import pytest
from test_cli import run_main

from cnnkit.cli import bench

ROOT = Path(__file__).resolve().parents[2]


def test_finds_the_checkout_from_inside_it(tmp_path):
    assert bench.find_checkout(ROOT / "docs") == ROOT
    assert bench.find_checkout(ROOT) == ROOT


def test_runs_a_suite_with_the_harness_options(capsys, monkeypatch):
    monkeypatch.chdir(ROOT / "docs")
    code, out, _ = run_main(["bench", "--suites", "memory", "--configs", "cpu:1", "--no-before",
                             "--output", "-"], capsys)
    assert code == 0
    assert "== cpu clock, 1 thread(s)" in out and "GEMM peak: NumPy" in out
    assert "memory lenet5" in out and "summary estimate" in out


def test_outside_a_checkout_it_says_where_to_run(capsys, monkeypatch):
    monkeypatch.setattr(bench, "find_checkout", lambda start=None: None)
    code, _, err = run_main(["bench"], capsys)
    assert code == 1
    assert err.strip() == ("cnnkit: error: cnnkit bench runs the benchmarks/ folder of a cnnkit source "
                           "checkout, which is not installed with the package; run it inside the repository")


@pytest.mark.parametrize("args", [["bench", "--suites", "nope", "--output", "-"]])
def test_bad_harness_options_exit_2(capsys, args, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, _, err = run_main(args, capsys)
    assert code == 2 and "invalid choice: 'nope'" in err
