"""The second convolution suite (issue 16): 12 layer shapes from the zoo's own models, at batch 8 and 32.

The first suite (conv_suite.py) holds the shapes the dispatch rules were tuned on; these were fixed here
before any tuning for issue 16, so that they say how the rules -- and the measured dispatch -- do on shapes
nobody fitted them to. Each layer is the zoo model's own (torchvision's architecture at 224 x 224), named
by its dotted path.

    python -m benchmarks.zoo_suite                      # both batches, 2 threads, ~10 min on 2 cores
    python -m benchmarks.zoo_suite --quick --batches 8  # a smoke run: one timed call each, no settling

Contenders per row: PyTorch, cnnkit with the rules (``auto``), and cnnkit with
``runtime.configure(dispatch="measure")`` (its first call measures; the timed calls use the choice).
Forward rows run both libraries without gradients (``torch.no_grad()``, ``cnnkit.no_grad()``). Before
timing, every cnnkit output is checked against PyTorch's: a wrong result stops the run with the row's name.
The header prints the CPU, its SIMD flags and NumPy's BLAS kernel, which the ratios depend on.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np

from benchmarks import harness
from benchmarks.conv_suite import ConvCase

# (model, layer, C, H=W, K, F, S, P, groups): the layer's input at the model's 224 x 224 input.
LAYERS = [
    ("resnet18", "layer2.0.conv1", 64, 56, 128, 3, 2, 1, 1),           # stride-2 3x3
    ("resnet18", "layer3.0.downsample.0", 128, 28, 256, 1, 2, 0, 1),   # strided 1x1 projection
    ("resnet18", "layer4.0.conv2", 512, 7, 512, 3, 1, 1, 1),           # 3x3 on a 7x7 map, 512 channels
    ("resnet50", "layer1.0.conv3", 64, 56, 256, 1, 1, 0, 1),           # 1x1 expansion
    ("resnet50", "layer3.1.conv1", 1024, 14, 256, 1, 1, 0, 1),         # 1x1 reduction
    ("mobilenet_v2", "features.0.0", 3, 224, 32, 3, 2, 1, 1),          # stem: 3 channels, stride 2
    ("mobilenet_v2", "features.3.conv.1.0", 144, 56, 144, 3, 1, 1, 144),   # depthwise
    ("mobilenet_v2", "features.4.conv.1.0", 144, 56, 144, 3, 2, 1, 144),   # depthwise, stride 2
    ("mobilenet_v2", "features.15.conv.1.0", 960, 7, 960, 3, 1, 1, 960),   # depthwise on a 7x7 map
    ("googlenet", "inception3a.branch3.1.conv", 16, 28, 32, 3, 1, 1, 1),  # 3x3 with 16 channels
    ("googlenet", "inception4a.branch2.1.conv", 96, 14, 208, 3, 1, 1, 1),
    ("vgg16", "features.5", 64, 112, 128, 3, 1, 1, 1),
]
BATCHES = (8, 32)


def cases(batches=BATCHES) -> list[tuple[str, ConvCase]]:
    """(``model:layer``, case) for every layer at every batch size."""
    return [(f"{model}:{layer}", ConvCase(N, C, H, K, F, S, P, groups))
            for N in batches for model, layer, C, H, K, F, S, P, groups in LAYERS]


def _contenders(case: ConvCase, backward: bool):
    import torch
    import torch.nn.functional as tF

    import cnnkit as ck
    from cnnkit import runtime

    rng = np.random.default_rng(0)
    x = rng.standard_normal((case.N, case.C, case.H, case.H), dtype=np.float32)
    layer = ck.Conv2d(case.C, case.K, case.F, case.S, case.P, groups=case.groups, fit="crop", rng=rng)
    dy = rng.standard_normal(layer.output_shape(x.shape), dtype=np.float32)
    tx = torch.from_numpy(x).requires_grad_(backward)
    tw = torch.from_numpy(layer.weight.data.copy()).requires_grad_(backward)
    tb = torch.from_numpy(layer.bias.data.copy()).requires_grad_(backward)
    tdy = torch.from_numpy(dy)

    def torch_forward():
        return tF.conv2d(tx, tw, tb, case.S, case.P, 1, case.groups)

    def torch_run():
        if backward:
            torch_forward().backward(tdy)
        else:
            with torch.no_grad():
                torch_forward()

    def cnnkit_run(policy):
        def run():
            with runtime.configured(dispatch=policy):
                if backward:
                    layer.forward(x)
                    layer.backward(dy)
                else:
                    with ck.no_grad():
                        return layer.forward(x)
        return run

    with torch.no_grad():
        expected = torch_forward().numpy()
    contenders = {"torch": torch_run, "auto": cnnkit_run("rules"), "measure": cnnkit_run("measure")}
    return contenders, (lambda policy: _output(layer, x, policy)), expected


def _output(layer, x, policy):
    import cnnkit as ck
    from cnnkit import runtime

    with runtime.configured(dispatch=policy), ck.no_grad():
        return layer.forward(x)


def check(label: str, outputs, expected) -> None:
    """Fail loudly on a wrong result: each policy's output against PyTorch's, float32 tolerance."""
    scale = float(np.abs(expected).max()) or 1.0
    for policy in ("rules", "measure"):
        y = outputs(policy)
        if y.shape != expected.shape or not np.allclose(y, expected, rtol=1e-3, atol=1e-4 * scale):
            error = np.abs(y - expected).max() if y.shape == expected.shape else f"shape {y.shape}"
            raise AssertionError(f"zoo suite {label} (dispatch={policy!r}): wrong result, max error {error} "
                                 f"against PyTorch's output of scale {scale:.3g}.")


def run(chosen, *, budget=1.5, quick=False, progress=print) -> list[dict]:
    """Rows of {layer, case, pass, seconds, ratio}; ratio = cnnkit's best time / PyTorch's."""
    rows = []
    runs = {"min_runs": 1, "max_runs": 1} if quick else {}
    for label, case in chosen:
        for backward in (False, True):
            contenders, outputs, expected = _contenders(case, backward)
            if not backward:
                check(label, outputs, expected)
            timing = harness.compare(contenders, budget=budget, **runs)
            row = dict(layer=label, case=case.label, step="fwd+bwd" if backward else "fwd",
                       seconds=timing.best, ratio={k: timing.ratio(k) for k in ("auto", "measure")})
            rows.append(row)
            ms = {k: f"{v * 1e3:8.2f} ms" for k, v in timing.best.items()}
            progress(f"{label:<38} {row['case']:<28} {row['step']:<8} torch {ms['torch']}"
                     + "".join(f"  {k} {ms[k]} ({row['ratio'][k]:.2f}x)" for k in ("auto", "measure")))
    return rows


def medians(rows) -> dict[tuple[str, str], float]:
    """(pass, contender) -> the median ratio over the rows."""
    steps = [step for step in ("fwd", "fwd+bwd") if any(r["step"] == step for r in rows)]
    return {(step, k): statistics.median(r["ratio"][k] for r in rows if r["step"] == step)
            for step in steps for k in ("auto", "measure")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.zoo_suite",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument("--layers", nargs="+", metavar="TEXT",
                        help="only the layers whose model:layer contains one of these")
    parser.add_argument("--threads", type=int, default=2, help="for NumPy's BLAS, cnnkit and PyTorch")
    parser.add_argument("--budget", type=float, default=1.5, help="seconds of repeated runs per row")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: one timed call per contender, no settling (not a measurement)")
    args = parser.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    from cnnkit.fast import measure
    from cnnkit.runtime import set_elementwise_threads

    chosen = [(label, case) for label, case in cases(args.batches)
              if not args.layers or any(text in label for text in args.layers)]
    if args.quick:
        harness.SETTLE, harness.CALLS = 0.0, 1
    info = harness.machine()
    host = measure.machine()
    info.update({"SIMD flags": host["flags"], "dispatch cache": measure.cache_path()})
    for key, value in info.items():
        print(f"{key:>28}: {value}")
    torch.set_num_threads(args.threads)
    set_elementwise_threads(args.threads)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        rows = run(chosen, budget=args.budget, quick=args.quick)
    quick = "  [--quick: a smoke run, not a measurement]" if args.quick else ""
    print(f"median ratios over {len(chosen)} shapes (cnnkit / PyTorch):{quick}")
    for (step, k), value in medians(rows).items():
        print(f"  {step:<8} {k:<8} {value:.2f}")
    print(f"  on {host['cpu']}, BLAS {host['blas']}, {args.threads} thread(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
