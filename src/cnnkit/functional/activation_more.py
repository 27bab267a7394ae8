"""The activations after AlexNet and VGG, the public face of one kernel each
(:mod:`cnnkit.reference.activation_more`): prelu, selu, celu, gelu, silu, mish, softplus, softsign,
hardtanh, hardsigmoid, hardswish. ``y, cache = f(x, ...)``; ``f_backward(dy, cache)`` gives dx (and
prelu's ``(dx, dweight)``)."""

from cnnkit.reference.activation_more import (
    celu,
    celu_backward,
    gelu,
    gelu_backward,
    hardsigmoid,
    hardsigmoid_backward,
    hardswish,
    hardswish_backward,
    hardtanh,
    hardtanh_backward,
    mish,
    mish_backward,
    prelu,
    prelu_backward,
    selu,
    selu_backward,
    silu,
    silu_backward,
    softplus,
    softplus_backward,
    softsign,
    softsign_backward,
)

__all__ = ["celu", "celu_backward", "gelu", "gelu_backward", "hardsigmoid", "hardsigmoid_backward",
           "hardswish", "hardswish_backward", "hardtanh", "hardtanh_backward", "mish", "mish_backward",
           "prelu", "prelu_backward", "selu", "selu_backward", "silu", "silu_backward", "softplus",
           "softplus_backward", "softsign", "softsign_backward"]
