"""A small data-parallel job run by tests/train/parallel/test_mpi.py under ``mpiexec`` (or alone, as 1 rank).

    python mpi_job.py OUT.npz BATCH STEPS [--die-at STEP] [--batchnorm] [--sync-bn]

Trains a small ConvNet for STEPS steps with plain SGD on fixed random data and has rank 0 save the final
weights. With --die-at, rank 1 kills itself with SIGKILL at that step (the fault test). --batchnorm puts a
BatchNorm2d after the convolution; --sync-bn makes the ranks share its batch statistics.
"""

import os
import signal
import sys

import numpy as np


def main(argv):
    from cnnkit.data import ArrayDataset, DataLoader
    from cnnkit.layers import BatchNorm2d, Conv2d, Flatten, Identity, Linear, ReLU, Sequential
    from cnnkit.losses import SoftmaxCrossEntropy
    from cnnkit.optim import SGD
    from cnnkit.train.parallel.mpi import DataParallel

    out, batch, steps = argv[0], int(argv[1]), int(argv[2])
    die_at = int(argv[argv.index("--die-at") + 1]) if "--die-at" in argv else None
    dp = DataParallel(timeout=20, sync_batchnorm="--sync-bn" in argv)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (256, 1, 8, 8), dtype=np.uint8)
    labels = rng.integers(0, 3, 256)
    # rank 1 starts from different weights on purpose: broadcast must make every replica rank 0's
    norm = BatchNorm2d(4) if "--batchnorm" in argv else Identity()
    model = Sequential(Conv2d(1, 4, 3, padding=1, rng=np.random.default_rng(1 + dp.rank * 100)), norm, ReLU(),
                       Flatten(), Linear(4 * 8 * 8, 3, rng=np.random.default_rng(2 + dp.rank * 100)))
    dp.setup(model)
    loader = dp.shard(DataLoader(ArrayDataset(images, labels, ["a", "b", "c"]), batch, shuffle=True, seed=5))
    optimizer = dp.wrap(SGD(model, lr=0.1, momentum=0.9))
    loss = SoftmaxCrossEntropy()
    step = 0
    while step < steps:
        for x, y in loader:
            step += 1
            if die_at is not None and dp.rank == 1 and step == die_at:
                os.kill(os.getpid(), signal.SIGKILL)
            scores = model.forward(x)
            loss.forward(scores, y)
            optimizer.zero_grad()
            model.backward(loss.backward())
            optimizer.step()
            if step == steps:
                break
    if dp.is_root:
        np.savez(out, **model.state_dict())


if __name__ == "__main__":
    main(sys.argv[1:])
