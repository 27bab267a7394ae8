"""The training loop: ``fit`` (epochs of forward, loss, backward, step) and ``evaluate`` (metrics).

One training step, written out (this is the whole algorithm)::

    scores = model.forward(x)                 # (N, K) class scores
    value = loss.forward(scores, y)           # mean loss over the batch
    optimizer.zero_grad()
    model.backward_params(loss.backward())    # fills every param.grad (no gradient for the images)
    optimizer.step()                          # updates every trainable param.data

Determinism: ``fit`` tells the loader the epoch (``set_epoch(epoch)`` or ``loader.epoch``), so shuffling
depends on (seed, epoch) only; together with the optimizer state, the schedule and the dropout generators
saved in the checkpoint, 2 epochs in one go and 1 epoch + resume + 1 epoch give bitwise-identical weights.
"""

from __future__ import annotations

import math
import time

import numpy as np

from cnnkit.data.preprocessing import loader_preprocessing
from cnnkit.fast import measure
from cnnkit.fast.dispatch import no_grad
from cnnkit.io import load_checkpoint, save, set_model_rng_states
from cnnkit.losses import SoftmaxCrossEntropy
from cnnkit.optim.clip import clip_grad_norm
from cnnkit.train.callbacks import Callback, EarlyStopping
from cnnkit.train.history import History
from cnnkit.train.parallel import why_not_split
from cnnkit.train.parallel.slices import Slices
from cnnkit.train.progress import Progress, format_seconds


class TrainingDiverged(FloatingPointError):
    """The loss (or the scores) became NaN or infinite; ``history`` holds the epochs completed before."""

    def __init__(self, message: str, *, epoch: int, step: int, history: History):
        super().__init__(message)
        self.epoch, self.step, self.history = epoch, step, history


