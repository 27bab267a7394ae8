"""What measured dispatch costs: one epoch of ``cnnkit train --dispatch measure`` on a cold cache.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.dispatch_cost
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.dispatch_cost --models '3x3 net'

Every run is a new ``cnnkit train`` process with an empty cache folder (``CNNKIT_CACHE_DIR``), so every
convolution with more than one eligible kernel is timed at its first call, as on a machine that never ran
cnnkit. The process adds up the seconds spent inside :func:`cnnkit.fast.measure.fastest` (the timing runs:
all of it is extra work) and prints them beside the epoch's training time; a ``--dispatch rules`` run of
the same command follows each, so that the two epochs can be compared too. Issue 16's target: the
measurement under 2% of the epoch. No PyTorch here: this times cnnkit against itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "datasets"  # the four IDX files in mnist/ (not in the repository)
MODELS = {  # label -> --model: the default command's network (5x5: nothing to time), and one of 3x3 layers
    "lenet5": "lenet5",
    "3x3 net": "INPUT -> [CONV-32 -> RELU -> CONV-32 -> RELU -> POOL]*2 -> FC",
    "3x3 bn net": "INPUT -> [CONV-32 -> BN -> RELU -> CONV-64 -> BN -> RELU -> POOL]*2 -> FC",
}


def child(arguments: list[str]) -> None:
    """Run ``cnnkit train ARGUMENTS`` in this process, summing the time measure.fastest takes; print it."""
    from cnnkit.cli import main
    from cnnkit.fast import measure

    spent = []
    timed = measure.fastest

    def fastest(*args, **kwargs):
        began = time.perf_counter()
        try:
            return timed(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - began)

    measure.fastest = fastest
    try:
        main(arguments)
    except SystemExit as e:
        if e.code:
            raise
    print(json.dumps({"measuring": sum(spent), "timings": len(spent)}))


def one_run(model: str, dispatch: str, data: str, limit: int | None) -> dict:
    """``cnnkit train`` for one epoch in a new process with an empty cache: training seconds, measuring."""
    with tempfile.TemporaryDirectory(prefix="cnnkit-dispatch-cost-") as folder:
        command = [sys.executable, "-m", "benchmarks.dispatch_cost", "--child", "--", "train", "--model",
                   model, "--data", data, "--epochs", "1", "--dispatch", dispatch, "--no-report", "--quiet",
                   "--out", str(Path(folder) / "run")]
        if data == "mnist":
            command += ["--root", str(MNIST)]
        if limit:
            command += ["--limit", str(limit)]
        paths = [str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "CNNKIT_CACHE_DIR": str(Path(folder) / "cache"),
               "PYTHONPATH": os.pathsep.join(paths)}
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        if done.returncode:
            raise SystemExit(f"cnnkit train failed ({done.returncode}):\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        metrics = json.loads((Path(folder) / "run" / "metrics.json").read_text())
        return {**result, "train": metrics["train_seconds"], "accuracy": metrics["test_accuracy"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dispatch_cost",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), help=f"of {list(MODELS)}")
    parser.add_argument("--data", default="mnist", help="mnist (the full 60,000; default) or embedded")
    parser.add_argument("--limit", type=int, help="the first N training and test images only")
    parser.add_argument("--repeats", type=int, default=2, help="measure/rules pairs per model")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.child:
        child([a for a in rest if a != "--"])
        return 0
    from benchmarks.harness import machine

    for key, value in machine().items():
        print(f"{key:>28}: {value}")
    print(f"\none epoch of `cnnkit train --data {args.data}` per run, a cold dispatch cache each time\n")
    print(f"{'model':>10}  {'dispatch':>8}  {'epoch s':>8}  {'timings':>7}  {'measuring s':>11}  "
          f"{'of the epoch':>12}  {'test acc':>8}")
    for label in args.models:
        for _ in range(args.repeats):
            for dispatch in ("measure", "rules"):
                r = one_run(MODELS.get(label, label), dispatch, args.data, args.limit)
                share = f"{r['measuring'] / r['train']:.2%}" if dispatch == "measure" else "-"
                print(f"{label:>10}  {dispatch:>8}  {r['train']:8.2f}  {r['timings']:7d}  "
                      f"{r['measuring']:11.3f}  {share:>12}  {r['accuracy']:8.2%}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
