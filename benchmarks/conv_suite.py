"""The convolution layer suite of issue 7: cnnkit's Conv2d against torch.nn.functional.conv2d.

Each case is timed forward and forward+backward (dx, dweight, dbias), float32; forward rows run without
gradients on both sides (``torch.no_grad()``, ``cnnkit.no_grad()``), as in the zoo and layer suites.
cnnkit runs with the default dispatch (``algorithm="auto"``), with the im2col kernel forced, and -- the
"before" column -- with the engine's original kernel (benchmarks.baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks import baseline as baseline_kernels
from benchmarks.harness import compare


@dataclass(frozen=True)
class ConvCase:
    N: int
    C: int
    H: int
    K: int
    F: int
    S: int
    P: int
    groups: int = 1
    channels_last: bool = False  # both libraries given channels-last memory (x, dy; PyTorch's weight too)

    @property
    def label(self) -> str:
        g = f", g={self.groups}" if self.groups > 1 else ""
        return f"({self.N},{self.C},{self.H},{self.K},{self.F},{self.S},{self.P}{g})" + \
            (" channels-last" if self.channels_last else "")

    @property
    def out(self) -> int:
        return (self.H + 2 * self.P - self.F) // self.S + 1

    @property
    def flops(self) -> int:
        """Forward multiply-adds x 2; backward costs twice that (dx and dweight)."""
        return 2 * self.N * self.K * self.out**2 * (self.C // self.groups) * self.F**2


SUITE = [
    ConvCase(64, 3, 32, 32, 5, 1, 2), ConvCase(64, 32, 32, 32, 3, 1, 1), ConvCase(64, 64, 32, 64, 3, 1, 1),
    ConvCase(32, 128, 16, 128, 3, 1, 1), ConvCase(32, 256, 8, 256, 3, 1, 1), ConvCase(8, 64, 56, 64, 3, 1, 1),
    ConvCase(8, 256, 14, 256, 3, 1, 1), ConvCase(8, 3, 224, 64, 7, 2, 3), ConvCase(8, 256, 14, 512, 1, 1, 0),
    ConvCase(8, 64, 56, 64, 3, 1, 1, groups=64), ConvCase(64, 1, 28, 6, 5, 1, 0),
]
# Issue 7, item 3: the same layers with activations in channels-last memory on both sides (PyTorch's
# memory_format=torch.channels_last, cnnkit.functional.layout.channels_last). Not in the suite's medians.
CHANNELS_LAST = [ConvCase(8, 256, 14, 512, 1, 1, 0, channels_last=True),
                 ConvCase(8, 256, 14, 256, 3, 1, 1, channels_last=True)]


def _contenders(case: ConvCase, backward: bool, algorithms, baseline):
    import torch
    import torch.nn.functional as tF

    import cnnkit as ck
    from cnnkit.functional.layout import channels_last

    rng = np.random.default_rng(0)
    x = rng.standard_normal((case.N, case.C, case.H, case.H), dtype=np.float32)
    layers = {alg: ck.Conv2d(case.C, case.K, case.F, case.S, case.P, groups=case.groups, fit="crop", rng=rng,
                             algorithm=alg) for alg in algorithms}  # fit="crop": PyTorch's rounding
    first = next(iter(layers.values()))
    for layer in layers.values():  # same weights everywhere
        layer.weight.data[...] = first.weight.data
        layer.bias.data[...] = first.bias.data
    dy = rng.standard_normal(first.output_shape(x.shape), dtype=np.float32)
    tx = torch.from_numpy(x).requires_grad_(backward)
    tw = torch.from_numpy(first.weight.data.copy()).requires_grad_(backward)
    tb = torch.from_numpy(first.bias.data.copy()).requires_grad_(backward)
    tdy = torch.from_numpy(dy)
    if case.channels_last:
        x, dy = channels_last(x), channels_last(dy)
        cl = torch.channels_last
        tx = tx.detach().to(memory_format=cl).requires_grad_(backward)
        tw = tw.detach().to(memory_format=cl).requires_grad_(backward)
        tdy = tdy.to(memory_format=cl)

    def torch_run():
        if backward:
            tF.conv2d(tx, tw, tb, case.S, case.P, 1, case.groups).backward(tdy)
        else:
            with torch.no_grad():
                tF.conv2d(tx, tw, tb, case.S, case.P, 1, case.groups)

    def cnnkit_run(layer):
        def run():
            if backward:
                layer(x)
                layer.backward(dy)
            else:
                with ck.no_grad():  # forward rows: inference on both sides, as torch.no_grad above
                    layer(x)
        return run

    contenders = {"torch": torch_run}
    contenders.update({alg: cnnkit_run(layer) for alg, layer in layers.items()})
    if baseline is not None:
        contenders["before"] = baseline_kernels.wrap(baseline, cnnkit_run(first))
    return contenders


def run(cases=SUITE, algorithms=("auto", "im2col"), *, baseline=None, budget=1.5, progress=print):
    """Rows of {case, pass, seconds per contender, ratio, GFLOP/s}; ``auto`` is cnnkit's default, ``before``
    the engine's original kernel when ``baseline`` (a module from benchmarks.baseline.load) is given."""
    rows = []
    names = (*algorithms, "before") if baseline is not None else algorithms
    for case in cases:
        for backward in (False, True):
            timing = compare(_contenders(case, backward, algorithms, baseline), budget=budget)
            flops = case.flops * (3 if backward else 1)
            row = dict(case=case.label, step="fwd+bwd" if backward else "fwd", seconds=timing.best,
                       gflops={k: flops / v / 1e9 for k, v in timing.best.items()},
                       ratio={alg: timing.ratio(alg) for alg in names})
            rows.append(row)
            progress(f"conv {row['case']:<28} {row['step']:<8} torch {timing.best['torch'] * 1e3:8.2f} ms  "
                     + "  ".join(f"{alg} {timing.best[alg] * 1e3:8.2f} ms ({row['ratio'][alg]:.2f}x)"
                                 for alg in names))
    return rows
