"""``python -m benchmarks``: run the suites, print as they go, write docs/performance.md.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks            # everything (~10 min)
    python -m benchmarks --suites conv --budget 0.5 --output -                   # a quick look, no file
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks import baseline, conv_suite, harness, layer_suite, model_suite, report

SUITES = ("conv", "layers", "training", "inference", "memory")
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="+", choices=SUITES, default=list(SUITES))
    parser.add_argument("--budget", type=float, default=1.5, help="seconds of repeated runs per case")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (default: NumPy's BLAS thread count)")
    parser.add_argument("--clock", choices=tuple(harness.CLOCKS), default="wall",
                        help="wall time (default) or process CPU time (with --threads 1 on a busy machine)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="markdown report path, '-' for none")
    parser.add_argument("--no-before", action="store_true",
                        help=f"skip the 'before' columns (the engine's kernel at commit {baseline.COMMIT})")
    parser.add_argument("--notes", default="", help="a sentence on the conditions, printed in the report")
    args = parser.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    blas_threads = next((p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"), 1)
    threads = args.threads or blas_threads
    harness.use_clock(args.clock)
    torch.set_num_threads(threads)
    with threadpool_limits(limits=threads, user_api="blas"):
        info = harness.machine()
        info["clock"] = args.clock
        for key, value in info.items():
            print(f"{key:>28}: {value}")
        warning = harness.slow_blas_warning()
        if warning:
            print("WARNING:", warning, file=sys.stderr)
        peaks = {"numpy": harness.gemm_peak(), "torch": harness.torch_gemm_peak()}
        results = {"machine": info, "gemm": peaks}
        print(f"{'GEMM peak':>28}: NumPy {results['gemm']['numpy']:.0f} GFLOP/s, "
              f"PyTorch {results['gemm']['torch']:.0f} GFLOP/s")
        before = None if args.no_before else baseline.load()
        results["machine"]["before"] = (f"commit {baseline.COMMIT}'s conv kernel" if before is not None
                                        else "(not measured)")
        if "conv" in args.suites:
            results["conv"] = conv_suite.run(baseline=before, budget=args.budget)
        if "layers" in args.suites:
            results["layers"] = layer_suite.run(budget=args.budget)
        if "training" in args.suites:
            results["training"] = model_suite.training(baseline=before, budget=2 * args.budget)
        if "inference" in args.suites:
            results["inference"] = model_suite.inference(baseline=before, budget=2 * args.budget)
        if "memory" in args.suites:
            results["memory"] = model_suite.memory(baseline=before)
        results["machine"]["load average after the run"] = " ".join(
            f"{v:.2f}" for v in __import__("os").getloadavg())

    notes = args.notes + (f" **{warning}**" if warning else "")
    text = report.render(results, command="python -m benchmarks " + " ".join(argv or sys.argv[1:]),
                         notes=notes.strip())
    if args.output != "-":
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
