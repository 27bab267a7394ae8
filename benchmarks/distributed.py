"""Data-parallel throughput: images/second on 1 and 2 MPI ranks, and the share of a step spent communicating.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.distributed [--steps 60]

Each rank uses 1 BLAS thread (DataParallel caps threads so that ranks x threads <= cores) and a batch of 64
of its own, so 2 ranks process 128 images per step. LeNet-5 trains on real MNIST (the embedded subset);
cifar_net on random 3x32x32 images (no CIFAR files ship with the repository; throughput does not depend on
pixel values). Run as a driver, it starts ``mpiexec -n 1`` and ``mpiexec -n 2`` on itself and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def worker(model_name: str, steps: int, batch: int):
    from cnnkit import models
    from cnnkit.data import ArrayDataset, DataLoader, load
    from cnnkit.losses import SoftmaxCrossEntropy
    from cnnkit.optim import SGD
    from cnnkit.train.parallel.mpi import DataParallel

    dp = DataParallel(threads=1)
    if model_name == "lenet5":
        data = load("embedded")
    else:
        rng = np.random.default_rng(0)
        n = 4096
        data = ArrayDataset(rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n),
                            [str(i) for i in range(10)])
    model = models.get(model_name, rng=np.random.default_rng(0))
    dp.broadcast(model)
    loader = dp.shard(DataLoader(data, batch, shuffle=True, seed=0, drop_last=True))
    optimizer = dp.wrap(SGD(model, lr=0.01, momentum=0.9))
    loss = SoftmaxCrossEntropy()
    done, images, began = 0, 0, None
    while done < steps + 5:
        for x, y in loader:
            if done == 5:  # the first steps warm caches and allocators up; they are not timed
                dp.barrier()
                began, optimizer.communication_seconds, images = time.perf_counter(), 0.0, 0
            loss.forward(model.forward(x), y)
            optimizer.zero_grad()
            model.backward(loss.backward())
            optimizer.step()
            images += len(y)
            done += 1
            if done == steps + 5:
                break
    dp.barrier()
    elapsed = time.perf_counter() - began
    totals = dp.gather_metrics({"images": images, "comm": optimizer.communication_seconds})
    if dp.is_root:
        print(json.dumps({"model": model_name, "ranks": dp.size, "threads": dp.threads,
                          "images_per_second": totals["images"] / elapsed,
                          "communication_share": totals["comm"] / dp.size / elapsed}))


def blas_description() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return ", ".join(f"{i.get('internal_api')} {i.get('architecture')} ({i.get('num_threads')} threads)"
                     for i in threadpool_info() if i.get("user_api") == "blas")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.steps, args.batch)
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    if mpiexec is None:
        sys.exit('mpiexec not found: pip install "cnnkit[mpi]"')
    print(f"BLAS: {blas_description()}; cores: {os.cpu_count()}; batch {args.batch} per rank")
    print(f"{'model':<10} {'ranks':>5} {'threads/rank':>12} {'images/s':>9} {'speed-up':>8} "
          f"{'comm share':>10}")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for model in ("lenet5", "cifar_net"):
        base = None
        for ranks in (1, 2):
            cmd = [mpiexec, "-n", str(ranks), sys.executable, "-m", "benchmarks.distributed",
                   "--worker", model, "--steps", str(args.steps), "--batch", str(args.batch)]
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True,
                                 cwd=Path(__file__).resolve().parents[1])
            r = json.loads(out.stdout.strip().splitlines()[-1])
            base = base or r["images_per_second"]
            print(f"{model:<10} {ranks:>5} {r['threads']:>12} {r['images_per_second']:>9.0f} "
                  f"{r['images_per_second'] / base:>7.2f}x {100 * r['communication_share']:>9.1f}%")


if __name__ == "__main__":
    main()
