"""The non-convolution kernels (pooling, blur, batch norm, activations, linear) against PyTorch.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.elementwise            # all cases
    python -m benchmarks.elementwise --threads 2 --cases max relu --budget 3

Each case runs the cnnkit layer and the same PyTorch computation on the same float32 input, interleaved,
keeping the minimum (``benchmarks.harness.compare``); forward alone and forward+backward. The ratio is
cnnkit / PyTorch time (below 1 is faster). ``--threads`` sets PyTorch's intra-op threads, the BLAS pool and
cnnkit's elementwise threads alike.
"""

from __future__ import annotations

import argparse
import functools

import numpy as np

from benchmarks.harness import CLOCKS, compare, machine, slow_blas_warning, use_clock

SHAPES = {"A": (64, 64, 32, 32), "B": (32, 64, 56, 56)}


def _cases():
    """name -> (cnnkit layer factory(C), torch function factory(C), the input shapes it runs on)."""
    import torch
    import torch.nn.functional as tF

    import cnnkit as ck
    from cnnkit.functional.pool import binomial_filter

    def blur_pool(C):
        kernel = torch.from_numpy(binomial_filter(3).astype(np.float32)).expand(C, 1, 3, 3).contiguous()
        return lambda t: tF.conv2d(tF.pad(tF.max_pool2d(t, 2, 1), (1, 1, 1, 1)), kernel, stride=2, groups=C)

    def batch_norm(C):
        weight, bias = torch.ones(C, requires_grad=True), torch.zeros(C, requires_grad=True)
        running_mean, running_var = torch.zeros(C), torch.ones(C)
        return lambda t: tF.batch_norm(t, running_mean, running_var, weight, bias, training=True)

    def linear(n_in, n_out):
        weight = torch.randn(n_out, n_in, requires_grad=True)
        bias = torch.zeros(n_out, requires_grad=True)
        return lambda t: tF.linear(t, weight, bias)

    return {
        "max 2x2/2": (lambda C: ck.MaxPool2d(2), lambda C: lambda t: tF.max_pool2d(t, 2), "AB"),
        "max 3x3/2 p1": (lambda C: ck.MaxPool2d(3, 2, padding=1, fit="crop"),
                         lambda C: lambda t: tF.max_pool2d(t, 3, 2, 1), "AB"),
        "avg 2x2/2": (lambda C: ck.AvgPool2d(2), lambda C: lambda t: tF.avg_pool2d(t, 2), "AB"),
        "blurpool": (lambda C: ck.BlurPool2d(C), blur_pool, "AB"),
        "global avg": (lambda C: ck.GlobalAvgPool2d(), lambda C: lambda t: tF.adaptive_avg_pool2d(t, 1), "A"),
        "batchnorm": (lambda C: ck.BatchNorm2d(C), batch_norm, "AB"),
        "relu": (lambda C: ck.ReLU(), lambda C: tF.relu, "AB"),
        "leaky relu": (lambda C: ck.LeakyReLU(0.1), lambda C: lambda t: tF.leaky_relu(t, 0.1), "A"),
        "linear 1024": (lambda C: ck.Linear(1024, 1024), lambda C: linear(1024, 1024), "L"),
        "dropout": (lambda C: ck.Dropout(0.5, rng=np.random.default_rng(0)),
                    lambda C: lambda t: tF.dropout(t, 0.5, training=True), "A"),
    }


def _torch_step(fn, tx, tdy, backward):
    import torch

    if not backward:
        with torch.no_grad():
            return fn(tx)
    tx.grad = None
    fn(tx).backward(tdy)


def _cnnkit_step(layer, x, dy, backward):
    layer(x)
    if backward:
        layer.backward(dy)
    layer._cache = None


def _contenders(layer, torch_fn, x, backward):
    import torch

    dy = np.random.default_rng(1).standard_normal(layer.output_shape(x.shape), dtype=np.float32)
    tx = torch.from_numpy(x.copy()).requires_grad_(backward)
    return {"torch": functools.partial(_torch_step, torch_fn, tx, torch.from_numpy(dy), backward),
            "cnnkit": functools.partial(_cnnkit_step, layer, x, dy, backward)}


def run(cases=None, shapes=("A", "B"), steps=("fwd", "fwd+bwd"), *, budget=1.5, progress=print):
    rng = np.random.default_rng(0)
    inputs = {key: rng.standard_normal(shape, dtype=np.float32) for key, shape in SHAPES.items()}
    inputs["L"] = rng.standard_normal((256, 1024), dtype=np.float32)
    rows = []
    for name, (make, make_torch, keys) in _cases().items():
        if cases and not any(c in name for c in cases):
            continue
        for key in keys:
            if key != "L" and key not in shapes:
                continue
            x = inputs[key]
            for step in steps:
                timing = compare(_contenders(make(x.shape[1]), make_torch(x.shape[1]), x, step != "fwd"),
                                 budget=budget, max_runs=50)
                row = dict(case=name, shape=x.shape, step=step, torch=timing.best["torch"],
                           cnnkit=timing.best["cnnkit"], ratio=timing.ratio())
                rows.append(row)
                progress(f"{name:<14} {str(x.shape):<18} {step:<8} torch {row['torch'] * 1e3:8.2f} ms  "
                         f"cnnkit {row['cnnkit'] * 1e3:8.2f} ms  ratio {row['ratio']:5.2f}")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.elementwise",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", help="substrings of case names (default: all)")
    parser.add_argument("--shapes", nargs="+", choices=tuple(SHAPES), default=list(SHAPES))
    parser.add_argument("--steps", nargs="+", choices=("fwd", "fwd+bwd"), default=["fwd", "fwd+bwd"])
    parser.add_argument("--threads", type=int, default=1, help="threads for PyTorch, BLAS and cnnkit")
    parser.add_argument("--budget", type=float, default=1.5, help="seconds of repeated runs per case")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="wall time, or this process's CPU time (steadier on a busy machine, 1 thread)")
    args = parser.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    try:
        from cnnkit.runtime import set_elementwise_threads
    except ImportError:  # a cnnkit from before the batch-chunked kernels
        set_elementwise_threads = None

    torch.set_num_threads(args.threads)
    if set_elementwise_threads is not None:
        set_elementwise_threads(args.threads)
    use_clock(args.clock)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        info = machine()
        info["cnnkit elementwise threads"] = args.threads if set_elementwise_threads else "1 (none threaded)"
        info["clock"] = args.clock
        for key, value in info.items():
            print(f"{key:>28}: {value}")
        warning = slow_blas_warning()
        if warning:
            print("WARNING:", warning)
        run(args.cases, args.shapes, args.steps, budget=args.budget)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
