"""Normalization within each example, the public face of one kernel each
(:mod:`cnnkit.reference.example_norm`): group_norm, instance_norm, layer_norm; each backward gives
``(dx, dweight, dbias)``."""

from cnnkit.reference.example_norm import (
    group_norm,
    group_norm_backward,
    instance_norm,
    instance_norm_backward,
    layer_norm,
    layer_norm_backward,
)

__all__ = ["group_norm", "group_norm_backward", "instance_norm", "instance_norm_backward", "layer_norm",
           "layer_norm_backward"]