def fit(model, loss, optimizer, train_loader, val_loader=None, epochs: int = 1, *, scheduler=None,
        callbacks=(), checkpoint=None, resume=None, metadata: dict | None = None,
        clip_norm: float | None = None, parallel: Slices | None = None, quiet: bool = False) -> History:
    """Train ``model`` for ``epochs`` epochs (in total, counting those done before a resume).

    Progress and per-epoch summaries go to ``sys.stdout`` (``contextlib.redirect_stdout`` sends them
    elsewhere). ``fit`` changes no process-wide setting; ``cnnkit.runtime.configure(keep_freed_memory=True)``
    makes steps 5-15% faster (``cnnkit train`` turns it on).

    Args:
        model: a cnnkit Layer mapping a batch (N, C, H, W) to scores (N, K).
        loss: an object with ``forward(scores, targets) -> float`` and ``backward() -> dscores``
            (``cnnkit.losses.SoftmaxCrossEntropy()``).
        optimizer: a ``cnnkit.optim`` optimizer over the model's parameters.
        train_loader, val_loader: iterables of (x float32 (N, C, H, W), y int64 (N,)), e.g. DataLoader.
        epochs: the epoch to stop after (1-based count).
        scheduler: a ``cnnkit.optim`` schedule, stepped after every epoch (or every batch if its
            ``interval`` is "step").
        callbacks: Callback objects (see :mod:`cnnkit.train.callbacks`), ``EarlyStopping`` among them (at
            most one: it stops, restores the best weights and is saved in checkpoints).
        checkpoint: a path; after every epoch the model, optimizer, schedule, history and early-stopping
            state are written there atomically.
        resume: a checkpoint path written by ``fit``; training continues after its epoch.
        metadata: JSON-able data stored in every checkpoint under ``extra["metadata"]``. The input recipe
            (shape, normalization, class names) is recorded from ``train_loader`` as
            ``model.preprocessing`` and saved in every checkpoint (see :mod:`cnnkit.data.preprocessing`).
        clip_norm: clip gradients to this global norm before each step.
        parallel: None (each batch whole), or each batch in slices at once with the same gradients up to
            float32 rounding: ``cnnkit.train.parallel.Threads(n)`` (1.4-1.6x faster steps on two cores for
            models of 20 M multiply-adds per example or more) or ``Processes(n)`` (this process and n - 1
            spawned workers, for smaller models: LeNet-5 steps 7.2 -> 4.9 ms; a script training this way
            needs the ``if __name__ == "__main__":`` guard). Models with batch norm or dropout train
            whole. ``cnnkit.train.parallel.plan`` chooses as ``cnnkit train`` does.
        quiet: print nothing (no progress bar, no per-epoch summary).

    Returns:
        A :class:`History`, one record per epoch.

    Raises:
        TrainingDiverged: the loss became NaN or infinite; the message names the epoch and step, and the
            checkpoint file (if any) still holds the last good epoch.
        TypeError: a callback is not a Callback, or ``parallel`` is not None, Threads or Processes.
        ValueError: more than one EarlyStopping among the callbacks.
    """
    if parallel is not None and not isinstance(parallel, Slices):
        raise TypeError(f"fit: Received parallel={parallel!r}; expected None, cnnkit.train.parallel."
                        f"Threads(n) or cnnkit.train.parallel.Processes(n).")
    hooks = list(callbacks)
    bad = [type(c).__name__ for c in hooks if not isinstance(c, Callback)]
    if bad:
        raise TypeError(f"fit: callbacks must be cnnkit.train.Callback objects, received {bad[0]}.")
    stoppers = [c for c in hooks if isinstance(c, EarlyStopping)]
    if len(stoppers) > 1:
        raise ValueError(f"fit: Received {len(stoppers)} EarlyStopping callbacks; expected at most one (its "
                         f"state is saved in checkpoints).")
    stopper = stoppers[0] if stoppers else None
    # The model learns on what this loader makes of the images: that recipe is saved with it from now on.
    model.preprocessing = loader_preprocessing(train_loader) or getattr(model, "preprocessing", None)
    history, start, kernels = History(), 0, None
    if resume is not None:
        history, start, kernels = _resume(resume, model, optimizer, scheduler, stopper)
        if not quiet:
            print(f"resumed from {resume} after epoch {start}")
    for hook in hooks:
        hook.on_train_begin(model, optimizer)
    last_saved = f"{checkpoint} (epoch {start})" if resume is not None and checkpoint is not None else None

    split = None
    unpin = measure.pin(kernels)  # the measured kernels the run used before (same machine): bitwise resume
    try:  # from the moment workers exist, a Ctrl-C reaches the finally below that closes them
        if parallel is not None and parallel.count > 1 and why_not_split(model) is None:
            split = parallel.step(model, loss)
        for epoch in range(start, epochs):
            for hook in hooks:
                hook.on_epoch_begin(epoch)
            lr, began = optimizer.lr, time.perf_counter()
            _set_epoch(train_loader, epoch)
            try:
                train = _train_epoch(model, loss, optimizer, train_loader, epoch, epochs, scheduler, hooks,
                                     clip_norm, quiet, split)
            except _Diverged as d:
                kept = f"the last good checkpoint is kept at {last_saved}" if last_saved else \
                    "no checkpoint was kept"
                raise TrainingDiverged(
                    f"training stopped: the loss became {d.value} at epoch {epoch + 1}, step {d.step}; "
                    f"{kept}. Lower the learning rate (it was {optimizer.lr:.3g}) or clip gradients "
                    f"(clip_norm).",
                    epoch=epoch + 1, step=d.step, history=history) from None
            record = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in train.items() if k != "images"}}
            if val_loader is not None:
                val = evaluate(model, val_loader, loss)
                record.update({f"val_{k}": v for k, v in val.items() if k in ("loss", "accuracy", "top5")})
            record["lr"] = lr
            record["time"] = time.perf_counter() - began
            if scheduler is not None and scheduler.interval == "epoch":
                scheduler.step()
            history.append(record)
            if not quiet:
                print(summary_line(record, epochs, train["images"]), flush=True)
            stop = False
            for hook in hooks:
                stop = bool(hook.on_epoch_end(epoch, record)) or stop
            if stop:
                history.stopped = f"early stopping after epoch {epoch + 1}"
            if checkpoint is not None:
                fit_state = {"history": history.to_dict(), "dispatch": measure.record(),
                             "scheduler": scheduler.state_dict() if scheduler is not None else None,
                             "early_stopping": stopper.state_dict() if stopper is not None else None}
                save(model, checkpoint, optimizer=optimizer, epoch=epoch + 1,
                     extra={"fit": fit_state, "metadata": metadata or {}})
                last_saved = f"{checkpoint} (epoch {epoch + 1})"
            if stop:
                if not quiet:
                    print(f"{history.stopped}: {stopper.monitor} has not improved for "
                          f"{stopper.patience} epochs (best {stopper.best:.4f} at epoch "
                          f"{stopper.best_epoch})")
                break
    finally:
        unpin()
        if split is not None:
            split.close()
    if stopper is not None:
        stopper.restore(model)
    return history


