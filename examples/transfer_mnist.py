"""Transfer learning on MNIST: pretrain on digits 0-4, then learn digits 5-9 from a few labelled images.

The experiment behind docs/transfer.md. A LeNet-5 (cnnkit's zoo) is trained on the 0-4 training images.
Then, for 10 and for 100 labelled training images per class of the digits 5-9, the new task is learned in
three ways and scored on all 5-9 test images:

    scratch         a new LeNet-5 trained on the few images only;
    codes:pool2     the pretrained network cut after its last pooling layer (400-d CNN codes, frozen) and a
                    linear softmax classifier trained on the codes;
    codes:relu4     the same, cut after the penultimate FC layer (84-d codes);
    fine-tune       the pretrained network with a new 5-class head, all layers trained, the pretrained ones
                    with a 10x smaller learning rate than the new head;
    fine-tune-fc    the same with the convolutional layers frozen (only the FC layers train).

Each setting is repeated over several random draws of the labelled images (seeds); the table gives the mean
and standard deviation of the test accuracy.

Usage:
    OMP_NUM_THREADS=1 python examples/transfer_mnist.py [--data ../shared/datasets/mnist] [--seeds 5]
        [--pretrain-epochs 3] [--out results.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

from cnnkit import models
from cnnkit.data import ArrayDataset, DataLoader, load
from cnnkit.losses import SoftmaxCrossEntropy
from cnnkit.optim import SGD
from cnnkit.train import evaluate, fit
from cnnkit.transfer import (
    LinearClassifier,
    extract_features,
    feature_extractor,
    freeze,
    head_name,
    param_groups,
    replace_head,
)

MNIST_NORMALIZE = ((0.1307,), (0.3081,))
SOURCE_DIGITS, TARGET_DIGITS = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
# Where the CNN codes are taken: LeNet-5's last pooling layer (16 x 5 x 5 = 400 numbers per image) and its
# penultimate FC layer after the ReLU (84 numbers).
CODE_LAYERS = ("pool2", "relu4")
METHODS = ("scratch", "codes:pool2", "codes:relu4", "fine-tune", "fine-tune-fc")
LABELS = {"scratch": "from scratch", "codes:pool2": "linear on frozen codes (last pool, 400-d)",
          "codes:relu4": "linear on frozen codes (penultimate FC, 84-d)",
          "fine-tune": "fine-tuning (pretrained layers at 0.1x lr)",
          "fine-tune-fc": "fine-tuning FC layers (conv frozen)"}


def digits(dataset: ArrayDataset, keep, limit: int | None = None, seed: int = 0) -> ArrayDataset:
    """The images of the digits ``keep``, relabelled 0..len(keep)-1; at most ``limit`` of them (random)."""
    rows = np.flatnonzero(np.isin(dataset.labels, keep))
    if limit is not None and limit < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))
    labels = np.searchsorted(np.asarray(keep), dataset.labels[rows])
    return ArrayDataset(dataset.images[rows], labels, [str(d) for d in keep], name=f"{dataset.name}{keep}")


def per_class(dataset: ArrayDataset, n: int, seed: int) -> ArrayDataset:
    """``n`` random images of every class (the few labelled examples of the new task)."""
    rng = np.random.default_rng(seed)
    rows = np.concatenate([rng.choice(np.flatnonzero(dataset.labels == k), n, replace=False)
                           for k in range(len(dataset.classes))])
    return dataset[np.sort(rows)]


def loader(dataset, batch_size=64, shuffle=False, seed=0):
    return DataLoader(dataset, batch_size, shuffle=shuffle, seed=seed, normalize=MNIST_NORMALIZE)


def train(model, dataset, *, lr, steps, seed, groups=None, batch_size=32):
    """SGD with momentum for about ``steps`` updates (whole epochs), quietly; returns the model."""
    batch_size = min(batch_size, len(dataset))
    batches = loader(dataset, batch_size, shuffle=True, seed=seed)
    epochs = max(1, round(steps / len(batches)))
    optimizer = SGD(groups if groups is not None else model, lr=lr, momentum=0.9, weight_decay=5e-4)
    fit(model, SoftmaxCrossEntropy(), optimizer, batches, epochs=epochs, quiet=True)
    return model


def pretrain(source: ArrayDataset, *, epochs: int, seed: int = 0):
    """LeNet-5 trained on the source digits (0-4)."""
    model = models.get("lenet5", num_classes=len(source.classes), rng=np.random.default_rng(seed))
    optimizer = SGD(model, lr=0.05, momentum=0.9, weight_decay=5e-4)
    fit(model, SoftmaxCrossEntropy(), optimizer, loader(source, 64, shuffle=True, seed=seed), epochs=epochs,
        quiet=True)
    return model


def codes_of(model, layer, dataset):
    """(codes, labels) of every image of ``dataset``: the pretrained network's output at ``layer``."""
    return extract_features(feature_extractor(model, layer), loader(dataset, 500), progress=False)


