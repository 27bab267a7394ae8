"""Normalization, the public face: batch norm and local response norm (LRN has one kernel, the reference).

Batch norm runs the kernel :func:`cnnkit.fast.dispatch.kernel` picks: :mod:`cnnkit.fast.norm` (cache-sized
batch chunks, one multiply-add with fixed statistics), or with ``algorithm="reference"`` (or inside
``cnnkit.reference_mode()``) the textbook's of :mod:`cnnkit.reference.norm`. The cache carries
its kernel's backward; ``cache.data["batch_mean"]`` and ``["batch_var"]`` hold the batch statistics.
"""

from __future__ import annotations

from cnnkit.fast.dispatch import backward, run, without_cache
from cnnkit.reference import norm as R
from cnnkit.reference.norm import local_response_norm_backward

local_response_norm = without_cache(R.local_response_norm)  # one kernel: the textbook's

__all__ = ["batch_norm", "batch_norm_backward", "local_response_norm", "local_response_norm_backward"]


def batch_norm(x, weight=None, bias=None, mean=None, var=None, eps=1e-5, *, algorithm="auto"):
    """Normalise each channel, then scale and shift: ``y = (x - mean) / sqrt(var + eps) * weight + bias``.

    With ``mean``/``var`` None the batch's own statistics are used (training, the biased variance over the
    M = N * prod(S) values of each channel); given, they are constants (evaluation).

    Shape: x (N, C) or (N, C, *S); weight, bias, mean, var (C,) or None -> y like x.

    >>> import numpy as np
    >>> y, cache = batch_norm(np.array([[1.0], [3.0]]))
    >>> y.round(3).tolist(), float(cache.data["batch_mean"][0]), float(cache.data["batch_var"][0])
    ([[-1.0], [1.0]], 2.0, 1.0)
    """
    return run("batch_norm", algorithm, x, weight, bias, mean, var, eps)


batch_norm_backward = backward
