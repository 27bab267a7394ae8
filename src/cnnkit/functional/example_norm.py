"""Normalization within each example, the public face of one kernel each
(:mod:`cnnkit.reference.example_norm`): group_norm, instance_norm, layer_norm; each backward gives
``(dx, dweight, dbias)``."""

from cnnkit.fast.dispatch import without_cache
from cnnkit.reference import example_norm as R
from cnnkit.reference.example_norm import (
    group_norm_backward,
    instance_norm_backward,
    layer_norm_backward,
)

# Under no_grad each face returns (y, None): no backward follows, so nothing is kept for one.
group_norm = without_cache(R.group_norm)
instance_norm = without_cache(R.instance_norm)
layer_norm = without_cache(R.layer_norm)

__all__ = ["group_norm", "group_norm_backward", "instance_norm", "instance_norm_backward", "layer_norm",
           "layer_norm_backward"]