def run_methods(pretrained, labelled: ArrayDataset, test: ArrayDataset, *, seed: int, steps: int = 300,
                methods=METHODS, test_codes=None) -> dict[str, float]:
    """Test accuracy of each method on the new task, trained on ``labelled``.

    ``test_codes`` may hold the test set's codes per layer (they do not depend on the labelled images).
    """
    results, test_codes = {}, dict(test_codes or {})
    classes = len(labelled.classes)
    for method in methods:
        rng = np.random.default_rng(seed)
        if method.startswith("codes:"):
            layer = method.split(":")[1]
            codes, labels = codes_of(pretrained, layer, labelled)
            if layer not in test_codes:
                test_codes[layer] = codes_of(pretrained, layer, test)
            classifier = LinearClassifier(codes.shape[1], classes, rng=rng)
            classifier.fit(codes, labels, epochs=200, lr=0.05, weight_decay=1e-3)
            results[method] = classifier.accuracy(*test_codes[layer])
            continue
        if method == "scratch":
            model, groups = models.get("lenet5", num_classes=classes, rng=rng), None
        else:
            model = replace_head(copy.deepcopy(pretrained), classes, rng=rng)
            if method == "fine-tune-fc":
                freeze(model, until="pool2")
            backbone = 0.1 if method == "fine-tune" else 1.0  # pretrained layers learn 10x slower
            groups = param_groups(model, {head_name(model): 1.0}, default=backbone)
        train(model, labelled, lr=0.05, steps=steps, seed=seed, groups=groups)
        results[method] = evaluate(model, loader(test, 500))["accuracy"]
    return results


def experiment(data_root, *, seeds: int = 5, pretrain_epochs: int = 3, sizes=(10, 100), log=print) -> dict:
    train_set, test_set = load("mnist", "train", root=data_root), load("mnist", "test", root=data_root)
    source, source_test = digits(train_set, SOURCE_DIGITS), digits(test_set, SOURCE_DIGITS)
    target, target_test = digits(train_set, TARGET_DIGITS), digits(test_set, TARGET_DIGITS)
    began = time.perf_counter()
    pretrained = pretrain(source, epochs=pretrain_epochs)
    source_accuracy = evaluate(pretrained, loader(source_test, 500))["accuracy"]
    log(f"pretrained LeNet-5 on digits 0-4 ({len(source)} images, {pretrain_epochs} epochs, "
        f"{time.perf_counter() - began:.0f}s): test accuracy {source_accuracy:.2%} on {len(source_test)} "
        f"images")
    test_codes = {layer: codes_of(pretrained, layer, target_test) for layer in CODE_LAYERS}
    runs = {n: [] for n in sizes}
    for n in sizes:
        for seed in range(seeds):
            labelled = per_class(target, n, seed=seed)
            result = run_methods(pretrained, labelled, target_test, seed=seed, test_codes=test_codes)
            runs[n].append(result)
            log(f"  {n:>3} per class, seed {seed}: " + "  ".join(f"{k} {v:.2%}" for k, v in result.items()))
    summary = {str(n): {m: {"mean": float(np.mean([r[m] for r in rs])),
                            "std": float(np.std([r[m] for r in rs])), "runs": [r[m] for r in rs]}
                        for m in rs[0]} for n, rs in runs.items()}
    return {"source_test_accuracy": source_accuracy, "source_images": len(source),
            "target_test_images": len(target_test), "pretrain_epochs": pretrain_epochs, "seeds": seeds,
            "results": summary, "seconds": time.perf_counter() - began}


def markdown_table(report: dict) -> str:
    """Methods as rows, labelled-set sizes as columns: mean ± std test accuracy over the seeds."""
    sizes = list(report["results"])
    lines = ["| method | " + " | ".join(f"{n} labelled images per class" for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for method in METHODS:
        cells = [report["results"][n][method] for n in sizes]
        lines.append(f"| {LABELS[method]} | " + " | ".join(f"{c['mean']:.1%} ± {c['std']:.1%}" for c in cells)
                     + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/datasets/mnist"),
                        help="folder with the MNIST IDX files")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    report = experiment(args.data, seeds=args.seeds, pretrain_epochs=args.pretrain_epochs)
    print()
    print(markdown_table(report))
    print(f"\n{report['seconds']:.0f}s in all")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
