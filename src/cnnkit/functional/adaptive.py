"""Adaptive pooling, the public face: PyTorch's ``adaptive_avg_pool`` / ``adaptive_max_pool`` names.

There is one kernel per op, the readable one in :mod:`cnnkit.reference.adaptive` (a matrix per axis for
the average, a gather and an argmax for the max): the head of a network pools a small map, where a faster
kernel would save nothing worth its code. A fast kernel would go behind :mod:`cnnkit.fast.dispatch`.
"""

from cnnkit.fast.dispatch import without_cache
from cnnkit.reference import adaptive as R
from cnnkit.reference.adaptive import (
    adaptive_avg_pool_backward,
    adaptive_max_pool_backward,
    adaptive_output_size,
    adaptive_windows,
    check_output_size,
)

# Under no_grad each face returns (y, None): no backward follows, so nothing is kept for one.
adaptive_avg_pool = without_cache(R.adaptive_avg_pool)
adaptive_max_pool = without_cache(R.adaptive_max_pool)

__all__ = ["adaptive_avg_pool", "adaptive_avg_pool_backward", "adaptive_max_pool",
           "adaptive_max_pool_backward", "adaptive_output_size", "adaptive_windows", "check_output_size"]
