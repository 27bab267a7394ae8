"""Max unpooling and max pooling's indices, the public face of :mod:`cnnkit.reference.unpool` (one kernel: a
scatter into zeros and its gather)."""

from cnnkit.reference.unpool import (
    indices_from_switches,
    max_unpool,
    max_unpool_backward,
    unpool_output_size,
)

__all__ = ["indices_from_switches", "max_unpool", "max_unpool_backward", "unpool_output_size"]
