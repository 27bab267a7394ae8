"""Whole networks: training steps of LeNet-5 and the zoo's cifar_net (batch 64), ResNet-18 inference
(224x224, batch 8), in images per second against the same network in PyTorch, and the peak memory of a
training step next to the ``summary`` estimate.

A training step is forward, loss, backward and an SGD update (momentum 0.9), as ``cnnkit.train.fit`` does
it; the torch twin comes from ``cnnkit.interop.torch.to_torch`` with the same weights.
"""

from __future__ import annotations

import tracemalloc

import numpy as np

from benchmarks.harness import compare

TRAINING = {"lenet5": (64, (1, 28, 28)), "cifar_net": (64, (3, 32, 32))}
INFERENCE = {"resnet18": (8, (3, 224, 224))}


def _batch(batch, shape, classes=10):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((batch, *shape), dtype=np.float32),
            rng.integers(0, classes, batch).astype(np.int64))


def _cnnkit_step(model, x, y):
    from cnnkit.losses import SoftmaxCrossEntropy
    from cnnkit.optim import SGD

    loss, optimizer = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        model.zero_grad()
        loss.forward(model(x), y)
        model.backward(loss.backward())
        optimizer.step()
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


def training(*, budget=3.0, progress=print):
    from cnnkit import models
    from cnnkit.interop.torch import to_torch

    rows = []
    for name, (batch, shape) in TRAINING.items():
        model = models.get(name, rng=np.random.default_rng(0))
        x, y = _batch(batch, shape)
        timing = compare({"torch": _torch_step(to_torch(model), x, y), "cnnkit": _cnnkit_step(model, x, y)},
                         budget=budget)
        row = dict(case=f"{name} training step, batch {batch}, {shape}", seconds=timing.best,
                   images_per_second={k: batch / v for k, v in timing.best.items()}, ratio=timing.ratio())
        rows.append(row)
        progress(f"model {row['case']:<48} torch {row['images_per_second']['torch']:8.0f} img/s  "
                 f"cnnkit {row['images_per_second']['cnnkit']:8.0f} img/s (time ratio {row['ratio']:.2f}x)")
    return rows


def inference(*, budget=3.0, progress=print):
    import torch

    from cnnkit import models
    from cnnkit.interop.torch import to_torch

    rows = []
    for name, (batch, shape) in INFERENCE.items():
        model = models.get(name, rng=np.random.default_rng(0)).eval()
        module = to_torch(model).eval()
        x, _ = _batch(batch, shape)
        tx = torch.from_numpy(x)

        def torch_run(module=module, tx=tx):
            with torch.no_grad():
                module(tx)

        def cnnkit_run(model=model, x=x):
            model(x)

        timing = compare({"torch": torch_run, "cnnkit": cnnkit_run}, min_runs=2, max_runs=5, budget=budget)
        row = dict(case=f"{name} inference, batch {batch}, {shape}", seconds=timing.best,
                   images_per_second={k: batch / v for k, v in timing.best.items()}, ratio=timing.ratio())
        rows.append(row)
        progress(f"model {row['case']:<48} torch {row['images_per_second']['torch']:8.1f} img/s  "
                 f"cnnkit {row['images_per_second']['cnnkit']:8.1f} img/s (time ratio {row['ratio']:.2f}x)")
    return rows


def memory(*, progress=print):
    """Peak bytes NumPy holds during one training step (tracemalloc sees every NumPy allocation), model,
    gradients, momentum, batch, caches and scratch buffers included, next to summary().memory_bytes."""
    from cnnkit import models
    from cnnkit.analysis.summary import summary

    rows = []
    for name, (batch, shape) in TRAINING.items():
        tracemalloc.start()
        try:
            model = models.get(name, rng=np.random.default_rng(0))
            x, y = _batch(batch, shape)
            step = _cnnkit_step(model, x, y)
            step()  # the first step creates the momentum buffers and the scratch workspaces
            tracemalloc.reset_peak()
            step()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        estimate = summary(model, shape).memory_bytes(batch, training=True, optimizer="momentum")
        rows.append(dict(case=f"{name}, batch {batch}", peak=peak, estimate=estimate, ratio=peak / estimate))
        progress(f"memory {name:<12} peak {peak / 2**20:8.1f} MiB  summary estimate "
                 f"{estimate / 2**20:8.1f} MiB ({peak / estimate:.2f}x)")
    return rows
