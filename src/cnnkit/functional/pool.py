"""Pooling, the public face: max, average, power-average (L_p), blur and global pools, PyTorch's names.

Each call runs the kernel :func:`cnnkit.fast.dispatch.kernel` picks: the chunked kernels of
:mod:`cnnkit.fast.pool`, or with ``algorithm="reference"`` (or inside ``cnnkit.reference_mode()``) the
textbook's of :mod:`cnnkit.reference.pool` (gather every window with im2col, reduce; scatter back with
col2im). The cache carries its kernel's backward.

Shape (every windowed op): x (N, C, *S) -> y (N, C, *S_out), per axis ``S_out = (S - F_eff + 2P) / stride
+ 1`` with ``F_eff = dilation * (kernel_size - 1) + 1``, rounded as ``fit`` says ("error", "crop": PyTorch's
floor rule, "pad": its ceil_mode).
"""

from __future__ import annotations

from cnnkit.fast.dispatch import backward, run
from cnnkit.reference.pool import binomial_filter

__all__ = ["avg_pool2d", "avg_pool2d_backward", "avg_poolnd", "avg_poolnd_backward", "binomial_filter",
           "blurnd", "blurnd_backward", "global_avg_pool", "global_avg_pool_backward", "global_max_pool",
           "global_max_pool_backward", "lp_pool2d", "lp_pool2d_backward", "lp_poolnd", "lp_poolnd_backward",
           "max_pool1d", "max_pool1d_backward", "max_pool2d", "max_pool2d_backward", "max_poolnd",
           "max_poolnd_backward"]


def max_poolnd(x, kernel_size, stride=None, padding=0, dilation=1, fit="error", *, nd=None, name="max_pool",
               algorithm="auto"):
    """Max over each window, in 1, 2 or 3 spatial dimensions; -inf padding never wins, a NaN propagates.

    Returns ``(y, cache)``; :func:`max_poolnd_backward` routes each gradient to the input that won (the
    notes' "switches").
    """
    return run("max_poolnd", algorithm, x, kernel_size, stride, padding, dilation, fit, nd=nd, name=name)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, fit="error", *, name="max_pool1d",
               algorithm="auto"):
    """1-D max pooling: x (N, C, W) -> (y (N, C, W_out), cache). See :func:`max_poolnd`."""
    return max_poolnd(x, kernel_size, stride, padding, dilation, fit, nd=1, name=name, algorithm=algorithm)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, fit="error", *, name="max_pool2d",
               algorithm="auto"):
    """2-D max pooling: x (N, C, H, W) -> (y (N, C, H_out, W_out), cache). See :func:`max_poolnd`.

    The notes' example: 2x2 windows with stride 2 keep the largest of every four numbers.

    >>> import numpy as np
    >>> x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], np.float32)[None, None]
    >>> y, cache = max_pool2d(x, 2, stride=2)
    >>> y[0, 0].tolist()
    [[6.0, 8.0], [3.0, 4.0]]
    >>> max_pool2d_backward(np.ones_like(y), cache)[0, 0].astype(int).tolist()
    [[0, 0, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 1]]
    """
    return max_poolnd(x, kernel_size, stride, padding, dilation, fit, nd=2, name=name, algorithm=algorithm)


def avg_poolnd(x, kernel_size, stride=None, padding=0, count_include_pad=True, fit="error", *, nd=None,
               name="avg_pool", algorithm="auto"):
    """Mean over each window; ``count_include_pad=False`` divides by the real inputs of each window."""
    return run("avg_poolnd", algorithm, x, kernel_size, stride, padding, count_include_pad, fit, nd=nd,
               name=name)


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True, fit="error", *,
               name="avg_pool2d", algorithm="auto"):
    """2-D average pooling: x (N, C, H, W) -> (y (N, C, H_out, W_out), cache). See :func:`avg_poolnd`.

    >>> import numpy as np
    >>> y, _ = avg_pool2d(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4), 2)
    >>> y[0, 0].tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    return avg_poolnd(x, kernel_size, stride, padding, count_include_pad, fit, nd=2, name=name,
                      algorithm=algorithm)


def lp_poolnd(x, norm_type, kernel_size, stride=None, fit="error", *, nd=None, name="lp_pool",
              algorithm="auto"):
    """Power-average pooling: ``(sum |x|^p) ** (1/p)`` over each window (no padding); p=2 is L2 pooling."""
    return run("lp_poolnd", algorithm, x, norm_type, kernel_size, stride, fit, nd=nd, name=name)


def lp_pool2d(x, norm_type, kernel_size, stride=None, fit="error", *, name="lp_pool2d", algorithm="auto"):
    """2-D power-average pooling: x (N, C, H, W) -> (y, cache). See :func:`lp_poolnd`.

    >>> import numpy as np
    >>> y, _ = lp_pool2d(np.array([[[[3, 0], [0, 4]]]], np.float32), 2, 2)
    >>> float(y[0, 0, 0, 0])
    5.0
    """
    return lp_poolnd(x, norm_type, kernel_size, stride, fit, nd=2, name=name, algorithm=algorithm)


def blurnd(x, kernel, stride=1, padding=0, fit="error", *, name="blur", algorithm="auto"):
    """One fixed filter applied to every channel (a depthwise convolution with a shared, frozen kernel):
    x (N, C, *S), kernel (*F) -> y (N, C, *S_out). See :func:`binomial_filter` for BlurPool's filters."""
    return run("blurnd", algorithm, x, kernel, stride, padding, fit, name=name)


def global_avg_pool(x, *, algorithm="auto"):
    """Mean over all spatial positions: x (N, C, *S) -> y (N, C, 1, ..., 1)."""
    return run("global_avg_pool", algorithm, x)


def global_max_pool(x, *, algorithm="auto"):
    """Max over all spatial positions: x (N, C, *S) -> y (N, C, 1, ..., 1); the gradient goes to the first
    maximum of each channel."""
    return run("global_max_pool", algorithm, x)


max_poolnd_backward = max_pool1d_backward = max_pool2d_backward = backward
avg_poolnd_backward = avg_pool2d_backward = lp_poolnd_backward = lp_pool2d_backward = backward
blurnd_backward = global_avg_pool_backward = global_max_pool_backward = backward
