"""The activations after AlexNet and VGG, the public face of one kernel each
(:mod:`cnnkit.reference.activation_more`): prelu, selu, celu, gelu, silu, mish, softplus, softsign,
hardtanh, hardsigmoid, hardswish. ``y, cache = f(x, ...)``; ``f_backward(dy, cache)`` gives dx (and
prelu's ``(dx, dweight)``)."""

from cnnkit.fast.dispatch import without_cache
from cnnkit.reference import activation_more as R
from cnnkit.reference.activation_more import (
    celu_backward,
    gelu_backward,
    hardsigmoid_backward,
    hardswish_backward,
    hardtanh_backward,
    mish_backward,
    prelu_backward,
    selu_backward,
    silu_backward,
    softplus_backward,
    softsign_backward,
)

# Under no_grad each face returns (y, None): no backward follows, so nothing is kept for one.
celu = without_cache(R.celu)
gelu = without_cache(R.gelu)
hardsigmoid = without_cache(R.hardsigmoid)
hardswish = without_cache(R.hardswish)
hardtanh = without_cache(R.hardtanh)
mish = without_cache(R.mish)
prelu = without_cache(R.prelu)
selu = without_cache(R.selu)
silu = without_cache(R.silu)
softplus = without_cache(R.softplus)
softsign = without_cache(R.softsign)

__all__ = ["celu", "celu_backward", "gelu", "gelu_backward", "hardsigmoid", "hardsigmoid_backward",
           "hardswish", "hardswish_backward", "hardtanh", "hardtanh_backward", "mish", "mish_backward",
           "prelu", "prelu_backward", "selu", "selu_backward", "silu", "silu_backward", "softplus",
           "softplus_backward", "softsign", "softsign_backward"]
