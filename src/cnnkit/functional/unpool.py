"""Max unpooling and max pooling's indices, the public face of :mod:`cnnkit.reference.unpool` (one kernel: a
scatter into zeros and its gather)."""

from cnnkit.fast.dispatch import without_cache
from cnnkit.reference import unpool as R
from cnnkit.reference.unpool import (
    indices_from_switches,
    max_unpool_backward,
    unpool_output_size,
)

# Under no_grad each face returns (y, None): no backward follows, so nothing is kept for one.
max_unpool = without_cache(R.max_unpool)

__all__ = ["indices_from_switches", "max_unpool", "max_unpool_backward", "unpool_output_size"]
