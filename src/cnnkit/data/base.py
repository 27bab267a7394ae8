"""ArrayDataset: images, labels and class names held in memory, as every reader returns them."""

from __future__ import annotations

import numpy as np


class ArrayDataset:
    """A labelled image set: ``images[i]`` is an image, ``labels[i]`` its class index into ``classes``.

    Shape:
        images (N, C, H, W), uint8 (0..255, as stored) or float; labels (N,) int64 in [0, len(classes)).

    Args:
        images: array (N, C, H, W).
        labels: integer array (N,); stored as int64.
        classes: the class names, ``classes[k]`` names label k.
        name: where the data came from ("mnist/train"), used in repr and messages.

    Raises:
        ValueError: images not 4-D, label count differs from image count, or a label outside the classes.

    >>> ds = ArrayDataset(np.zeros((5, 1, 28, 28), np.uint8), [0, 1, 2, 1, 0], ["a", "b", "c"])
    >>> len(ds), ds.image_shape, ds.labels.dtype
    (5, (1, 28, 28), dtype('int64'))
    >>> ds
    ArrayDataset('dataset', 5 images of 1x28x28 uint8, 3 classes)
    """

    def __init__(self, images, labels, classes, *, name: str = "dataset"):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.ndim != 4:
            raise ValueError(f"ArrayDataset({name!r}): images must be (N, C, H, W); "
                             f"received shape {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(f"ArrayDataset({name!r}): size mismatch: {len(images)} images but labels of "
                             f"shape {labels.shape}; expected ({len(images)},)")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"ArrayDataset({name!r}): labels must be integers; "
                             f"received dtype {labels.dtype}")
        classes = [str(c) for c in classes]
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError(f"ArrayDataset({name!r}): labels range over [{labels.min()}, {labels.max()}] "
                             f"but there are {len(classes)} classes; expected labels in "
                             f"[0, {len(classes) - 1}]")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.classes = classes
        self.name = name

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        """(image, label) for an integer index; a new ArrayDataset for a slice or an index array."""
        if isinstance(index, (int, np.integer)):
            return self.images[index], int(self.labels[index])
        return ArrayDataset(self.images[index], self.labels[index], self.classes, name=self.name)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(int(s) for s in self.images.shape[1:])

    def split(self, count: int, *, seed: int = 0) -> tuple[ArrayDataset, ArrayDataset]:
        """Hold out ``count`` random samples (seeded): returns (rest, held_out), e.g. train and validation.

        >>> ds = ArrayDataset(np.zeros((10, 1, 2, 2), np.uint8), np.arange(10) % 2, ["even", "odd"])
        >>> train, val = ds.split(3)
        >>> len(train), len(val)
        (7, 3)
        """
        if not 0 <= count <= len(self):
            raise ValueError(f"{self!r}.split: received count={count}; expected 0 <= count <= {len(self)}")
        order = np.random.default_rng(seed).permutation(len(self))
        rest, held = np.sort(order[count:]), np.sort(order[:count])
        return (ArrayDataset(self.images[rest], self.labels[rest], self.classes, name=self.name),
                ArrayDataset(self.images[held], self.labels[held], self.classes, name=self.name))

    def __repr__(self):
        shape = "x".join(str(s) for s in self.images.shape[1:])
        return (f"ArrayDataset({self.name!r}, {len(self)} images of {shape} {self.images.dtype}, "
                f"{len(self.classes)} classes)")
