"""Ops that move values without computing: pixel shuffle and unshuffle (sub-pixel convolution, Shi et al.
2016), channel shuffle (ShuffleNet), and unflatten. Each is a reshape and a transpose; its backward is
the inverse rearrangement of the gradient.

    pixel_shuffle(r)     (*, C r^2, H, W) -> (*, C, H r, W r): channel c r^2 + i r + j becomes the pixel
                         (h r + i, w r + j) of channel c
    pixel_unshuffle(r)   the inverse: (*, C, H r, W r) -> (*, C r^2, H, W)
    channel_shuffle(g)   (N, C, *S): channels as a (g, C/g) grid, read column by column, so that the next
                         grouped convolution's groups each see every previous group
    unflatten(dim, s)    one axis of size prod(s) becomes the axes s (one size may be -1)
"""

import math


def pixel_shuffle(x, upscale_factor):
    """Rearrange blocks of r^2 channels into r x r pixel blocks: torch.nn.functional.pixel_shuffle.

    Shape: x (*, C r^2, H, W) -> y (*, C, H r, W r).

    Returns:
        ``(y, cache)``.

    >>> import numpy as np
    >>> y, _ = pixel_shuffle(np.arange(4.0).reshape(1, 4, 1, 1), 2)
    >>> y[0, 0].tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    """
    r = upscale_factor
    *lead, C, H, W = x.shape
    blocks = x.reshape(*lead, C // (r * r), r, r, H, W)  # (..., C, i, j, H, W)
    k = len(lead)
    y = blocks.transpose(*range(k), k, k + 3, k + 1, k + 4, k + 2)  # (..., C, H, i, W, j)
    return y.reshape(*lead, C // (r * r), H * r, W * r), (x.shape, r)


def pixel_shuffle_backward(dy, cache):
    """The gradient of :func:`pixel_shuffle`: the gradient unshuffled. Shape: dy like y -> dx like x."""
    shape, r = cache
    return pixel_unshuffle(dy, r)[0].reshape(shape)


def pixel_unshuffle(x, downscale_factor):
    """Rearrange r x r pixel blocks into r^2 channels: torch.nn.functional.pixel_unshuffle.

    Shape: x (*, C, H r, W r) -> y (*, C r^2, H, W).

    Returns:
        ``(y, cache)``.

    >>> import numpy as np
    >>> y, _ = pixel_unshuffle(np.arange(4.0).reshape(1, 1, 2, 2), 2)
    >>> y.ravel().tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    r = downscale_factor
    *lead, C, H, W = x.shape
    blocks = x.reshape(*lead, C, H // r, r, W // r, r)  # (..., C, H, i, W, j)
    k = len(lead)
    y = blocks.transpose(*range(k), k, k + 2, k + 4, k + 1, k + 3)  # (..., C, i, j, H, W)
    return y.reshape(*lead, C * r * r, H // r, W // r), (x.shape, r)


def pixel_unshuffle_backward(dy, cache):
    """The gradient of :func:`pixel_unshuffle`: the gradient shuffled. Shape: dy like y -> dx like x."""
    shape, r = cache
    return pixel_shuffle(dy, r)[0].reshape(shape)


def channel_shuffle(x, groups):
    """Interleave the channels of ``groups`` groups (ShuffleNet): torch.nn.functional.channel_shuffle.

    Channel ``g * (C / groups) + k`` moves to position ``k * groups + g``.

    Shape: x (N, C, *S) with C divisible by groups -> y like x.

    Returns:
        ``(y, cache)``.

    >>> import numpy as np
    >>> channel_shuffle(np.arange(6.0).reshape(1, 6), 2)[0].tolist()
    [[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]]
    """
    N, C, *S = x.shape
    grid = x.reshape(N, groups, C // groups, *S)
    return grid.swapaxes(1, 2).reshape(x.shape), groups


def channel_shuffle_backward(dy, cache):
    """The gradient of :func:`channel_shuffle`: the inverse permutation, a shuffle with C / groups groups.

    Shape: dy like x -> dx like x.
    """
    groups = cache
    return channel_shuffle(dy, dy.shape[1] // groups)[0]


def unflatten(x, dim, sizes):
    """Split axis ``dim`` into the axes ``sizes`` (their product is its size; one may be -1): torch.unflatten.

    Shape: x (..., prod(sizes), ...) -> y (..., *sizes, ...).

    Returns:
        ``(y, cache)``.

    >>> import numpy as np
    >>> unflatten(np.zeros((2, 12)), 1, (3, -1))[0].shape
    (2, 3, 4)
    """
    axis = dim % x.ndim
    sizes = tuple(sizes)
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        sizes = tuple(x.shape[axis] // known if s == -1 else s for s in sizes)
    return x.reshape(*x.shape[:axis], *sizes, *x.shape[axis + 1:]), x.shape


def unflatten_backward(dy, cache):
    """The gradient of :func:`unflatten`: the gradient flattened back. Shape: dy like y -> dx like x."""
    return dy.reshape(cache)
