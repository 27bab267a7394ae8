"""``cnnkit finetune SOURCE --data DATA``: adapt a pretrained network to a new dataset.

SOURCE is a cnnkit checkpoint (a ``.npz`` or a run directory) or PyTorch weights (``.pt``/``.pth`` read with
``weights_only=True``, or ``.safetensors``) together with ``--model`` naming the zoo architecture they fit
(torchvision's ImageNet weights for resnet18, vgg16, ...). The last layer is replaced when the new data has
a different number of classes; ``--freeze-until LAYER`` freezes that layer and everything before it; the
pretrained layers learn at ``--lr`` and the head at ``--lr`` times ``--head-lr-mult``. The run directory is
the same as ``cnnkit train``'s, so ``cnnkit evaluate``/``predict``/``export`` read it, and like a training
run it can be continued: Ctrl-C prints ``interrupted in epoch N; resume with: cnnkit finetune --resume RUN``.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from cnnkit.cli.app import UserError, app, command_line
from cnnkit.cli.datasets import DATA_HELP, DOWNLOAD_HELP, ROOT_HELP, load_split
from cnnkit.cli.paths import check_output_dir
from cnnkit.cli.runs import Where, finish_run, merge_settings, resume_hint, saved_settings

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
# What the options default to; with --resume, the run's own settings come first.
DEFAULTS = {"data": "embedded", "lr": 0.005, "head_lr_mult": 10.0, "epochs": 3, "batch_size": 32, "seed": 0}


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
    source: Annotated[Path | None, typer.Argument(
        metavar="SOURCE", show_default=False,
        help="A cnnkit checkpoint or run directory, or torch weights (.pt, .pth, .safetensors) with "
             "--model. Not with --resume.")] = None,
    data: Annotated[str | None, typer.Option("--data", "-d", show_default="embedded", help=DATA_HELP)] = None,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="The zoo architecture that torch weights fit (resnet18, vgg16, ...).")] = None,
    freeze_until: Annotated[str | None, typer.Option(
        help="Freeze this layer (a dotted name like layer3 or features.10) and every layer before it.",
    )] = None,
    lr: Annotated[float | None, typer.Option(
        min=0.0, show_default=str(DEFAULTS["lr"]), help="Learning rate of the pretrained layers.")] = None,
    head_lr_mult: Annotated[float | None, typer.Option(
        min=0.0, show_default=str(DEFAULTS["head_lr_mult"]),
        help="The new head learns this many times faster than the pretrained layers.")] = None,
    epochs: Annotated[int | None, typer.Option(
        min=1, show_default=str(DEFAULTS["epochs"]),
        help="Epochs in total (with --resume: including those already done).")] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", "-b", min=1, show_default=str(DEFAULTS["batch_size"]))] = None,
    seed: Annotated[int | None, typer.Option(
        show_default=str(DEFAULTS["seed"]), help="Seeds the new head, the shuffling.")] = None,
    out: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Run directory.", show_default="runs/<date-time>")] = None,
    resume: Annotated[Path | None, typer.Option(
        metavar="RUN", help="A fine-tuning run directory or checkpoint to continue where it stopped; its "
                            "settings become the defaults.")] = None,
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
    from cnnkit.data import DataLoader, Preprocessing
    from cnnkit.io import load_checkpoint, resolve_checkpoint_path, save
    from cnnkit.losses import SoftmaxCrossEntropy
    from cnnkit.optim import SGD, CosineAnnealing
    from cnnkit.train import evaluate, fit
    from cnnkit.train.parallel.elastic import ResumeRescale
    from cnnkit.transfer import head_name, param_groups

    given = {"data": data, "lr": lr, "head_lr_mult": head_lr_mult, "epochs": epochs, "batch_size": batch_size,
             "seed": seed, "limit": limit, "root": str(root.resolve()) if root is not None else None}
    saved, saved_commands, state = {}, [], None
    if resume is not None:
        for name, value in (("SOURCE", source), ("--model", model), ("--freeze-until", freeze_until)):
            if value is not None:
                raise typer.BadParameter(f"--resume continues the run's own network (its head and frozen "
                                         f"layers are in its checkpoint); leave out {name}.", param_hint=name)
        resume = resolve_checkpoint_path(resume)
        state = load_checkpoint(resume)
        saved, saved_commands = saved_settings(state.extra.get("metadata", {}), "finetune", resume)
        if not saved:
            raise UserError(f"{resume} holds no fine-tuning settings; --resume continues a run that cnnkit "
                            f"finetune wrote.")
        out = out if out is not None else resume.parent
    elif source is None:
        raise typer.BadParameter("give the network to fine-tune (a checkpoint, run directory or torch "
                                 "weights), or --resume RUN.", param_hint="SOURCE")
    settings = {"source": saved.get("source", str(source)), "model": saved.get("model", model),
                "freeze_until": saved.get("freeze_until", freeze_until),
                **merge_settings(given, saved, DEFAULTS)}
    seed, root = settings["seed"], Path(settings["root"]) if settings["root"] else None
    run = Path(out) if out is not None else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    check_output_dir(run)  # before any data is read
    train_set = load_split(settings["data"], "train", root, settings["limit"], download)
    test_set = load_split(settings["data"], "test", root, settings["limit"], download)
    input_shape, classes = train_set.image_shape, train_set.classes
    if state is not None:  # the network as saved: new head, frozen layers, the input statistics it learned on
        net, stats = state.model, state.extra["metadata"]["normalize"]
        head = head_name(net)
        subject, head_note = f"resuming {resume.parent} ({settings['source']})", f"head {head}"
        frozen = [name for name, p in net.named_parameters() if not p.trainable]
        mean, std = np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)
    else:
        net, head, head_note, frozen, (mean, std) = pretrained(source, model, freeze_until, train_set, seed)
        subject = source
    normalize = (mean, std)
    train_loader = DataLoader(train_set, settings["batch_size"], shuffle=True, seed=seed, normalize=normalize)
    test_loader = DataLoader(test_set, 500, normalize=normalize)
    optimizer = SGD(param_groups(net, {head: settings["head_lr_mult"]}), lr=settings["lr"], momentum=0.9,
                    weight_decay=5e-4)
    scheduler = CosineAnnealing(optimizer, T_max=settings["epochs"] * len(train_loader), interval="step")
    where = Where(1 if state is None else (state.epoch or 0) + 1)
    callbacks = [where]
    if state is not None:  # this run's learning rate and steps per epoch, should --lr or --batch-size change
        callbacks.append(ResumeRescale(scheduler, scheduler.base_lrs[0], len(train_loader)))
    net.preprocessing = Preprocessing(input_shape, mean=mean, std=std, classes=classes)
    metadata = {"finetune": settings, "classes": classes, "input_shape": list(input_shape),
                "data": settings["data"], "normalize": {"mean": mean.tolist(), "std": std.tolist()},
                "preprocessing": net.preprocessing.to_dict(), "commands": [*saved_commands, command_line()]}
    if not quiet:
        up_to = f" up to {settings['freeze_until']}" if settings["freeze_until"] else ""
        typer.echo(f"cnnkit finetune: {subject} on {settings['data']} ({len(train_set):,} train / "
                   f"{len(test_set):,} test images); {head_note}; {len(frozen)} parameters frozen{up_to}; lr "
                   f"{settings['lr']:g}, head x{settings['head_lr_mult']:g} -> {run}")
    checkpoint = run / "checkpoint.npz"
    with resume_hint("finetune", checkpoint, where):  # Ctrl-C: how to resume, once there is a checkpoint
        run.mkdir(parents=True, exist_ok=True)
        (run / "run.json").write_text(json.dumps(metadata, indent=2) + "\n")  # the same run folder as train's
        if state is None:  # epoch 0: an interruption in the first epoch still leaves a run to resume
            save(net, checkpoint, optimizer=optimizer, epoch=0, extra={"metadata": metadata})
        began = time.perf_counter()
        history = fit(net, SoftmaxCrossEntropy(), optimizer, train_loader, epochs=settings["epochs"],
                      scheduler=scheduler, checkpoint=checkpoint, resume=resume, quiet=quiet,
                      metadata=metadata, callbacks=callbacks)
        seconds = time.perf_counter() - began
        where.phase = "in the test evaluation after epoch"
        result = evaluate(net, test_loader, SoftmaxCrossEntropy())
    finish_run(run, table=summarize(net, input_shape), settings=settings, result=result, history=history,
               seconds=seconds, doing="fine-tuning", metrics={"frozen_parameters": len(frozen)}, quiet=quiet,
               report=report, root=root)


def pretrained(source: Path, model_name: str | None, freeze_until: str | None, train_set, seed: int):
    """The network from SOURCE made ready for ``train_set``: a new head if the number of classes differs,
    the layers up to ``freeze_until`` frozen, and the input statistics to normalize with.

    Returns:
        (network, head name, what became of the head in words, frozen parameter names, (mean, std)).

    Raises:
        ValueError: the network was trained on images of another shape.
    """
    import numpy as np

    from cnnkit.data import channel_stats
    from cnnkit.transfer import freeze, head_name, replace_head

    input_shape, classes = train_set.image_shape, train_set.classes
    net, _ = load_source(source, model_name, input_shape)
    recipe = getattr(net, "preprocessing", None)  # what the pretrained network was trained on, if known
    expected = recipe.input_shape if recipe is not None else None
    if expected and list(expected) != list(input_shape):
        raise ValueError(f"the new images are {'x'.join(map(str, input_shape))} but {source} was trained on "
                         f"{'x'.join(map(str, expected))}.")
    head = head_name(net)
    old_classes = net.output_shape((1, *input_shape))[1]
    if old_classes != len(classes):
        replace_head(net, len(classes), rng=np.random.default_rng(seed))
        head_note = f"new head {head} ({old_classes} -> {len(classes)} classes)"
    else:
        head_note = f"head {head} kept ({old_classes} classes)"
    frozen = freeze(net, until=freeze_until) if freeze_until else []
    # The pretrained network expects inputs normalized as in its training; new data gets its own statistics.
    if recipe is not None and recipe.mean is not None:
        mean, std = np.asarray(recipe.mean, np.float32), np.asarray(recipe.std, np.float32)
    else:
        mean, std = channel_stats(train_set.images)
        std = np.maximum(std, 1e-3)
    return net, head, head_note, frozen, (mean, std)
