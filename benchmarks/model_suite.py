"""Whole networks: training steps of LeNet-5 and the zoo's cifar_net (batch 64), ResNet-18 and ResNet-50
inference (224x224, batch 8; ResNet-50 also on channels-last images), in images per second against the
same network in PyTorch, and the peak memory of a training step next to the ``summary`` estimate.

A training step is forward, loss, backward and an SGD update (momentum 0.9), as ``cnnkit.train.fit`` does
it -- with the batch in slices where ``cnnkit train`` would cut it on more than one thread
(``cnnkit.train.parallel.plan``: for eligible models, no batch norm, no dropout, on threads from 20 M
multiply-adds per example, on processes below); the torch twin comes from ``cnnkit.interop.torch.to_torch``
with the same weights.
"""

from __future__ import annotations

import contextlib
import tracemalloc

import numpy as np

from benchmarks import baseline as baseline_kernels
from benchmarks.harness import compare

TRAINING = {"lenet5": (64, (1, 28, 28)), "cifar_net": (64, (3, 32, 32))}
INFERENCE = {"resnet18": (8, (3, 224, 224)), "resnet50": (8, (3, 224, 224))}
INFERENCE_CHANNELS_LAST = ("resnet50",)  # once more with channels-last images on both sides (issue 7, item 3)


def _batch(batch, shape, classes=10):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((batch, *shape), dtype=np.float32),
            rng.integers(0, classes, batch).astype(np.int64))


def _cnnkit_step(model, x, y, threads=1):
    from cnnkit.analysis import summary
    from cnnkit.losses import SoftmaxCrossEntropy
    from cnnkit.optim import SGD
    from cnnkit.train.parallel import Processes, Threads, plan

    loss, optimizer = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.01, momentum=0.9)
    parallel, _ = plan(model, summary(model, x.shape[1:]).total_macs, threads)  # as cnnkit train
    split = parallel.step(model, loss) if parallel is not None else None
    slices = parallel.count if isinstance(parallel, Threads) else 1
    processes = parallel.count if isinstance(parallel, Processes) else 1

    def step():
        model.zero_grad()
        if split is not None:
            split.forward(x, y)
            split.backward()
        else:
            loss.forward(model(x), y)
            model.backward_params(loss.backward())  # as fit: the images need no gradient
        optimizer.step()
    step.slices, step.processes, step.split = slices, processes, split
    return step


def _torch_step(module, x, y):
    import torch

    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    loss, optimizer = torch.nn.CrossEntropyLoss(), torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9)

    def step():
        optimizer.zero_grad()
        loss(module(tx), ty).backward()
        optimizer.step()
    return step


def _row(case, batch, timing, progress):
    per_second = {k: batch / v for k, v in timing.best.items()}
    row = dict(case=case, seconds=timing.best, images_per_second=per_second, ratio=timing.ratio(),
               ratio_before=timing.ratio("before") if "before" in timing.best else None)
    progress(f"model {case:<48} " + "  ".join(f"{k} {v:8.1f} img/s" for k, v in per_second.items())
             + f" (time ratio {row['ratio']:.2f}x)")
    return row


def training(*, baseline=None, budget=3.0, threads=1, progress=print):
    from cnnkit import models
    from cnnkit.interop.torch import to_torch

    rows = []
    for name, (batch, shape) in TRAINING.items():
        model = models.get(name, rng=np.random.default_rng(0))
        x, y = _batch(batch, shape)
        cnnkit_step = _cnnkit_step(model, x, y, threads)
        contenders = {"torch": _torch_step(to_torch(model), x, y), "cnnkit": cnnkit_step}
        if baseline is not None:
            twin = models.get(name, rng=np.random.default_rng(0))
            contenders["before"] = baseline_kernels.wrap(baseline, _cnnkit_step(twin, x, y))
        timing = compare(contenders, budget=budget)
        sliced = f", {cnnkit_step.slices} slices" if cnnkit_step.slices > 1 else \
            f", {cnnkit_step.processes} processes" if cnnkit_step.processes > 1 else ""
        rows.append(_row(f"{name} training step, batch {batch}, {shape}{sliced}", batch, timing, progress))
        if cnnkit_step.split is not None:
            cnnkit_step.split.close()
    return rows


def inference(*, baseline=None, budget=3.0, progress=print):
    import torch

    import cnnkit as ck
    from cnnkit import models
    from cnnkit.functional.layout import channels_last
    from cnnkit.interop.torch import to_torch

    rows = []
    runs = [(name, False) for name in INFERENCE] + [(name, True) for name in INFERENCE_CHANNELS_LAST]
    for name, last in runs:
        batch, shape = INFERENCE[name]
        model = models.get(name, rng=np.random.default_rng(0)).eval()
        module = to_torch(model).eval()
        x, _ = _batch(batch, shape)
        tx = torch.from_numpy(x)
        if last:
            x, tx = channels_last(x), tx.to(memory_format=torch.channels_last)
            module = module.to(memory_format=torch.channels_last)

        def torch_run(module=module, tx=tx):
            with torch.no_grad():
                module(tx)

        def cnnkit_run(model=model, x=x):
            with ck.no_grad():  # inference: no layer keeps a cache (torch.no_grad on the other side)
                model(x)

        fused = ck.fuse(model)  # batch norm folded into the convolutions (exact within float32)

        def fused_run(fused=fused, x=x):
            with ck.no_grad():
                fused(x)

        contenders = {"torch": torch_run, "cnnkit": cnnkit_run, "fused": fused_run}
        if baseline is not None and not last:
            contenders["before"] = baseline_kernels.wrap(baseline, cnnkit_run)
        timing = compare(contenders, min_runs=2, max_runs=5, budget=budget)
        memory = ", channels-last" if last else ""
        rows.append(_row(f"{name} inference, batch {batch}, {shape}{memory}", batch, timing, progress))
        rows[-1]["fused"] = timing.ratio("fused")
    return rows


def _peak_bytes(name, batch, shape, kernels=contextlib.nullcontext):
    from cnnkit import models
    from cnnkit.runtime import clear_workspaces

    clear_workspaces()
    with kernels():
        tracemalloc.start()
        try:
            model = models.get(name, rng=np.random.default_rng(0))
            x, y = _batch(batch, shape)
            step = _cnnkit_step(model, x, y)
            step()  # the first step creates the momentum buffers and the scratch workspaces
            tracemalloc.reset_peak()
            step()
            return model, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def memory(*, baseline=None, progress=print):
    """Peak bytes NumPy holds during one training step (tracemalloc sees every NumPy allocation), model,
    gradients, momentum, batch, caches and scratch buffers included, next to summary().memory_bytes."""
    from cnnkit.analysis.summary import summary

    rows = []
    for name, (batch, shape) in TRAINING.items():
        model, peak = _peak_bytes(name, batch, shape)
        estimate = summary(model, shape).memory_bytes(batch, training=True, optimizer="momentum")
        row = dict(case=f"{name}, batch {batch}", peak=peak, estimate=estimate, ratio=peak / estimate)
        if baseline is not None:
            old_kernels = lambda: baseline_kernels.kernels(baseline)  # noqa: E731
            row["peak_before"] = _peak_bytes(name, batch, shape, old_kernels)[1]
        rows.append(row)
        progress(f"memory {name:<12} peak {peak / 2**20:8.1f} MiB  summary estimate "
                 f"{estimate / 2**20:8.1f} MiB ({peak / estimate:.2f}x)"
                 + (f"; before {row['peak_before'] / 2**20:.1f} MiB" if baseline is not None else ""))
    return rows
