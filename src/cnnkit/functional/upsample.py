"""Resampling, the public face of one kernel (:mod:`cnnkit.reference.upsample`): interpolate with PyTorch's
modes and coordinate rules (nearest, nearest-exact, linear, bilinear, trilinear; align_corners both ways)."""

from cnnkit.fast.dispatch import without_cache
from cnnkit.reference import upsample as R
from cnnkit.reference.upsample import interpolate_backward

# Under no_grad each face returns (y, None): no backward follows, so nothing is kept for one.
interpolate = without_cache(R.interpolate)

__all__ = ["interpolate", "interpolate_backward"]
