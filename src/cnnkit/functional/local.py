"""Locally-connected layers, the public face: one kernel, the textbook's (:mod:`cnnkit.reference.local`).

A convolution without parameter sharing: every output position has its own filters.
"""

from cnnkit.reference.local import (
    locally_connected,
    locally_connected2d,
    locally_connected2d_backward,
    locally_connected_backward,
)

__all__ = ["locally_connected", "locally_connected2d", "locally_connected2d_backward",
           "locally_connected_backward"]
