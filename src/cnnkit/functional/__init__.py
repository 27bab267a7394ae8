"""Pure kernels on NumPy arrays: ``f(x, params, hyper) -> (y, cache)`` and ``f_backward(dy, cache)``.

No state and no parameters objects: easy to test and to replace with a faster kernel behind the same
signature.
"""

from cnnkit.functional.activation import (
    add,
    elu,
    elu_backward,
    leaky_relu,
    leaky_relu_backward,
    log_softmax,
    log_softmax_backward,
    relu,
    relu6,
    relu6_backward,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    softmax,
    softmax_backward,
    tanh,
    tanh_backward,
)
from cnnkit.functional.conv import (
    col2im,
    conv1d,
    conv1d_backward,
    conv2d,
    conv2d_backward,
    conv3d,
    conv3d_backward,
    convnd,
    convnd_backward,
    im2col,
)
from cnnkit.functional.conv_transpose import (
    conv_transpose2d,
    conv_transpose2d_backward,
    conv_transposend,
    conv_transposend_backward,
)
from cnnkit.functional.linear import (
    dropout,
    dropout_backward,
    flatten,
    flatten_backward,
    linear,
    linear_backward,
)
from cnnkit.functional.local import (
    locally_connected,
    locally_connected2d,
    locally_connected2d_backward,
    locally_connected_backward,
)
from cnnkit.functional.norm import (
    batch_norm,
    batch_norm_backward,
    local_response_norm,
    local_response_norm_backward,
)
from cnnkit.functional.pool import (
    avg_pool2d,
    avg_pool2d_backward,
    avg_poolnd,
    avg_poolnd_backward,
    blurnd,
    blurnd_backward,
    global_avg_pool,
    global_avg_pool_backward,
    global_max_pool,
    global_max_pool_backward,
    lp_pool2d,
    lp_pool2d_backward,
    lp_poolnd,
    lp_poolnd_backward,
    max_pool1d,
    max_pool1d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_poolnd,
    max_poolnd_backward,
)

__all__ = [
    "col2im", "conv1d", "conv1d_backward", "conv2d", "conv2d_backward", "conv3d", "conv3d_backward",
    "convnd", "convnd_backward", "im2col",
]
__all__ += [
    "add", "batch_norm", "batch_norm_backward", "dropout", "dropout_backward", "elu", "elu_backward",
    "flatten", "flatten_backward", "leaky_relu", "leaky_relu_backward", "linear", "linear_backward",
    "local_response_norm", "local_response_norm_backward", "relu", "relu6", "relu6_backward", "relu_backward",
    "sigmoid", "sigmoid_backward", "softmax", "softmax_backward", "tanh", "tanh_backward",
]
__all__ += [
    "avg_pool2d", "avg_pool2d_backward", "avg_poolnd", "avg_poolnd_backward", "blurnd", "blurnd_backward",
    "conv_transpose2d", "conv_transpose2d_backward", "conv_transposend", "conv_transposend_backward",
    "global_avg_pool", "global_avg_pool_backward", "global_max_pool", "global_max_pool_backward",
    "locally_connected", "locally_connected2d", "locally_connected2d_backward", "locally_connected_backward",
    "lp_pool2d", "lp_pool2d_backward", "lp_poolnd", "lp_poolnd_backward", "max_pool1d", "max_pool1d_backward",
    "max_pool2d", "max_pool2d_backward", "max_poolnd", "max_poolnd_backward",
]
__all__ += ["log_softmax", "log_softmax_backward"]
from cnnkit.functional.losses import (  # noqa: E402 -- PyTorch's losses, as functions
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_backward,
    cross_entropy,
    cross_entropy_backward,
    l1_loss,
    l1_loss_backward,
    mse_loss,
    mse_loss_backward,
    multi_margin_loss,
    multi_margin_loss_backward,
    nll_loss,
    nll_loss_backward,
    smooth_l1_loss,
    smooth_l1_loss_backward,
)

__all__ += [
    "binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_backward", "cross_entropy",
    "cross_entropy_backward", "l1_loss", "l1_loss_backward", "mse_loss", "mse_loss_backward",
    "multi_margin_loss", "multi_margin_loss_backward", "nll_loss", "nll_loss_backward", "smooth_l1_loss",
    "smooth_l1_loss_backward",
]
from cnnkit.functional.activation_more import (  # noqa: E402 -- the activations after AlexNet and VGG
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

__all__ += [
    "celu", "celu_backward", "gelu", "gelu_backward", "hardsigmoid", "hardsigmoid_backward", "hardswish",
    "hardswish_backward", "hardtanh", "hardtanh_backward", "mish", "mish_backward", "prelu", "prelu_backward",
    "selu", "selu_backward", "silu", "silu_backward", "softplus", "softplus_backward", "softsign",
    "softsign_backward",
]
from cnnkit.functional.example_norm import (  # noqa: E402 -- normalization within each example
    group_norm,
    group_norm_backward,
    instance_norm,
    instance_norm_backward,
    layer_norm,
    layer_norm_backward,
)

__all__ += ["group_norm", "group_norm_backward", "instance_norm", "instance_norm_backward", "layer_norm",
            "layer_norm_backward"]
from cnnkit.functional.rearrange import (  # noqa: E402 -- ops that move values without computing
    channel_shuffle,
    channel_shuffle_backward,
    pixel_shuffle,
    pixel_shuffle_backward,
    pixel_unshuffle,
    pixel_unshuffle_backward,
    unflatten,
    unflatten_backward,
)
from cnnkit.functional.upsample import interpolate, interpolate_backward  # noqa: E402 -- resampling

__all__ += ["channel_shuffle", "channel_shuffle_backward", "interpolate", "interpolate_backward",
            "pixel_shuffle", "pixel_shuffle_backward", "pixel_unshuffle", "pixel_unshuffle_backward",
            "unflatten", "unflatten_backward"]
