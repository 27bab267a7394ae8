"""``python -m benchmarks``: run the suites, print as they go, write docs/performance.md.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks          # everything, twice (~15 min)
    python -m benchmarks --suites conv --configs cpu:1 --budget 0.5 --output -  # a quick look, no file

Each configuration is ``clock:threads``. ``wall:2`` is what a user waits for with both libraries on two
threads; ``cpu:1`` times one thread by the process's CPU seconds, which other processes competing for the
cores barely disturb -- the configuration to trust on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from benchmarks import baseline, conv_suite, harness, layer_suite, model_suite, report, zoo_suite

SUITES = ("conv", "zoo", "layers", "training", "inference", "memory")
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def _config(text: str) -> tuple[str, int]:
    clock, _, threads = text.partition(":")
    if clock not in harness.CLOCKS or not threads.isdigit() or int(threads) < 1:
        raise argparse.ArgumentTypeError(f"Received {text!r}; expected clock:threads with clock in "
                                         f"{tuple(harness.CLOCKS)}, e.g. wall:2 or cpu:1.")
    return clock, int(threads)


def run_suites(suites, *, before, budget, cases=None, threads=1) -> dict:
    results = {"gemm": {"numpy": harness.gemm_peak(), "torch": harness.torch_gemm_peak()}}
    peaks = results["gemm"]
    print(f"GEMM peak: NumPy {peaks['numpy']:.0f} GFLOP/s, PyTorch {peaks['torch']:.0f} GFLOP/s")
    if "conv" in suites:
        chosen = [c for c in conv_suite.SUITE + conv_suite.CHANNELS_LAST
                  if cases is None or any(p in c.label for p in cases)]
        results["conv"] = conv_suite.run(chosen, baseline=before, budget=budget)
    if "zoo" in suites:  # shapes the rules were never tuned on (issue 16)
        chosen = [(label, case) for label, case in zoo_suite.cases()
                  if cases is None or any(p in label or p in case.label for p in cases)]
        results["zoo"] = zoo_suite.run(chosen, budget=budget)
    if "layers" in suites:
        results["layers"] = layer_suite.run(budget=budget)
    if "training" in suites:
        results["training"] = model_suite.training(baseline=before, budget=2 * budget, threads=threads)
    if "inference" in suites:
        results["inference"] = model_suite.inference(baseline=before, budget=2 * budget)
    if "memory" in suites:
        results["memory"] = model_suite.memory(baseline=before)
    results["load"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return results


def main(argv=None, prog="python -m benchmarks") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="+", choices=SUITES, default=list(SUITES))
    parser.add_argument("--configs", nargs="+", type=_config, default=[("wall", 2), ("cpu", 1)],
                        help="clock:threads pairs, run in turn (default: wall:2 cpu:1)")
    parser.add_argument("--cases", nargs="+", metavar="TEXT",
                        help="only the conv and zoo cases whose label contains one of these, e.g. 'g=64' "
                             "'(8,256' 'resnet50'")
    parser.add_argument("--budget", type=float, default=1.5, help="seconds of repeated runs per case")
    parser.add_argument("--output", help="markdown report path, '-' for none (default: docs/performance.md, "
                                         "with --isa docs/performance-<isa>.md)")
    parser.add_argument("--no-before", action="store_true",
                        help=f"skip the 'before' columns (the engine's kernel at commit {baseline.COMMIT})")
    parser.add_argument("--notes", default="", help="a sentence on the conditions, printed in the report")
    parser.add_argument("--isa", choices=("native", *harness.ISA_ENVIRONMENT), default="native",
                        help="hold NumPy, its BLAS and PyTorch to this instruction set (avx2: what an "
                             "AVX2-only CPU runs; this CPU's cores and caches stay): the process restarts "
                             "with each library's switch set")
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = str(DEFAULT_OUTPUT if args.isa == "native"
                          else DEFAULT_OUTPUT.with_name(f"performance-{args.isa}.md"))
    try:
        environment = harness.isa_environment(args.isa)
    except ValueError as e:
        parser.error(str(e))
    if environment is not None:  # the switches act when a library loads: start again with them set
        root = str(Path(__file__).resolve().parents[1])
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [root, environment.get("PYTHONPATH")]))
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks",
                                   *(argv if argv is not None else sys.argv[1:])], environment)

    import torch
    from threadpoolctl import threadpool_limits

    from cnnkit.io import atomic_write
    from cnnkit.runtime import keep_freed_memory, set_elementwise_threads

    info = harness.machine()
    # as cnnkit.train.fit does; PyTorch's CPU tensors come from the same malloc and gain alike
    info["malloc keeps freed memory"] = keep_freed_memory()
    for key, value in info.items():
        print(f"{key:>28}: {value}")
    warning = harness.slow_blas_warning()
    if warning:
        print("WARNING:", warning, file=sys.stderr)
    before = None if args.no_before else baseline.load()
    info["before"] = f"commit {baseline.COMMIT}'s conv kernel" if before is not None else "(not measured)"

    sections = []
    for i, (clock, threads) in enumerate(args.configs):
        suites = [s for s in args.suites if s != "memory" or i == 0]  # bytes do not depend on the clock
        print(f"== {clock} clock, {threads} thread(s) for NumPy's BLAS and for PyTorch")
        harness.use_clock(clock)
        torch.set_num_threads(threads)
        set_elementwise_threads(threads)  # cnnkit's own threads (depthwise, pooling chunks), like torch's
        with threadpool_limits(limits=threads, user_api="blas"):
            sections.append(((clock, threads), run_suites(suites, before=before, budget=args.budget,
                                                        cases=args.cases, threads=threads)))

    held = "" if args.isa == "native" else (
        f"Every library held to {args.isa.upper()} on a CPU that has more (`--isa {args.isa}`, "
        f"\"SIMD in use\" below): an emulation of the instruction set; the cores, caches and clock are this "
        f"machine's. ")
    notes = held + args.notes + (f" **{warning}**" if warning else "")
    shown = list(argv if argv is not None else sys.argv[1:])
    if "--notes" in shown:  # the notes are printed below the command, not inside it
        del shown[shown.index("--notes"):shown.index("--notes") + 2]
    command = "python -m benchmarks " + " ".join(shown)
    text = report.render(info, sections, command=command.strip(), notes=notes.strip(),
                         analysis=args.isa == "native")
    if args.output != "-":
        atomic_write(args.output, lambda f: f.write(text.encode()))  # a report stopped midway: the old one
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
