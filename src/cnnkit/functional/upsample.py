"""Resampling, the public face of one kernel (:mod:`cnnkit.reference.upsample`): interpolate with PyTorch's
modes and coordinate rules (nearest, nearest-exact, linear, bilinear, trilinear; align_corners both ways)."""

from cnnkit.reference.upsample import interpolate, interpolate_backward

__all__ = ["interpolate", "interpolate_backward"]
