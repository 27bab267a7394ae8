"""Pooling, batch norm and ReLU on (64, 64, 32, 32): the elementwise work around the convolutions.

Each cnnkit layer is compared with its torch twin (``cnnkit.interop.torch.to_torch``), forward and
forward+backward, float32. Layers not (yet) in cnnkit are reported as missing rather than skipped silently.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import compare

SHAPE = (64, 64, 32, 32)
LAYERS = {  # name -> cnnkit constructor call, evaluated lazily so a missing layer is reported, not fatal
    "MaxPool2d(2)": lambda ck: ck.MaxPool2d(2),
    "AvgPool2d(2)": lambda ck: ck.AvgPool2d(2),
    "BatchNorm2d(64)": lambda ck: ck.BatchNorm2d(64),
    "ReLU()": lambda ck: ck.ReLU(),
}


def _contenders(layer, x, backward: bool):
    import torch

    import cnnkit as ck
    from cnnkit.interop.torch import to_torch

    module = to_torch(layer).train()
    dy = np.random.default_rng(1).standard_normal(layer.output_shape(x.shape), dtype=np.float32)
    tdy = torch.from_numpy(dy)
    tx = torch.from_numpy(x.copy()).requires_grad_(backward)

    def torch_run():
        if backward:
            module(tx).backward(tdy)
        else:
            with torch.no_grad():
                module(tx)

    def cnnkit_run():
        if backward:
            layer(x)
            layer.backward(dy)
        else:
            with ck.no_grad():  # forward rows: inference on both sides, as torch.no_grad above
                layer(x)

    return {"torch": torch_run, "cnnkit": cnnkit_run}


def run(*, budget=1.5, progress=print):
    import cnnkit as ck

    x = np.random.default_rng(0).standard_normal(SHAPE, dtype=np.float32)
    rows = []
    for name, make in LAYERS.items():
        try:
            layer = make(ck)
        except AttributeError as error:
            rows.append(dict(case=name, step="-", missing=str(error)))
            progress(f"layer {name}: missing ({error})")
            continue
        for backward in (False, True):
            timing = compare(_contenders(layer, x, backward), budget=budget)
            row = dict(case=name, step="fwd+bwd" if backward else "fwd", seconds=timing.best,
                       ratio=timing.ratio())
            rows.append(row)
            progress(f"layer {name:<16} {row['step']:<8} torch {timing.best['torch'] * 1e3:8.2f} ms  "
                     f"cnnkit {timing.best['cnnkit'] * 1e3:8.2f} ms ({row['ratio']:.2f}x)")
    return rows
