"""LeNet-5 training: images/second and full runs, cnnkit next to the same model in PyTorch on the same data.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.train_lenet              # images/second
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.train_lenet --train      # + full runs

Both libraries get the same weights (copied from cnnkit's initialization), the same batches (one
cnnkit.data.DataLoader feeds both) and the same recipe as ``cnnkit train``: Adam, peak lr 2e-3 with a
per-step cosine schedule, batch 32. The throughput numbers time whole training steps (forward, loss,
backward, optimizer step) on real MNIST batches after a few warm-up steps.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a file: make `benchmarks` and `cnnkit` importable from the repo root
    sys.path[:0] = [str(ROOT), str(ROOT / "src")]

import cnnkit as ck  # noqa: E402
from benchmarks.harness import machine  # noqa: E402
from cnnkit.data import DataLoader, channel_stats, load  # noqa: E402
from cnnkit.losses import SoftmaxCrossEntropy  # noqa: E402
from cnnkit.optim import Adam, CosineAnnealing  # noqa: E402
from cnnkit.train import evaluate, fit  # noqa: E402


def torch_lenet(net):
    """The same LeNet-5 in PyTorch, with the same parameter names, holding a copy of ``net``'s weights."""
    import torch
    from torch import nn

    model = nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(1, 6, 5, padding=2), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(6, 16, 5), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2), flatten=nn.Flatten(),
        fc1=nn.Linear(400, 120), relu3=nn.ReLU(), fc2=nn.Linear(120, 84), relu4=nn.ReLU(),
        fc3=nn.Linear(84, 10)))
    model.load_state_dict({k: torch.tensor(v) for k, v in net.state_dict().items()})
    return model


def cnnkit_stepper(net, lr):
    loss, opt = SoftmaxCrossEntropy(), Adam(net, lr=lr)

    def step(x, y):
        value = loss.forward(net.forward(x), y)
        opt.zero_grad()
        net.backward(loss.backward())
        opt.step()
        return value

    return step


def torch_stepper(model, lr):
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss = torch.nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        value = loss(model(torch.from_numpy(x)), torch.from_numpy(y))
        value.backward()
        opt.step()
        return float(value.detach())

    return step


def images_per_second(step, batches, warmup: int = 5) -> float:
    for x, y in batches[:warmup]:
        step(x, y)
    began = time.perf_counter()
    for x, y in batches[warmup:]:
        step(x, y)
    seconds = time.perf_counter() - began
    return sum(len(y) for _, y in batches[warmup:]) / seconds


def torch_fit(model, loader, epochs, lr):
    """PyTorch's loop with the recipe of ``cnnkit train`` (Adam, cosine per step over the whole run)."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(loader))
    loss = torch.nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        loader.epoch = epoch
        for x, y in loader:
            opt.zero_grad()
            loss(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
            opt.step()
            sched.step()


def torch_accuracy(model, loader) -> float:
    import torch

    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(torch.from_numpy(x)).argmax(1).numpy() == y).sum())
            total += len(y)
    return correct / total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_lenet",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist", help="mnist (needs --root) or embedded")
    parser.add_argument("--root", default=str(ROOT.parent / "shared/datasets/mnist"))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--steps", type=int, default=60, help="timed training steps per case")
    parser.add_argument("--threads", type=int, default=None, help="threads for both (default: all cores)")
    parser.add_argument("--train", action="store_true", help="also run full trainings and report accuracy")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args(argv)

    import os

    import torch
    from threadpoolctl import threadpool_limits

    threads = args.threads or os.cpu_count()
    torch.set_num_threads(threads)
    with threadpool_limits(limits=threads, user_api="blas"):
        for key, value in machine().items():
            print(f"{key:>28}: {value}")
        train_set = load(args.data, "train", args.root)
        test_set = load(args.data, "test", args.root)
        norm = channel_stats(train_set.images)
        print(f"\ndata: {args.data}, {len(train_set):,} train / {len(test_set):,} test; {threads} threads\n")
        print(f"{'batch':>5}  {'cnnkit img/s':>12}  {'torch img/s':>11}  {'torch / cnnkit':>14}")
        for batch_size in args.batch_sizes:
            loader = DataLoader(train_set, batch_size, shuffle=True, seed=0, normalize=norm, drop_last=True)
            batches = [b for b, _ in zip(loader, range(args.steps + 5), strict=False)]
            net = ck.models.get("lenet5", rng=np.random.default_rng(0))
            ours = images_per_second(cnnkit_stepper(net, args.lr), batches)
            theirs = images_per_second(torch_stepper(torch_lenet(net), args.lr), batches)
            print(f"{batch_size:>5}  {ours:>12.0f}  {theirs:>11.0f}  {theirs / ours:>13.1f}x", flush=True)

        if args.train:
            print(f"\nfull runs: {args.epochs} epochs, batch 32, Adam lr {args.lr:g}, cosine decay per step")
            test_loader = DataLoader(test_set, 500, normalize=norm)
            net = ck.models.get("lenet5", rng=np.random.default_rng(0))
            model = torch_lenet(net)
            loader = DataLoader(train_set, 32, shuffle=True, seed=0, normalize=norm)
            opt = Adam(net, lr=args.lr)
            sched = CosineAnnealing(opt, T_max=args.epochs * len(loader), interval="step")
            began = time.perf_counter()
            fit(net, SoftmaxCrossEntropy(), opt, loader, epochs=args.epochs, scheduler=sched, quiet=True)
            ours = time.perf_counter() - began
            accuracy = evaluate(net, test_loader)["accuracy"]
            images = args.epochs * len(train_set)
            print(f"cnnkit: {ours:7.1f} s ({images / ours:6.0f} img/s), test accuracy {accuracy:.2%}",
                  flush=True)
            loader = DataLoader(train_set, 32, shuffle=True, seed=0, normalize=norm)
            began = time.perf_counter()
            torch_fit(model, loader, args.epochs, args.lr)
            theirs = time.perf_counter() - began
            print(f"torch:  {theirs:7.1f} s ({images / theirs:6.0f} img/s), test accuracy "
                  f"{torch_accuracy(model, test_loader):.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