def _set_epoch(loader, epoch):
    """Tell the loader which epoch runs next, so its shuffle depends on (seed, epoch) only: torch's
    ``set_epoch(epoch)`` convention, or cnnkit.data.DataLoader's ``epoch`` attribute."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    elif hasattr(loader, "epoch"):
        loader.epoch = epoch


class _Diverged(Exception):
    def __init__(self, value, step):
        super().__init__(value, step)
        self.value, self.step = value, step


def _train_epoch(model, loss, optimizer, loader, epoch, epochs, scheduler, hooks, clip_norm, quiet, split):
    model.train()
    total = len(loader) if hasattr(loader, "__len__") else None
    progress = Progress(total, f"epoch {epoch + 1}/{epochs}", quiet=quiet)
    counts = _Counts()
    try:
        for step, (x, y) in enumerate(loader, start=1):
            if split is not None:  # slices of the batch at once, on threads or processes
                scores, value = split.forward(x, y)
            else:
                scores, value = model.forward(x), None
            flat = scores.reshape(len(scores), -1)
            if not np.isfinite(flat).all():
                raise _Diverged("nan" if np.isnan(flat).any() else "inf", step)
            value = loss.forward(flat, y) if value is None else value
            if not math.isfinite(value):
                raise _Diverged(value, step)
            optimizer.zero_grad()
            if split is not None:
                split.backward()
            else:  # the images need no gradient: backward_params lets the first layer skip dx
                backward = getattr(model, "backward_params", model.backward)
                backward(loss.backward().reshape(scores.shape))
            if clip_norm is not None:
                clip_grad_norm(model, clip_norm)
            optimizer.step()
            if scheduler is not None and scheduler.interval == "step":
                scheduler.step()
            counts.add(flat, y, value)
            progress.update(step, len(y), value)
            for hook in hooks:
                hook.on_batch_end(epoch, step, value)
    finally:
        progress.close()
    return {**counts.metrics(), "images": counts.n}


class _Counts:
    """Running sums for loss, accuracy, top-5 and the confusion matrix."""

    def __init__(self):
        self.n, self.loss_sum, self.correct, self.top5, self.confusion = 0, 0.0, 0, 0, None

    def add(self, scores, y, value):
        y = np.asarray(y)
        K = scores.shape[1]
        pred = scores.argmax(axis=1)
        self.n += len(y)
        if value is not None:
            self.loss_sum += float(value) * len(y)
        self.correct += int((pred == y).sum())
        if K >= 5:
            top = np.argpartition(-scores, 4, axis=1)[:, :5]
            self.top5 += int((top == y[:, None]).any(axis=1).sum())
        if self.confusion is None:
            self.confusion = np.zeros((K, K), dtype=np.int64)
        np.add.at(self.confusion, (y, pred), 1)

    def metrics(self, with_loss=True) -> dict:
        n = max(self.n, 1)
        out = {"loss": self.loss_sum / n if with_loss else None, "accuracy": self.correct / n}
        if self.confusion is not None and self.confusion.shape[0] >= 5:
            out["top5"] = self.top5 / n
        return out


def evaluate(model, loader, loss=None) -> dict:
    """Loss, accuracy, top-5 accuracy (with 5+ classes) and the confusion matrix over a whole loader.

    ``loss``: the loss to average (default: softmax cross-entropy, the loss of every classifier here).

    The model runs in eval mode (dropout off, batch norm on running statistics) under ``cnnkit.no_grad()``
    (no layer keeps a cache) and is put back in the mode it was in. ``confusion[i, j]`` counts examples of
    true class i predicted as class j.

    Returns:
        ``{"loss": float, "accuracy": float, "top5": float (K >= 5), "confusion": (K, K) int64,
        "n": examples}``.

    >>> import numpy as np
    >>> from cnnkit.layers import Conv2d, Flatten, Sequential
    >>> net = Sequential(Conv2d(1, 3, 2, rng=np.random.default_rng(0)), Flatten())
    >>> x, y = np.ones((4, 1, 2, 2), np.float32), np.array([0, 1, 2, 0])
    >>> result = evaluate(net, [(x, y)])
    >>> result["n"], result["confusion"].shape, round(result["loss"], 4)
    (4, (3, 3), 1.4359)
    """
    loss = SoftmaxCrossEntropy() if loss is None else loss
    was_training = [layer.training for layer in model.layers()]
    model.eval()
    counts = _Counts()
    try:
        for x, y in loader:
            with no_grad():  # no backward follows: no layer keeps its input
                scores = model.forward(x)
            flat = scores.reshape(len(scores), -1)
            counts.add(flat, y, loss.forward(flat, y))
    finally:
        for layer, mode in zip(model.layers(), was_training, strict=True):
            layer.training = mode
    if counts.n == 0:
        raise ValueError("evaluate: the loader yielded no batches.")
    return {**counts.metrics(), "confusion": counts.confusion, "n": counts.n}


def summary_line(record: dict, epochs: int, images: int) -> str:
    """``epoch 2/5  loss 0.1234  acc 96.10%  val_loss 0.0987  val_acc 97.02%  lr 0.001  12.3s  812 img/s``."""
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record['train_loss']:.4f}",
             f"acc {record['train_accuracy']:.2%}"]
    if "val_loss" in record:
        parts += [f"val_loss {record['val_loss']:.4f}", f"val_acc {record['val_accuracy']:.2%}"]
    if "val_top5" in record:
        parts.append(f"val_top5 {record['val_top5']:.2%}")
    seconds = record["time"]
    parts += [f"lr {record['lr']:.3g}", f"{format_seconds(seconds) if seconds >= 60 else f'{seconds:.1f}s'}",
              f"{images / max(seconds, 1e-9):.0f} img/s"]
    return "  ".join(parts)


def _resume(path, model, optimizer, scheduler, stopper):
    """Load weights, optimizer, schedule, early-stopping state and history; return (history, epoch, the
    measured kernels the run used: see cnnkit.fast.measure.record)."""
    ckpt = load_checkpoint(path)
    model.load_state_dict(ckpt.model.state_dict())
    set_model_rng_states(model, ckpt.header.get("rng") or {})
    if ckpt.optimizer is not None:
        optimizer.load_state_dict(ckpt.optimizer)
    state = ckpt.extra.get("fit", {})
    if scheduler is not None and state.get("scheduler"):
        scheduler.load_state_dict(state["scheduler"])
    if stopper is not None and state.get("early_stopping"):
        stopper.load_state_dict(state["early_stopping"])
    return History.from_dict(state.get("history", {})), int(ckpt.epoch or 0), state.get("dispatch")
