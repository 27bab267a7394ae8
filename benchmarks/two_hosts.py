"""Data-parallel throughput across two "hosts": network namespaces on this machine joined by a veth pair.

    sudo env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.two_hosts [--steps 60]

Runs the worker of ``benchmarks.distributed`` (each rank: 1 BLAS thread, its own batch of 64) under
mpiexec with a hostfile, in four placements: 1 rank; 2 ranks on one host (shared memory between them);
2 ranks on two hosts (TCP over the veth pair); 4 ranks, 2 per host. The namespaces share this machine's
cores, so this measures what the network path costs, not what a second machine would add. Needs root (the
namespaces are made as in tests/train/parallel/two_hosts.py, which this imports).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACEMENTS = [("1 rank", "node1:1\n", 1), ("2 ranks, one host", "node1:2\n", 2),
              ("2 ranks, two hosts", "node1:1\nnode2:1\n", 2),
              ("4 ranks, two hosts", "node1:2\nnode2:2\n", 4)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--models", default="lenet5,cifar_net")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "train" / "parallel"))
    import two_hosts

    reason = two_hosts.why_not()
    if reason:
        sys.exit(f"benchmarks.two_hosts: {reason}")
    two_hosts.remove_stale()
    print(f"cores: {os.cpu_count()} (shared by both hosts); load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; batch {args.batch} per rank; UCX over TCP on "
          f"{two_hosts.INTERFACE}")
    print(f"{'model':<10} {'placement':<20} {'images/s':>9} {'speed-up':>8} {'comm share':>10} "
          f"{'MB to node2':>11}")
    env = {"PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT)}  # the worker: -m benchmarks.distributed
    with tempfile.TemporaryDirectory() as directory:
        hosts = two_hosts.TwoHosts(Path(directory))
        try:
            for model in args.models.split(","):
                base = None
                for name, text, ranks in PLACEMENTS:
                    before = hosts.received("node2")
                    worker = [sys.executable, "-m", "benchmarks.distributed", "--worker", model,
                              "--steps", str(args.steps), "--batch", str(args.batch)]
                    command = hosts.mpiexec(hosts.hostfile(text), "-n", ranks, *worker)
                    done = two_hosts.run(command, env=env, timeout=900)
                    if done.returncode != 0:
                        raise SystemExit(done.stderr)
                    r = json.loads(done.stdout.strip().splitlines()[-1])
                    base = base or r["images_per_second"]
                    sent = (hosts.received("node2") - before) / 1e6
                    print(f"{model:<10} {name:<20} {r['images_per_second']:>9.0f} "
                          f"{r['images_per_second'] / base:>7.2f}x {100 * r['communication_share']:>9.1f}% "
                          f"{sent:>11.1f}", flush=True)
        finally:
            hosts.down()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
