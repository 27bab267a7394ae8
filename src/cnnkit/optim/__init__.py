"""Optimizers, learning-rate schedules and gradient clipping, each matching torch.optim step for step.

>>> import numpy as np
>>> from cnnkit.layers import Conv2d
>>> net = Conv2d(1, 2, 3, rng=np.random.default_rng(0))
>>> opt = SGD(net, lr=0.1, momentum=0.9)                         # a model, or net.parameters()
>>> sched = CosineAnnealing(opt, T_max=10)
>>> y = net(np.ones((1, 1, 5, 5), np.float32)); _ = net.backward(np.ones_like(y))
>>> norm = clip_grad_norm(net, max_norm=1.0); opt.step(); opt.zero_grad(); sched.step()
"""

from cnnkit.optim.adam import Adam, AdamW
from cnnkit.optim.base import Optimizer
from cnnkit.optim.clip import clip_grad_norm
from cnnkit.optim.rmsprop import RMSprop
from cnnkit.optim.schedules import CosineAnnealing, LinearWarmup, Schedule, StepLR
from cnnkit.optim.sgd import SGD

OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}

__all__ = ["Adam", "AdamW", "CosineAnnealing", "LinearWarmup", "OPTIMIZERS", "Optimizer", "RMSprop", "SGD",
           "Schedule", "StepLR", "clip_grad_norm"]
