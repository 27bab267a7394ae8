"""Convolution in 1, 2 or 3 spatial dimensions, the public face: PyTorch's names, the fastest kernel.

Each call asks :func:`cnnkit.fast.dispatch.conv` which kernel computes this layer and calls it; the cache
it returns carries that kernel's backward. The algorithm itself -- pad, im2col, one matrix multiply, and
backward as a transposed convolution -- is written out in :mod:`cnnkit.reference.conv`; the faster
kernels are in :mod:`cnnkit.fast`, each tested against it.
"""

from __future__ import annotations

from cnnkit.fast import dispatch
from cnnkit.fast.dispatch import CONV_ALGORITHMS as ALGORITHMS
from cnnkit.fast.dispatch import choose_algorithm
from cnnkit.reference.conv import col2im, im2col, pad, unpad

__all__ = ["ALGORITHMS", "choose_algorithm", "col2im", "conv1d", "conv2d", "conv3d", "convnd",
           "convnd_backward", "im2col", "pad", "unpad"]


def convnd(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error", *, name="conv",
           algorithm="auto"):
    """N-d convolution (really cross-correlation, as in every deep learning library).

    Shape:
        x (N, C, *S), weight (K, C/groups, *F), bias (K,) or None -> y (N, K, *S_out) with, per axis,
        ``S_out = (S - F_eff + P_before + P_after) / stride + 1`` and ``F_eff = dilation * (F - 1) + 1``.

    ``algorithm``: "auto" (per shape, see :func:`choose_algorithm`), "reference" (the textbook kernel),
    "im2col", "winograd" (F(4x4, 3x3), float32 results within ~1e-5 of im2col's), "winograd2" (F(2x2, 3x3),
    ~1e-6) or "depthwise".

    Returns ``(y, cache)``; pass the cache to :func:`convnd_backward` (``None`` under ``cnnkit.no_grad()``).
    """
    kernel = dispatch.conv(x, weight, stride, padding, dilation, groups, fit, algorithm, name=name, bias=bias)
    y, cache = kernel.forward(x, weight, bias, stride, padding, dilation, groups, fit, name=name)
    return y, dispatch.cached(kernel.backward, cache)


def convnd_backward(dy, cache, *, input_grad=True):
    """dy (N, K, *S_out) -> (dx, dweight, dbias); dbias is None when the forward had no bias.

    ``input_grad=False`` skips dx (returned as None) where that saves work: the first layer of a network
    needs no gradient for its input, and there col2im is a large share of the backward pass.
    """
    return dispatch.backward(dy, cache, input_grad=input_grad)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error", *,
           algorithm="auto"):
    """1-D convolution: x (N, C, W) -> y (N, K, W_out). See :func:`convnd`."""
    return convnd(x, weight, bias, stride, padding, dilation, groups, fit, name="conv1d", algorithm=algorithm)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error", *,
           algorithm="auto"):
    """2-D convolution: x (N, C, H, W) -> y (N, K, H_out, W_out). See :func:`convnd`.

    >>> import numpy as np
    >>> y, cache = conv2d(np.ones((1, 3, 5, 5), np.float32), np.ones((2, 3, 3, 3), np.float32), padding=1)
    >>> y.shape, float(y[0, 0, 2, 2]), float(y[0, 0, 0, 0])
    ((1, 2, 5, 5), 27.0, 12.0)
    """
    return convnd(x, weight, bias, stride, padding, dilation, groups, fit, name="conv2d", algorithm=algorithm)


def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error", *,
           algorithm="auto"):
    """3-D convolution: x (N, C, D, H, W) -> y (N, K, D_out, H_out, W_out). See :func:`convnd`."""
    return convnd(x, weight, bias, stride, padding, dilation, groups, fit, name="conv3d", algorithm=algorithm)


conv1d_backward = conv2d_backward = conv3d_backward = convnd_backward
