"""The textbook: one pure, paired forward/backward per op, in plain NumPy, written to be read.

This package is cnnkit's reference implementation of every op, the way the notes derive it and the way
PyTorch keeps ``torch._refs`` beside its fast kernels. Convolution is pad -> im2col -> one matrix
multiply, and its backward is ``dW = dy @ cols^T`` and ``dx = col2im(W^T @ dy)``; pooling is im2col and a
reduction over the window; every other op is a few NumPy expressions next to its derivative.

It is also the *oracle*: every faster kernel in :mod:`cnnkit.fast` has a reference kernel here with the
same signature and return values, and is tested against it. ``cnnkit.functional`` (the public face)
chooses between them; these functions can also be called directly.

The contract, for every op ``f``:

- ``y, cache = f(x, ...)`` and ``f_backward(dy, cache)`` return the gradients (``(dx, dweight, dbias)``
  for ops with parameters); the cache is private to its own backward.
- float32 in -> float32 out, float64 in -> float64 out.
- Imports NumPy, :mod:`cnnkit.geometry` (output sizes, padding, error messages), :mod:`cnnkit.errors` and
  other reference modules only: no threads, no scratch memory, no layout tricks.
"""

from cnnkit.reference.activation import (
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
from cnnkit.reference.conv import (
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
    pad,
    unpad,
)
from cnnkit.reference.conv_transpose import (
    conv_transpose2d,
    conv_transpose2d_backward,
    conv_transposend,
    conv_transposend_backward,
)
from cnnkit.reference.elementwise_losses import (
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_backward,
    l1_loss,
    l1_loss_backward,
    mse_loss,
    mse_loss_backward,
    smooth_l1_loss,
    smooth_l1_loss_backward,
)
from cnnkit.reference.linear import (
    dropout,
    dropout_backward,
    flatten,
    flatten_backward,
    linear,
    linear_backward,
)
from cnnkit.reference.local import (
    locally_connected,
    locally_connected2d,
    locally_connected2d_backward,
    locally_connected_backward,
)
from cnnkit.reference.losses import (
    cross_entropy,
    cross_entropy_backward,
    mse,
    mse_backward,
    multi_margin_loss,
    multi_margin_loss_backward,
    multiclass_svm,
    multiclass_svm_backward,
    nll_loss,
    nll_loss_backward,
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
)
from cnnkit.reference.norm import (
    batch_norm,
    batch_norm_backward,
    local_response_norm,
    local_response_norm_backward,
)
from cnnkit.reference.pool import (
    avg_pool2d,
    avg_pool2d_backward,
    avg_poolnd,
    avg_poolnd_backward,
    binomial_filter,
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
    "elu", "elu_backward", "leaky_relu", "leaky_relu_backward", "relu", "relu6", "relu6_backward",
    "relu_backward", "sigmoid", "sigmoid_backward", "softmax", "softmax_backward", "tanh", "tanh_backward",
    "col2im", "conv1d", "conv1d_backward", "conv2d", "conv2d_backward", "conv3d", "conv3d_backward", "convnd",
    "convnd_backward", "im2col", "pad", "unpad",
    "conv_transpose2d", "conv_transpose2d_backward", "conv_transposend", "conv_transposend_backward",
    "dropout", "dropout_backward", "flatten", "flatten_backward", "linear", "linear_backward",
    "locally_connected", "locally_connected2d", "locally_connected2d_backward", "locally_connected_backward",
    "mse", "mse_backward", "multiclass_svm", "multiclass_svm_backward", "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "batch_norm", "batch_norm_backward", "local_response_norm", "local_response_norm_backward",
    "avg_pool2d", "avg_pool2d_backward", "avg_poolnd", "avg_poolnd_backward", "binomial_filter", "blurnd",
    "blurnd_backward", "global_avg_pool", "global_avg_pool_backward", "global_max_pool",
    "global_max_pool_backward", "lp_pool2d", "lp_pool2d_backward", "lp_poolnd", "lp_poolnd_backward",
    "max_pool1d", "max_pool1d_backward", "max_pool2d", "max_pool2d_backward", "max_poolnd",
    "max_poolnd_backward",
]
__all__ += [
    "log_softmax", "log_softmax_backward", "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_backward", "l1_loss", "l1_loss_backward", "mse_loss",
    "mse_loss_backward", "smooth_l1_loss", "smooth_l1_loss_backward", "cross_entropy",
    "cross_entropy_backward", "multi_margin_loss", "multi_margin_loss_backward", "nll_loss",
    "nll_loss_backward",
]
from cnnkit.reference.activation_more import (  # noqa: E402 -- the activations after AlexNet and VGG
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
from cnnkit.reference.example_norm import (  # noqa: E402 -- normalization within each example
    group_norm,
    group_norm_backward,
    instance_norm,
    instance_norm_backward,
    layer_norm,
    layer_norm_backward,
)

__all__ += ["group_norm", "group_norm_backward", "instance_norm", "instance_norm_backward", "layer_norm",
            "layer_norm_backward"]
from cnnkit.reference.rearrange import (  # noqa: E402 -- ops that move values without computing
    channel_shuffle,
    channel_shuffle_backward,
    pixel_shuffle,
    pixel_shuffle_backward,
    pixel_unshuffle,
    pixel_unshuffle_backward,
    unflatten,
    unflatten_backward,
)
from cnnkit.reference.upsample import interpolate, interpolate_backward  # noqa: E402 -- resampling

__all__ += ["channel_shuffle", "channel_shuffle_backward", "interpolate", "interpolate_backward",
            "pixel_shuffle", "pixel_shuffle_backward", "pixel_unshuffle", "pixel_unshuffle_backward",
            "unflatten", "unflatten_backward"]

from cnnkit.reference.adaptive import (  # noqa: E402 -- pooling to a fixed output size
    adaptive_avg_pool,
    adaptive_avg_pool_backward,
    adaptive_max_pool,
    adaptive_max_pool_backward,
)
from cnnkit.reference.padding import padnd, padnd_backward  # noqa: E402 -- constant/reflect/replicate/circular
from cnnkit.reference.unpool import max_unpool, max_unpool_backward  # noqa: E402 -- max pooling's switches, back

__all__ += ["adaptive_avg_pool", "adaptive_avg_pool_backward", "adaptive_max_pool",
            "adaptive_max_pool_backward", "max_unpool", "max_unpool_backward", "padnd", "padnd_backward"]
