"""Training: ``fit`` a model on a loader, ``evaluate`` it, and the History, callbacks and early stopping.

>>> import numpy as np
>>> from cnnkit.layers import Conv2d, Flatten, Sequential
>>> from cnnkit.optim import SGD
>>> class SquaredError:            # any object with forward(scores, targets) and backward() is a loss
...     def forward(self, s, y): self.d = s - np.eye(3, dtype=s.dtype)[y]; return float((self.d ** 2).mean())
...     def backward(self): return 2 * self.d / self.d.size
>>> net = Sequential(Conv2d(1, 3, 2, rng=np.random.default_rng(0)), Flatten())
>>> x, y = np.random.default_rng(1).random((6, 1, 2, 2), dtype=np.float32), np.array([0, 1, 2, 0, 1, 2])
>>> history = fit(net, SquaredError(), SGD(net, lr=0.5), [(x, y)], epochs=20, quiet=True)
>>> history["train_loss"][-1] < history["train_loss"][0]
True
"""

from cnnkit.train.callbacks import Callback, EarlyStopping
from cnnkit.train.history import History
from cnnkit.train.loop import TrainingDiverged, evaluate, fit

__all__ = ["Callback", "EarlyStopping", "History", "TrainingDiverged", "evaluate", "fit"]
