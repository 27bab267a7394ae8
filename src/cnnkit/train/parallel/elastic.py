"""Resuming at another number of ranks: the resumed run's learning rate and steps per epoch, not the saved.

A checkpoint written by N ranks with B images each holds the weights, the optimizer state (momentum,
Adam's moments and step counts), the learning rate N x lr that the linear scaling rule gave those ranks,
and a per-step schedule's position counted in N-rank steps (epochs done x steps per epoch at a global
batch of N x B). Resumed by M ranks, the global batch is M x B; :class:`ResumeRescale` then

- scales the learning rate to M x lr (every group's peak, so per-group ratios hold), and
- moves the schedule to epochs done x steps per epoch at the new global batch: the cosine curve continues
  from the same fraction of the run, and ends with the run.

The data order needs nothing: epoch e walks the loader's seeded order for (seed, e), the same on every
rank and at every rank count, cut into global batches of M x B images of which rank r takes the r-th
slice (:class:`~cnnkit.train.parallel.mpi.DistributedLoader`). Checkpoints are written at the end of an
epoch, so a resumed run starts a fresh epoch, and M ranks from a checkpoint train exactly as one process
with a batch of M x B and a learning rate of M x lr from the same checkpoint (M = 1 included). The same
rule covers a resume with another ``--batch-size`` or ``--lr`` on one process.
"""

from __future__ import annotations

from cnnkit.train.callbacks import Callback


class ResumeRescale(Callback):
    """After ``fit`` has loaded a checkpoint: this run's peak learning rate and steps per epoch.

    Args:
        scheduler: the run's schedule (or None): its base rates and its position are reset.
        lr: the peak learning rate of the first parameter group in this run (others keep their ratio).
        steps_per_epoch: ``len(train_loader)`` in this run.

    >>> import numpy as np
    >>> from cnnkit.layers import Parameter
    >>> from cnnkit.optim import SGD, CosineAnnealing
    >>> opt = SGD([Parameter(np.zeros(1))], lr=0.4)          # as saved by 4 ranks x 0.1
    >>> cosine = CosineAnnealing(opt, T_max=10 * 8, interval="step")
    >>> rescale = ResumeRescale(cosine, lr=0.2, steps_per_epoch=8)   # now 2 ranks: 8 steps per epoch
    >>> rescale.on_epoch_begin(5)                             # halfway: half of the new peak
    >>> round(opt.param_groups[0]["lr"], 6)
    0.1
    """

    def __init__(self, scheduler, lr: float, steps_per_epoch: int):
        self.scheduler, self.lr, self.steps_per_epoch = scheduler, float(lr), int(steps_per_epoch)
        self.optimizer = None if scheduler is None else scheduler.optimizer
        self.applied = False

    def on_train_begin(self, model, optimizer):
        self.optimizer = optimizer

    def on_epoch_begin(self, epoch: int):
        if self.applied:  # only the first epoch after the resume
            return
        self.applied = True
        groups = self.optimizer.param_groups
        schedule = self.scheduler
        bases = list(schedule.base_lrs) if schedule is not None else [g["lr"] for g in groups]
        scale = self.lr / bases[0] if bases[0] else 0.0
        bases = [self.lr] + [base * scale for base in bases[1:]]
        for group, base in zip(groups, bases, strict=True):
            group["lr"] = base
            if "initial_lr" in group:
                group["initial_lr"] = base
        if schedule is not None:
            schedule.base_lrs = bases
            schedule.t = epoch * self.steps_per_epoch if schedule.interval == "step" else epoch
            schedule._apply()
