"""``cnnkit train``: train a model on a dataset and keep everything in a run directory.

With no arguments it trains LeNet-5 on the MNIST subset shipped inside cnnkit and prints the test accuracy.
The run directory holds checkpoint.npz (model, optimizer, history; ``cnnkit evaluate``/``predict`` read it),
history.json, history.csv, metrics.json (test_accuracy, test_loss) and summary.txt.
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
from cnnkit.cli.runs import Where, finish_run, merge_settings, resume_hint, saved_settings

# Measured in docs/training.md: these reach >= 97% test accuracy on the embedded subset in well under
# 3 minutes on 2 cores.
DEFAULT_EPOCHS = 8
DEFAULT_BATCH_SIZE = 32
DEFAULT_OPTIMIZER = "adam"
DEFAULT_LR = {"sgd": 0.05, "adam": 2e-3, "adamw": 2e-3, "rmsprop": 1e-3}
SCHEDULES = ("cosine", "step", "none")


def is_pattern(spec: str) -> bool:
    return "->" in spec or "[" in spec


def check_model(spec: str):
    """Fail fast, before any data is read, on a model name the zoo does not know (naming the closest)."""
    from cnnkit.models.registry import constructor

    if not is_pattern(spec):
        constructor(spec)


def parse_model(spec: str, input_shape, num_classes: int, seed: int):
    """A zoo model by name (``lenet5``) or a network from the pattern notation (``INPUT -> ... -> FC``)."""
    import numpy as np

    from cnnkit import models

    rng = np.random.default_rng(seed)
    if is_pattern(spec):
        from cnnkit.build import build

        return build(spec, tuple(input_shape), num_classes, rng=rng)
    check_model(spec)
    return models.get(spec, num_classes=num_classes, input_shape=tuple(input_shape), rng=rng)


@app.command()
def train(
    model: Annotated[str | None, typer.Option(
        "--model", "-m", metavar="NAME", show_default="lenet5",
        help="A zoo name (lenet5, resnet18, ...) or a pattern 'INPUT -> [CONV -> RELU -> POOL]*2 -> FC'.",
    )] = None,
    data: Annotated[str | None, typer.Option(
        "--data", "-d", metavar="DATA", show_default="embedded", help=DATA_HELP)] = None,
    epochs: Annotated[int | None, typer.Option(
        min=1, show_default=str(DEFAULT_EPOCHS),
        help="Epochs in total (with --resume: including those already done).")] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", "-b", min=1, show_default=str(DEFAULT_BATCH_SIZE))] = None,
    lr: Annotated[float | None, typer.Option(
        min=0.0, show_default="adam/adamw 2e-3, sgd 0.05, rmsprop 1e-3",
        help="Peak learning rate (see --schedule).")] = None,
    schedule: Annotated[str | None, typer.Option(
        show_default="cosine", help="The learning rate over the run: cosine (down to 0), step (x0.1 after "
        "each third of the epochs) or none (constant).")] = None,
    weight_decay: Annotated[float | None, typer.Option(
        "--weight-decay", min=0.0, show_default="0", help="L2 penalty on the weights (decoupled for adamw).")
    ] = None,
    val_split: Annotated[float | None, typer.Option(
        "--val-split", min=0.0, max=0.5, show_default="0",
        help="Hold out this fraction of the training images (seeded) to validate on after every epoch; the "
             "report then shows validation curves.")] = None,
    early_stopping: Annotated[int | None, typer.Option(
        "--early-stopping", min=1, metavar="N",
        help="Stop when the validation loss (the training loss without --val-split) has not improved for N "
             "epochs, and keep the best weights.")] = None,
    optimizer: Annotated[str | None, typer.Option(
        "--optimizer", "-o", show_default=DEFAULT_OPTIMIZER,
        help="adam, adamw, sgd (momentum 0.9, Nesterov) or rmsprop.")] = None,
    seed: Annotated[int | None, typer.Option(
        show_default="0", help="Seeds the weights, the shuffling and the augmentation.")] = None,
    out: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Run directory.", show_default="runs/<date-time>")] = None,
    resume: Annotated[Path | None, typer.Option(
        metavar="RUN",
        help="A run directory or checkpoint to continue; its settings become the defaults.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final test accuracy.")] = False,
    limit: Annotated[int | None, typer.Option(
        min=1, help="Use only the first N training and N test images (quick runs).")] = None,
    augment: Annotated[str | None, typer.Option(
        help="crop, flip or crop+flip: random shifts by up to 1/8 of the image (zero padding), mirroring.",
    )] = None,
    root: Annotated[Path | None, typer.Option(metavar="DIR", help=ROOT_HELP)] = None,
    download: Annotated[bool, typer.Option("--download", help=DOWNLOAD_HELP)] = False,
    threads: Annotated[int | None, typer.Option(
        min=1, show_default="all cores; with --distributed, the cores / the ranks on this machine",
        help="The cores one training process uses. Models without batch norm or dropout train each batch "
             "in that many slices at once: on processes under 20 M multiply-adds per example, on threads "
             "above. Other models use them as threads for NumPy's matrix products and cnnkit's kernels "
             "(small ones default to 1, which is fastest for them).")] = None,
    dispatch: Annotated[str | None, typer.Option(
        show_default="rules",
        help="How each convolution picks its kernel: rules (a fixed table: the same kernels, hence the same "
             "rounding, on every machine) or measure (time the kernels that can compute a layer at its "
             "first call and keep the fastest, remembered in ~/.cache/cnnkit: for long runs on a CPU the "
             "rules were not tuned on).")] = None,
    report: Annotated[bool, typer.Option(
        help="Write report.html (curves, filters, occlusion...) into the run directory; needs cnnkit[viz].",
    )] = True,
    distributed: Annotated[bool, typer.Option(
        help="Data-parallel over MPI: run as 'mpiexec -n N cnnkit train --distributed ...'; "
             "each rank takes --batch-size images per step. Needs cnnkit[mpi].")] = False,
    sync_bn: Annotated[bool, typer.Option(
        "--sync-bn", help="With --distributed: batch norm uses the statistics of all ranks' images.",
    )] = False,
):
    """Train a model, print its test accuracy, keep everything in a run directory.

    With no options: LeNet-5 on the MNIST subset shipped with cnnkit (10,000 training and 2,000 test
    images), about 98% test accuracy in under two minutes on two cores.
    """
    if distributed:  # each rank trains in a child process, so that a killed rank is named with its host
        from cnnkit.train.parallel.supervisor import supervise

        supervise()
    import numpy as np

    from cnnkit.analysis import summary as summarize
    from cnnkit.data import DataLoader, Preprocessing, RandomCrop, RandomHorizontalFlip, channel_stats
    from cnnkit.io import load_checkpoint, remove_stale_temporaries, resolve_checkpoint_path, save
    from cnnkit.losses import SoftmaxCrossEntropy
    from cnnkit.optim import OPTIMIZERS, CosineAnnealing, StepLR
    from cnnkit.runtime import DISPATCH, blas_threads, configure, configured
    from cnnkit.train import EarlyStopping, evaluate, fit
    from cnnkit.train.parallel import Processes, describe, plan

    saved: dict = {}
    saved_metadata: dict = {}
    saved_commands: list = []  # the command lines that made this run, oldest first
    first_epoch = 1
    if resume is not None:
        resume = resolve_checkpoint_path(resume)
        state = load_checkpoint(resume)
        saved_metadata, first_epoch = state.extra.get("metadata", {}), (state.epoch or 0) + 1
        saved, saved_commands = saved_settings(saved_metadata, "train", resume)
        out = out if out is not None else resume.parent
    settings = {"model": model, "data": data, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                "optimizer": optimizer, "seed": seed, "limit": limit, "augment": augment,
                "schedule": schedule, "weight_decay": weight_decay, "val_split": val_split,
                "early_stopping": early_stopping, "dispatch": dispatch,
                "root": str(root.resolve()) if root is not None else None}  # so that the run reopens
    defaults = {"model": "lenet5", "data": "embedded", "epochs": DEFAULT_EPOCHS,
                "batch_size": DEFAULT_BATCH_SIZE, "optimizer": DEFAULT_OPTIMIZER, "seed": 0,
                "schedule": "cosine", "weight_decay": 0.0, "val_split": 0.0, "dispatch": "rules"}
    settings = merge_settings(settings, saved, defaults)
    name = settings["optimizer"].lower()
    if name not in OPTIMIZERS:
        raise typer.BadParameter(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}.",
                                 param_hint="'--optimizer'")
    if saved and saved.get("optimizer", name).lower() != name:  # its state cannot move to another optimizer
        raise typer.BadParameter(f"the run was trained with --optimizer {saved['optimizer']}; resume it with "
                                 f"that one, or start a new run (another --out).", param_hint="'--optimizer'")
    if settings["schedule"] not in SCHEDULES:
        raise typer.BadParameter(f"{settings['schedule']!r}; choose {', '.join(SCHEDULES)}.",
                                 param_hint="'--schedule'")
    if settings["dispatch"] not in DISPATCH:
        raise typer.BadParameter(f"{settings['dispatch']!r}; choose {' or '.join(DISPATCH)}.",
                                 param_hint="'--dispatch'")
    if settings["augment"] not in (None, "none", "crop", "flip", "crop+flip"):
        raise typer.BadParameter(f"{settings['augment']!r}; choose crop, flip or crop+flip.",
                                 param_hint="'--augment'")
    settings["lr"] = settings["lr"] if settings["lr"] is not None else DEFAULT_LR[name]
    seed, root = settings["seed"], Path(settings["root"]) if settings["root"] else None
    check_model(settings["model"])
    parallel = None
    if distributed:
        from cnnkit.train.parallel.mpi import DataParallel

        parallel = DataParallel(sync_batchnorm=sync_bn, threads=threads)
        threads = parallel.threads
        quiet = quiet or not parallel.is_root
    root_rank = parallel is None or parallel.is_root
    run = Path(out) if out is not None else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    if parallel is not None and out is None:  # every rank must agree on rank 0's directory name
        run = Path(parallel.comm.bcast(str(run), root=0))
    if root_rank:  # before any data is read: a folder that cannot be written is reported at once
        check_output_dir(run)
        removed = remove_stale_temporaries(run)  # what writers killed during a save left behind
        if removed and not quiet:
            typer.echo(f"removed {len(removed)} temporary file(s) left in {run} by killed writers")

    train_set = load_split(settings["data"], "train", root, settings["limit"], download)
    test_set = load_split(settings["data"], "test", root, settings["limit"], download)
    val_set = None
    if settings["val_split"]:  # held out of the training images, the same ones on every resume (seeded)
        train_set, val_set = train_set.split(max(1, round(len(train_set) * settings["val_split"])), seed=seed)
    input_shape, classes = train_set.image_shape, train_set.classes
    net = parse_model(settings["model"], input_shape, len(classes), seed)
    mean, std = channel_stats(train_set.images)
    std = np.maximum(std, 1e-3)
    net.preprocessing = Preprocessing(input_shape, mean=mean, std=std, classes=classes)  # saved with it
    augment = None
    if settings["augment"] not in (None, "none"):
        # Shift by up to an eighth of the image: 4 pixels on 32x32 CIFAR (the usual recipe), 3 on 28x28 MNIST.
        shift = max(1, input_shape[1] // 8)
        augment = [RandomCrop(padding=shift) if part == "crop" else RandomHorizontalFlip()
                   for part in settings["augment"].split("+")]
    train_loader = DataLoader(train_set, settings["batch_size"], shuffle=True, seed=seed,
                              normalize=(mean, std), augment=augment)
    test_loader = DataLoader(test_set, 500, normalize=(mean, std))
    val_loader = DataLoader(val_set, 500, normalize=(mean, std)) if val_set is not None else None
    opt_kwargs = {"momentum": 0.9, "nesterov": True} if name == "sgd" else {}
    if settings["weight_decay"]:
        opt_kwargs["weight_decay"] = settings["weight_decay"]
    lr_used = settings["lr"]
    if parallel is not None:
        parallel.setup(net)
        train_loader = parallel.shard(train_loader)
        lr_used = settings["lr"] * parallel.size  # the linear scaling rule (Goyal et al. 2017)
    opt = OPTIMIZERS[name](net, lr=lr_used, **opt_kwargs)
    if parallel is not None:
        opt = parallel.wrap(opt)
    scheduler = None
    if settings["schedule"] == "cosine":
        scheduler = CosineAnnealing(opt, T_max=settings["epochs"] * len(train_loader), interval="step")
    elif settings["schedule"] == "step":
        scheduler = StepLR(opt, step_size=max(1, settings["epochs"] // 3), gamma=0.1)
    metadata = {"train": settings, "classes": classes, "input_shape": list(input_shape),
                "data": settings["data"], "normalize": {"mean": mean.tolist(), "std": std.tolist()},
                "preprocessing": net.preprocessing.to_dict(),
                "commands": [*saved_commands, command_line()],
                "ranks": 1 if parallel is None else parallel.size}
    table = summarize(net, input_shape)
    slices, threads = plan(net, table.total_macs, threads, whole_batches=parallel is not None)
    if parallel is not None and not quiet:
        typer.echo(f"distributed: {parallel.size} ranks x batch {settings['batch_size']} = effective batch "
                   f"{settings['batch_size'] * parallel.size}; learning rate scaled linearly with the ranks "
                   f"(Goyal et al. 2017): {settings['lr']:g} x {parallel.size} = {lr_used:g}; batch norm "
                   f"{'synchronized' if sync_bn else 'per rank'}; {threads} BLAS thread(s) per rank")
    if not quiet:
        typer.echo(f"cnnkit train: {settings['model']} ({net.num_parameters():,} parameters) on "
                   f"{settings['data']} ({len(train_set):,} train / {len(test_set):,} test images of "
                   f"{'x'.join(map(str, input_shape))}, {len(classes)} classes)")
        extras = "".join([f", weight decay {settings['weight_decay']:g}" if settings["weight_decay"] else "",
                          f", {len(val_set):,} held out to validate" if val_set is not None else "",
                          f", early stopping after {settings['early_stopping']} epoch"
                          f"{'s' * (settings['early_stopping'] != 1)} without progress"
                          if settings["early_stopping"] else ""])
        curve = {"cosine": "cosine", "step": "x0.1 every third", "none": "constant"}[settings["schedule"]]
        typer.echo(f"{name} lr {lr_used:g} ({curve}){extras}, batch {settings['batch_size']}, "
                   f"{settings['epochs']} epoch{'s' * (settings['epochs'] != 1)}, seed {seed}, "
                   f"{describe(slices, threads)} -> {run}")
    where = Where(first_epoch)
    callbacks = [where]
    if settings["early_stopping"]:
        callbacks.append(EarlyStopping("val_loss" if val_loader is not None else "train_loss",
                                       patience=settings["early_stopping"]))
    if resume is not None:  # this run's learning rate and steps per epoch, whatever the saved run's ranks
        from cnnkit.train.parallel.elastic import ResumeRescale

        callbacks.append(ResumeRescale(scheduler, lr_used, len(train_loader)))
        ranks, saved_ranks = metadata["ranks"], saved_metadata.get("ranks", 1)
        if ranks != saved_ranks and not quiet and saved:
            typer.echo(f"resuming on {ranks} rank(s) a checkpoint written by {saved_ranks}: effective batch "
                       f"{saved_ranks * saved['batch_size']} -> {ranks * settings['batch_size']}, learning "
                       f"rate {saved_ranks * saved['lr']:g} -> {lr_used:g} (linear scaling); the schedule "
                       f"continues from the same fraction of the run")
    checkpoint = run / "checkpoint.npz"
    with resume_hint("train", checkpoint, where):  # Ctrl-C: how to resume, once there is a checkpoint
        if root_rank:
            run.mkdir(parents=True, exist_ok=True)
            (run / "run.json").write_text(json.dumps(metadata, indent=2) + "\n")
            if resume is None:  # epoch 0: an interruption in the first epoch still leaves a run to resume
                save(net, checkpoint, optimizer=opt, epoch=0, extra={"metadata": metadata})
        configure(keep_freed_memory=True)  # our process: each step's arrays reuse the last step's memory
        began = time.perf_counter()
        # the fast kernels' batch parts and chunks take the cores too, unless slice processes hold them
        elementwise = 1 if isinstance(slices, Processes) else threads
        with blas_threads(threads), configured(dispatch=settings["dispatch"], threads=elementwise):
            history = fit(net, SoftmaxCrossEntropy(), opt, train_loader, epochs=settings["epochs"],
                          scheduler=scheduler, checkpoint=checkpoint if root_rank else None, resume=resume,
                          val_loader=val_loader,
                          quiet=quiet, metadata=metadata, parallel=slices, callbacks=callbacks)
            seconds = time.perf_counter() - began
            if not root_rank:  # rank 0 alone evaluates and writes; the replicas hold the same weights
                return
            where.phase = "in the test evaluation after epoch"
            result = evaluate(net, test_loader, SoftmaxCrossEntropy())
    finish_run(run, table=table, settings=settings, result=result, history=history, seconds=seconds,
               doing="training", quiet=quiet, report=report, root=root)
