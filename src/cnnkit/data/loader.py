"""DataLoader: batches of (x float32 NCHW, y int64) from an ArrayDataset, shuffled and augmented reproducibly.

Every random choice of epoch e comes from its own generator seeded by (seed, e): the order from
SeedSequence(seed, spawn_key=(e, 0, 0)), the augmentation of batch i from spawn_key (e, 1, i). So an epoch
is the same whether it runs first or after a resume (set ``loader.epoch``), with or without prefetching.
"""

from __future__ import annotations

import queue
import threading

import numpy as np

from cnnkit.data.transforms import as_transforms


def channel_stats(images) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) standard deviation, on the [0, 1] scale for uint8 images.

    uint8 images are counted with a 256-bin histogram per channel: exact. Both kinds are read in chunks of
    images, so no float64 copy of the whole dataset is ever made.

    >>> m, s = channel_stats(np.array([[[[0, 255]]], [[[255, 255]]]], np.uint8))
    >>> m, s.round(4)
    (array([0.75], dtype=float32), array([0.433], dtype=float32))
    """
    images = np.asarray(images)
    C, chunk = images.shape[1], 2048
    counts = np.zeros((C, 256), np.int64)
    total, total_sq = np.zeros(C), np.zeros(C)
    for start in range(0, len(images), chunk):
        block = images[start:start + chunk]
        for c in range(C):
            if images.dtype == np.uint8:
                counts[c] += np.bincount(block[:, c].ravel(), minlength=256)
            else:
                values = block[:, c].astype(np.float64)
                total[c] += values.sum()
                total_sq[c] += np.square(values).sum()
    if images.dtype == np.uint8:
        levels = np.arange(256) / 255.0
        total, total_sq = counts @ levels, counts @ levels**2
    n = images.size // C
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)


class DataLoader:
    """Iterate over a dataset in batches: ``for x, y in loader`` is one epoch.

    Each batch: the stored images are augmented (so crop padding is black), made float32 (uint8 divided by
    255, float images kept as they are), then normalized per channel ``(x - mean) / std``. Yields x float32
    (B, C, H, W) and y int64 (B,).

    Args:
        dataset: an ArrayDataset (anything with ``images`` (N, C, H, W) and ``labels`` (N,)).
        batch_size: samples per batch; the last batch is smaller unless ``drop_last``.
        shuffle: a new seeded order every epoch (else the stored order).
        seed: int seeding every random choice (None: fresh entropy, recorded in ``loader.seed``).
        drop_last: drop the last incomplete batch.
        normalize: None, (mean, std) per channel on the [0, 1] scale (e.g. MNIST's (0.1307,), (0.3081,)), or
            "auto" to compute them from this dataset; the values used are in ``loader.mean``/``loader.std``.
        augment: None, a transform ``f(x, rng) -> x``, "crop", "flip", "crop+flip" or a list of these.
        prefetch: False, True (2 batches) or a number of batches prepared ahead by a background thread.

    Raises:
        ValueError: batch_size < 1, images not 4-D, a normalization of the wrong length or with std <= 0.

    >>> from cnnkit.data import ArrayDataset
    >>> ds = ArrayDataset(np.zeros((10, 1, 28, 28), np.uint8), np.arange(10) % 3, ["a", "b", "c"])
    >>> loader = DataLoader(ds, batch_size=4, shuffle=True)
    >>> [(x.shape, x.dtype.name, y.shape) for x, y in loader][-1], len(loader)
    (((2, 1, 28, 28), 'float32', (2,)), 3)
    """

    def __init__(self, dataset, batch_size: int = 64, *, shuffle: bool = False, seed: int | None = 0,
                 drop_last: bool = False, normalize=None, augment=None, prefetch=False):
        images = np.asarray(dataset.images)
        if images.ndim != 4:
            raise ValueError(f"DataLoader: images must be (N, C, H, W); received shape {images.shape}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: received batch_size={batch_size!r}; expected an integer >= 1")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(np.random.SeedSequence().entropy) if seed is None else int(seed)
        self.drop_last = drop_last
        self.mean, self.std = self._normalization(normalize, images)
        self.augment = as_transforms(augment)
        self.prefetch = 2 if prefetch is True else int(prefetch)
        self.epoch = 0  # the epoch the next iteration runs; set it to resume

    def _normalization(self, normalize, images):
        if normalize is None:
            return None, None
        C = images.shape[1]
        if isinstance(normalize, str):
            if normalize != "auto":
                raise ValueError(f"DataLoader: received normalize={normalize!r}; expected None, 'auto' or "
                                 "(mean, std)")
            mean, std = channel_stats(images)
        else:
            try:
                mean, std = (np.asarray(v, np.float32).ravel() for v in normalize)
            except (TypeError, ValueError):
                mean = std = np.zeros(0)
            if mean.size not in (1, C) or std.size not in (1, C):
                raise ValueError(f"DataLoader: received normalize={normalize!r}; expected (mean, std) with "
                                 f"one value or {C} values (one per channel) each")
            mean, std = np.broadcast_to(mean, (C,)).copy(), np.broadcast_to(std, (C,)).copy()
        if not np.all(std > 0):
            raise ValueError(f"DataLoader: std {std.tolist()} has a value <= 0 (a constant channel?); pass "
                             "normalize=(mean, std) with positive std")
        return mean, std

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch`` (torch's convention; same as ``loader.epoch = epoch``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.dataset.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices of an epoch, in the order they are served."""
        n = len(self.dataset.labels)
        if not self.shuffle:
            return np.arange(n)
        seed = np.random.SeedSequence(self.seed, spawn_key=(epoch, 0, 0))
        return np.random.default_rng(seed).permutation(n)

    def batch(self, indices, rng=None):
        """The (x, y) batch of these sample indices; rng drives the augmentation."""
        x = self.dataset.images[indices]
        for transform in self.augment:
            x = transform(x, rng)
        scaled = x.dtype == np.uint8
        x = x.astype(np.float32)
        if scaled:
            x /= np.float32(255)  # a division, so x equals images / 255 exactly, not to a rounding
        if self.mean is not None:
            x -= self.mean[:, None, None]
            x /= self.std[:, None, None]
        return x, np.asarray(self.dataset.labels[indices], dtype=np.int64)

    def _batches(self, epoch):
        order = self.order(epoch)
        for i in range(len(self)):
            rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(epoch, 1, i)))
            yield self.batch(order[i * self.batch_size:(i + 1) * self.batch_size], rng)

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        batches = self._batches(epoch)
        return _prefetched(batches, self.prefetch) if self.prefetch > 0 else batches

    def __repr__(self):
        norm = "" if self.mean is None else f", normalize=({self.mean.tolist()}, {self.std.tolist()})"
        return (f"DataLoader({getattr(self.dataset, 'name', 'dataset')!r}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}{norm}, "
                f"augment={self.augment}, prefetch={self.prefetch})")


_DONE = object()


def _prefetched(batches, depth: int):
    """Run the ``batches`` generator in a thread, ``depth`` batches ahead, re-raising its errors here.

    NumPy releases the GIL in copies and arithmetic, so preparing the next batch overlaps the model's work.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item):
        while not stop.is_set():  # a timeout, so a consumer that stops early does not leave us blocked
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in batches:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as error:  # handed to the consumer, which raises it in its own thread
            put(error)

    worker = threading.Thread(target=work, name="cnnkit-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()
