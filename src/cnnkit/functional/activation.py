"""Activations, the public face: element-wise nonlinearities and softmax over one axis.

Each call runs the kernel :func:`cnnkit.fast.dispatch.kernel` picks: :mod:`cnnkit.fast.activation`
(branch-free selections, ReLU in cache-sized chunks on the elementwise threads), or with
``algorithm="reference"`` (or inside ``cnnkit.reference_mode()``) the textbook's of
:mod:`cnnkit.reference.activation`. Every kernel keeps x's dtype; the cache carries its kernel's backward.
"""

from __future__ import annotations

from cnnkit.fast.activation import keep_where, select
from cnnkit.fast.dispatch import backward, run, without_cache
from cnnkit.reference import activation as R
from cnnkit.reference.activation import log_softmax_backward

log_softmax = without_cache(R.log_softmax)  # one kernel: the textbook's

__all__ = ["add", "elu", "elu_backward", "keep_where", "leaky_relu", "leaky_relu_backward", "log_softmax",
           "log_softmax_backward", "relu", "relu6",
           "relu6_backward", "relu_backward", "select", "sigmoid", "sigmoid_backward", "softmax",
           "softmax_backward", "tanh", "tanh_backward"]


def add(a, b, *, out=None, relu=False, algorithm="auto"):
    """a + b, element-wise, then max(0, .) with ``relu=True``: a residual connection's sum and ResNet's
    ReLU after it in one pass. ``out``: where to write (``a`` itself for an in-place sum, as inference
    does with a block's fresh output). The cache's backward gives (dy, dy) (without the ReLU's mask: use
    ``relu=True`` where no backward follows, as Residual does under no_grad).

    >>> import numpy as np
    >>> add(np.array([1.0, -3.0]), np.array([1.0, 1.0]), relu=True)[0].tolist()
    [2.0, 0.0]
    """
    return run("add", algorithm, a, b, out=out, relu=relu)


def relu(x, *, algorithm="auto"):
    """max(0, x), element-wise; NaN stays NaN; the gradient at 0 is 0, as in PyTorch. Shape: any.

    >>> import numpy as np
    >>> relu(np.array([-1.0, 0.0, 2.0]))[0].tolist()
    [0.0, 0.0, 2.0]
    """
    return run("relu", algorithm, x)


def relu6(x, *, algorithm="auto"):
    """min(max(0, x), 6), element-wise (MobileNet). Shape: any."""
    return run("relu6", algorithm, x)


def leaky_relu(x, negative_slope=0.01, *, algorithm="auto"):
    """x where x > 0, else negative_slope * x. Shape: any."""
    return run("leaky_relu", algorithm, x, negative_slope)


def elu(x, alpha=1.0, *, algorithm="auto"):
    """x where x > 0, else alpha * (exp(x) - 1). Shape: any."""
    return run("elu", algorithm, x, alpha)


def sigmoid(x, *, algorithm="auto"):
    """1 / (1 + exp(-x)), computed without overflow. Shape: any."""
    return run("sigmoid", algorithm, x)


def tanh(x, *, algorithm="auto"):
    """Hyperbolic tangent, element-wise. Shape: any."""
    return run("tanh", algorithm, x)


def softmax(x, dim=1, *, algorithm="auto"):
    """exp(x) / sum(exp(x)) along ``dim``, shifted by the maximum so that it cannot overflow.

    Shape: any -> the same shape; every slice along ``dim`` sums to 1.
    """
    return run("softmax", algorithm, x, dim)


relu_backward = relu6_backward = leaky_relu_backward = elu_backward = backward
sigmoid_backward = tanh_backward = softmax_backward = backward
