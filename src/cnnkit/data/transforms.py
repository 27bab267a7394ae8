"""Augmentations applied on the fly to a batch, with the generator the DataLoader passes in.

A transform is any callable ``transform(x, rng) -> x`` on a batch x (N, C, H, W) (the stored dtype, uint8
for the built-in datasets) and a ``numpy.random.Generator``; it must not modify x in place.
"""

from __future__ import annotations

import numpy as np


class RandomCrop:
    """Pad every side with ``padding`` zeros, then cut a random window of ``size`` from each image.

    Shape:
        (N, C, H, W) -> (N, C, H_out, W_out), (H_out, W_out) = size, default (H, W); the window's top-left
        corner is uniform in [0, H + 2P - H_out] x [0, W + 2P - W_out].

    Args:
        size: (H_out, W_out) or an int for square windows; default the input size.
        padding: zeros added on each side (the usual CIFAR recipe is 4).

    Raises:
        ValueError: negative padding, or a window larger than the padded image.

    >>> x = np.ones((2, 3, 32, 32), np.uint8)
    >>> RandomCrop(padding=4)(x, np.random.default_rng(0)).shape
    (2, 3, 32, 32)
    """

    def __init__(self, size=None, padding: int = 4):
        if padding < 0:
            raise ValueError(f"RandomCrop: received padding={padding}; expected padding >= 0")
        self.size = (size, size) if isinstance(size, int) else (None if size is None else tuple(size))
        self.padding = int(padding)

    def __call__(self, x, rng):
        N, C, H, W = x.shape
        P = self.padding
        h, w = self.size or (H, W)
        if h > H + 2 * P or w > W + 2 * P:
            raise ValueError(f"{self!r}: a {h}x{w} window does not fit a {H}x{W} image padded by {P}")
        padded = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))  # (N, C, H + 2P, W + 2P), zeros outside
        top = rng.integers(0, H + 2 * P - h + 1, size=N)
        left = rng.integers(0, W + 2 * P - w + 1, size=N)
        out = np.empty((N, C, h, w), dtype=x.dtype)
        for n in range(N):  # a plain loop: N slices cost far less than the convolution that follows
            out[n] = padded[n, :, top[n]:top[n] + h, left[n]:left[n] + w]
        return out

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p``.

    Shape:
        (N, C, H, W) -> (N, C, H, W); a flipped image is ``x[n, :, :, ::-1]`` exactly.

    Raises:
        ValueError: p outside [0, 1].

    >>> x = np.arange(4, dtype=np.uint8).reshape(1, 1, 1, 4)
    >>> RandomHorizontalFlip(p=1.0)(x, np.random.default_rng(0))
    array([[[[3, 2, 1, 0]]]], dtype=uint8)
    """

    def __init__(self, p: float = 0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: received p={p}; expected 0 <= p <= 1")
        self.p = float(p)

    def __call__(self, x, rng):
        flip = rng.random(len(x)) < self.p
        out = x.copy()
        out[flip] = x[flip][..., ::-1]
        return out

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


_NAMED = {"crop": RandomCrop, "flip": RandomHorizontalFlip}


def as_transforms(augment) -> list:
    """None, a transform, a name ("crop", "flip", "crop+flip") or a sequence of those -> a list of transforms.

    >>> as_transforms("crop+flip")
    [RandomCrop(size=None, padding=4), RandomHorizontalFlip(p=0.5)]
    """
    if augment is None:
        return []
    if isinstance(augment, str):
        items = [part.strip() for part in augment.split("+") if part.strip()]
    elif callable(augment):
        items = [augment]
    else:
        items = list(augment)
    transforms = []
    for item in items:
        if isinstance(item, str):
            if item not in _NAMED:
                raise ValueError(f"augment: received {item!r}; expected one of {sorted(_NAMED)} or a "
                                 "callable transform(x, rng) -> x")
            item = _NAMED[item]()
        if not callable(item):
            raise TypeError(f"augment: received {item!r}; expected a callable transform(x, rng) -> x")
        transforms.append(item)
    return transforms
