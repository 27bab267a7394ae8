"""``cnnkit finetune SOURCE --data DATA``: adapt a pretrained network to a new dataset.

SOURCE is a cnnkit checkpoint (a ``.npz`` or a run directory) or PyTorch weights (``.pt``/``.pth`` read with
``weights_only=True``, or ``.safetensors``) together with ``--model`` naming the zoo architecture they fit
(torchvision's ImageNet weights for resnet18, vgg16, ...). The last layer is replaced when the new data has
a different number of classes; ``--freeze-until LAYER`` freezes that layer and everything before it; the
pretrained layers learn at ``--lr`` and the head at ``--lr`` times ``--head-lr-mult``. The run directory is
the same as ``cnnkit train``'s, so ``cnnkit evaluate``/``predict``/``export`` read it.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from cnnkit.cli.app import app, command_line
from cnnkit.cli.datasets import DATA_HELP, DOWNLOAD_HELP, ROOT_HELP, load_split
from cnnkit.cli.paths import check_output_dir

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def load_source(source: Path, model_name: str | None, input_shape):
    """(model, metadata) from a cnnkit checkpoint, or from torch weights loaded into a zoo model.

    For torch weights the number of classes is read from the weights' head, so torchvision's 1000-class
    files load as they are; the head is replaced afterwards.
    """
    import numpy as np

    from cnnkit import models
    from cnnkit.cli.onnx_source import is_onnx, load_onnx_checkpoint
    from cnnkit.interop.torch import load_torch_weights, read_state_dict
    from cnnkit.io import load_checkpoint
    from cnnkit.transfer import head_name

    if is_onnx(source):  # an ONNX file carries its architecture, like a checkpoint
        if model_name is not None:
            raise typer.BadParameter("an ONNX file carries its architecture; --model is only for torch "
                                     "weights.", param_hint="'--model'")
        ckpt = load_onnx_checkpoint(source, fallback_shape=input_shape)
        return ckpt.model, ckpt.extra["metadata"]
    if source.suffix not in TORCH_SUFFIXES:
        if model_name is not None:
            raise typer.BadParameter("a cnnkit checkpoint carries its architecture; --model is only for "
                                     "torch weights.", param_hint="'--model'")
        ckpt = load_checkpoint(source)
        return ckpt.model, ckpt.extra.get("metadata", {})
    if model_name is None:
        raise typer.BadParameter(f"{source.name} holds weights only; name the architecture they fit with "
                                 f"--model (one of {', '.join(models.names())}).", param_hint="'--model'")
    state = read_state_dict(source)
    probe = models.get(model_name, input_shape=tuple(input_shape), rng=np.random.default_rng(0))
    head = head_name(probe) + ".weight"
    classes = state[head].shape[0] if head in state else probe.get(head_name(probe)).weight.shape[0]
    model = models.get(model_name, num_classes=classes, input_shape=tuple(input_shape),
                       rng=np.random.default_rng(0))
    return load_torch_weights(model, state), {}


@app.command()
def finetune(
    source: Annotated[Path, typer.Argument(
        metavar="SOURCE",
        help="A cnnkit checkpoint or run directory, or torch weights (.pt, .pth, .safetensors) with "
             "--model.")],
    data: Annotated[str, typer.Option("--data", "-d", help=DATA_HELP)] = "embedded",
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="The zoo architecture that torch weights fit (resnet18, vgg16, ...).")] = None,
    freeze_until: Annotated[str | None, typer.Option(
        help="Freeze this layer (a dotted name like layer3 or features.10) and every layer before it.",
    )] = None,
    lr: Annotated[float, typer.Option(min=0.0, help="Learning rate of the pretrained layers.")] = 0.005,
    head_lr_mult: Annotated[float, typer.Option(
        min=0.0, help="The new head learns this many times faster than the pretrained layers.")] = 10.0,
    epochs: Annotated[int, typer.Option(min=1)] = 3,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1)] = 32,
    seed: Annotated[int, typer.Option(help="Seeds the new head, the shuffling.")] = 0,
    out: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Run directory.", show_default="runs/<date-time>")] = None,
    limit: Annotated[int | None, typer.Option(
        min=1, help="Use only the first N training and N test images (quick runs).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final test accuracy.")] = False,
    root: Annotated[Path | None, typer.Option(metavar="DIR", help=ROOT_HELP)] = None,
    download: Annotated[bool, typer.Option("--download", help=DOWNLOAD_HELP)] = False,
    report: Annotated[bool, typer.Option(
        help="Write report.html into the run directory, as cnnkit train does; needs cnnkit[viz].")] = True,
):
    """Fine-tune a pretrained model on new data: new head, freezing, layer-wise lr."""
    import numpy as np

    from cnnkit.analysis import summary as summarize
    from cnnkit.data import DataLoader, Preprocessing, channel_stats
    from cnnkit.losses import SoftmaxCrossEntropy
    from cnnkit.optim import SGD, CosineAnnealing
    from cnnkit.train import evaluate, fit
    from cnnkit.transfer import freeze, head_name, param_groups, replace_head

    run = Path(out) if out is not None else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    check_output_dir(run)  # before any data is read
    train_set = load_split(data, "train", root, limit, download)
    test_set = load_split(data, "test", root, limit, download)
    input_shape, classes = train_set.image_shape, train_set.classes
    net, metadata = load_source(source, model, input_shape)
    recipe = getattr(net, "preprocessing", None)  # what the pretrained network was trained on, if known
    expected = recipe.input_shape if recipe is not None else None
    if expected and list(expected) != list(input_shape):
        raise ValueError(f"{data} images are {'x'.join(map(str, input_shape))} but {source} was trained on "
                         f"{'x'.join(map(str, expected))}.")
    head = head_name(net)
    old_classes = net.output_shape((1, *input_shape))[1]
    if old_classes != len(classes):
        replace_head(net, len(classes), rng=np.random.default_rng(seed))
    frozen = freeze(net, until=freeze_until) if freeze_until else []
    # The pretrained network expects inputs normalized as in its training; new data gets its own statistics.
    if recipe is not None and recipe.mean is not None:
        mean, std = np.asarray(recipe.mean, np.float32), np.asarray(recipe.std, np.float32)
    else:
        mean, std = channel_stats(train_set.images)
        std = np.maximum(std, 1e-3)
    train_loader = DataLoader(train_set, batch_size, shuffle=True, seed=seed, normalize=(mean, std))
    test_loader = DataLoader(test_set, 500, normalize=(mean, std))
    optimizer = SGD(param_groups(net, {head: head_lr_mult}), lr=lr, momentum=0.9, weight_decay=5e-4)
    scheduler = CosineAnnealing(optimizer, T_max=epochs * len(train_loader), interval="step")

    run.mkdir(parents=True, exist_ok=True)
    settings = {"source": str(source), "model": model, "data": data, "freeze_until": freeze_until, "lr": lr,
                "head_lr_mult": head_lr_mult, "epochs": epochs, "batch_size": batch_size, "seed": seed,
                "limit": limit, "root": str(root.resolve()) if root is not None else None}
    net.preprocessing = Preprocessing(input_shape, mean=mean, std=std, classes=classes)
    new_metadata = {"finetune": settings, "classes": classes, "input_shape": list(input_shape), "data": data,
                    "normalize": {"mean": mean.tolist(), "std": std.tolist()},
                    "preprocessing": net.preprocessing.to_dict(), "commands": [command_line()]}
    (run / "run.json").write_text(json.dumps(new_metadata, indent=2) + "\n")  # the same run folder as train's
    if not quiet:
        head_note = f"new head {head} ({old_classes} -> {len(classes)} classes)" \
            if old_classes != len(classes) else f"head {head} kept ({old_classes} classes)"
        typer.echo(f"cnnkit finetune: {source} on {data} ({len(train_set):,} train / {len(test_set):,} test "
                   f"images); {head_note}; {len(frozen)} parameters frozen"
                   f"{f' up to {freeze_until}' if freeze_until else ''}; lr {lr:g}, head x{head_lr_mult:g} "
                   f"-> {run}")
    began = time.perf_counter()
    history = fit(net, SoftmaxCrossEntropy(), optimizer, train_loader, epochs=epochs, scheduler=scheduler,
                  checkpoint=run / "checkpoint.npz", quiet=quiet, metadata=new_metadata)
    seconds = time.perf_counter() - began
    result = evaluate(net, test_loader, SoftmaxCrossEntropy())
    metrics = {"test_accuracy": result["accuracy"], "test_loss": result["loss"], "test_images": result["n"],
               "train_seconds": round(seconds, 1), "frozen_parameters": len(frozen)}
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    history.to_json(run / "history.json")
    history.to_csv(run / "history.csv")
    (run / "summary.txt").write_text(
        f"{summarize(net, input_shape)}\n\nsettings: {json.dumps(settings)}\ntest accuracy "
        f"{result['accuracy']:.4f}, test loss {result['loss']:.4f} on {result['n']} images; fine-tuning took "
        f"{seconds:.1f} s\n")
    typer.echo(f"test accuracy {result['accuracy']:.2%} (loss {result['loss']:.4f}) on {result['n']:,} "
               f"images after {epochs} epoch{'s' * (epochs != 1)} of fine-tuning, {seconds:.0f} s; "
               f"run saved in {run}")
    if report:
        try:
            from cnnkit.viz.report import write_report

            path = write_report(run, root=root)
        except ImportError as e:  # matplotlib is an extra: a missing one must not fail a finished run
            typer.echo(f"no report: {e}")
        else:
            if not quiet:
                typer.echo(f"report: {path}")
