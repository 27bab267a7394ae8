"""Small data and models for training tests: a seeded loader whose order depends on (seed, epoch) only."""

import numpy as np

from cnnkit.layers import Conv2d, Dropout, Flatten, Linear, ReLU, Sequential


class ArrayLoader:
    """Batches of (x, y) from arrays, shuffled by default_rng((seed, epoch)) after set_epoch(epoch)."""

    def __init__(self, x, y, batch_size=16, *, shuffle=True, seed=0):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        order = (np.random.default_rng((self.seed, self.epoch)).permutation(len(self.x)) if self.shuffle
                 else np.arange(len(self.x)))
        for i in range(0, len(order), self.batch_size):
            idx = order[i:i + self.batch_size]
            yield self.x[idx], self.y[idx]


def blobs(n=96, classes=3, size=8, seed=0):
    """Images whose class is the position of a bright square plus noise: learnable in a few epochs."""
    r = np.random.default_rng(seed)
    y = r.integers(0, classes, n)
    x = r.normal(0, 0.3, (n, 1, size, size)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 0, 2 * c:2 * c + 3, 2 * c:2 * c + 3] += 1.5
    return x, y.astype(np.int64)


def small_net(seed=0, classes=3, size=8, dropout=0.2):
    r = np.random.default_rng(seed)
    return Sequential(Conv2d(1, 4, 3, padding=1, rng=r), ReLU(), Flatten(), Dropout(dropout, rng=r),
                      Linear(4 * size * size, classes, rng=r))
