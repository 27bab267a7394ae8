"""Locally-connected layers, the public face: one kernel, the textbook's (:mod:`cnnkit.reference.local`).

A convolution without parameter sharing: every output position has its own filters. Under
``cnnkit.no_grad()`` the forward returns ``None`` as its cache.
"""

from cnnkit.fast.dispatch import without_cache
from cnnkit.reference.local import locally_connected as _locally_connected
from cnnkit.reference.local import locally_connected2d as _locally_connected2d
from cnnkit.reference.local import locally_connected2d_backward, locally_connected_backward

__all__ = ["locally_connected", "locally_connected2d", "locally_connected2d_backward",
           "locally_connected_backward"]

locally_connected = without_cache(_locally_connected)
locally_connected2d = without_cache(_locally_connected2d)
