"""Regenerate the pictures of docs/visualization.md and the example report (run from the repository root).

    cnnkit train --out runs/default          # the default run: LeNet-5 on the embedded MNIST subset
    python docs/example-report/make_pictures.py runs/default

Writes docs/example-report/{report.html, filters.png, activations.png, occlusion.png, saliency.png,
curves.png, confusion.png, shift.png}. The shift-consistency picture trains two more LeNet-5s (max pooling
and BlurPool2d), 3 epochs each, so the whole script takes a few minutes on two cores.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def lenet(pool: str, seed: int = 0):
    """LeNet-5 from the zoo, with its two max pools replaced by BlurPool2d when pool == "blur"."""
    import numpy as np

    from cnnkit import models
    from cnnkit.layers import BlurPool2d, Sequential

    net = models.get("lenet5", rng=np.random.default_rng(seed))
    if pool == "max":
        return net
    layers = dict(net.named_children())
    layers.update(pool1=BlurPool2d(6), pool2=BlurPool2d(16))
    return Sequential(layers)


def shift_experiment(out: Path, epochs: int = 3):
    from cnnkit.data import DataLoader, load
    from cnnkit.losses import SoftmaxCrossEntropy
    from cnnkit.optim import Adam
    from cnnkit.train import evaluate, fit
    from cnnkit.viz import consistency, shift_consistency

    train, test = load("embedded", "train"), load("embedded", "test")
    norm = ((0.1307,), (0.3081,))
    trained = {}
    for pool in ("max", "blur"):
        net = lenet(pool)
        fit(net, SoftmaxCrossEntropy(), Adam(net.parameters(), lr=2e-3),
            DataLoader(train, 32, shuffle=True, seed=0, normalize=norm), epochs=epochs, quiet=True)
        accuracy = evaluate(net, DataLoader(test, 500, normalize=norm))["accuracy"]
        name = f"{'MaxPool2d' if pool == 'max' else 'BlurPool2d'} LeNet-5, test accuracy {accuracy:.1%}"
        trained[name] = net
    x = next(iter(DataLoader(test[:500], 500, normalize=norm)))[0]
    maps = shift_consistency(trained, x, max_shift=4, save=out / "shift.png")
    for name, m in maps.items():
        print(f"{name}: predictions unchanged under 1-pixel shifts {consistency(m, within=1):.2%}, "
              f"2 px {consistency(m, within=2):.2%}, up to 4 px {consistency(m):.2%}")


def main(run_dir: Path, only_shift: bool = False):
    if only_shift:
        return shift_experiment(HERE)
    import numpy as np

    from cnnkit.viz import activations, confusion_matrix, filters, history, occlusion, saliency
    from cnnkit.viz._run import probabilities, scores
    from cnnkit.viz.report import load_test_data, read_run, write_report

    HERE.mkdir(exist_ok=True)
    report = write_report(run_dir)
    shutil.copyfile(report, HERE / "report.html")
    run = read_run(run_dir)
    model = run["model"]
    x, _, labels, classes = load_test_data(run)
    p = probabilities(scores(model, x))
    # A test image the model gets right but not with certainty: its probability moves when parts are hidden.
    hard = int(np.flatnonzero((p.argmax(1) == labels) & (p.max(1) > 0.6) & (p.max(1) < 0.95))[0])
    print(f"occlusion and saliency: test image {hard}, label {labels[hard]}, p = {p[hard].max():.3f}")
    filters(model.get("conv1"), save=HERE / "filters.png", title="conv1 of the default run (LeNet-5)")
    activations(model, x[0], "relu1", save=HERE / "activations.png")
    occlusion(model, x[hard], int(labels[hard]), patch=8, stride=1, save=HERE / "occlusion.png")
    saliency(model, x[hard], int(labels[hard]), save=HERE / "saliency.png")
    history(run["history"], save=HERE / "curves.png")
    confusion_matrix(labels, p.argmax(1), classes=classes, save=HERE / "confusion.png")
    shift_experiment(HERE)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/default"), only_shift="--shift" in sys.argv)
