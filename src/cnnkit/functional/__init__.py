"""Pure kernels on NumPy arrays: ``f(x, params, hyper) -> (y, cache)`` and ``f_backward(dy, cache)``.

No state and no parameters objects: easy to test and to replace with a faster kernel behind the same
signature.
"""

from cnnkit.functional.activation import (
    elu,
    elu_backward,
    leaky_relu,
    leaky_relu_backward,
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
from cnnkit.functional.linear import (
    dropout,
    dropout_backward,
    flatten,
    flatten_backward,
    linear,
    linear_backward,
)
from cnnkit.functional.norm import (
    batch_norm,
    batch_norm_backward,
    local_response_norm,
    local_response_norm_backward,
)

__all__ = [
    "col2im", "conv1d", "conv1d_backward", "conv2d", "conv2d_backward", "conv3d", "conv3d_backward",
    "convnd", "convnd_backward", "im2col",
]
__all__ += [
    "batch_norm", "batch_norm_backward", "dropout", "dropout_backward", "elu", "elu_backward", "flatten",
    "flatten_backward", "leaky_relu", "leaky_relu_backward", "linear", "linear_backward",
    "local_response_norm", "local_response_norm_backward", "relu", "relu6", "relu6_backward", "relu_backward",
    "sigmoid", "sigmoid_backward", "softmax", "softmax_backward", "tanh", "tanh_backward",
]
