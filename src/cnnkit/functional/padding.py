"""Padding, the public face: ``padnd(x, pads, mode, value)`` with PyTorch's four modes.

One kernel, the readable one in :mod:`cnnkit.reference.padding` (a gather per axis, its adjoint for the
gradient): padding is a copy, and NumPy's ``take`` already copies at memory speed.
"""

from cnnkit.fast.dispatch import without_cache
from cnnkit.reference import padding as R
from cnnkit.reference.padding import (
    MODES,
    check_mode,
    check_pads,
    padnd_backward,
    source_indices,
    torch_order,
)

# Under no_grad each face returns (y, None): no backward follows, so nothing is kept for one.
padnd = without_cache(R.padnd)

__all__ = ["MODES", "check_mode", "check_pads", "padnd", "padnd_backward", "source_indices", "torch_order"]
