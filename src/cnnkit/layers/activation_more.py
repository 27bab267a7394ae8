"""The activation layers of the ConvNets after AlexNet and VGG, PyTorch's names and arguments: PReLU, SELU,
CELU, GELU, SiLU, Mish, Softplus, Softsign, Hardtanh, Hardsigmoid, Hardswish; and LogSoftmax.

Each takes any shape and keeps it and raises as every activation does (see :mod:`.activation`); kernels in
:mod:`cnnkit.functional.activation_more`.
"""

from __future__ import annotations

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.functional import activation as F
from cnnkit.functional import activation_more as G
from cnnkit.layers.activation import _AlongDim, _Elementwise, check_float_array, finite_real
from cnnkit.layers.base import Layer, Parameter
from cnnkit.layers.conv import positive_int


def _nonzero_real(value, name: str, owner: str, why: str) -> float:
    """:func:`finite_real`, and ValueError (saying ``why``) for 0."""
    value = finite_real(value, name, owner)
    if value == 0:
        raise ValueError(f"{owner}: Received {name}=0; expected a nonzero number ({why}).")
    return value


class PReLU(Layer):
    """x for x > 0, ``weight * x`` otherwise, with the slope learned: one shared or one per channel.

    He et al. (2015) learned the leak of a leaky ReLU; ``torch.nn.PReLU``'s parameter is ``weight``.

    Shape: any (N, C, *) -> the same shape. With ``num_parameters = C`` the input needs C channels on
    axis 1, as in PyTorch (a 1-D input has one channel).

    Args:
        num_parameters: 1 (default: one slope for all) or the number of channels.
        init: the slopes' initial value (default 0.25).

    Raises:
        ValueError/TypeError: num_parameters not a positive int, init not a finite number. ShapeError: an
        input without num_parameters channels. TypeError: x not a floating-point array.

    >>> PReLU()(np.array([[-2.0, 3.0]])).tolist()
    [[-0.5, 3.0]]
    >>> PReLU(64).weight.shape
    (64,)
    """

    def __init__(self, num_parameters=1, init=0.25):
        self.num_parameters = positive_int(num_parameters, "num_parameters", "PReLU")
        self.init = finite_real(init, "init", "PReLU")
        self.weight = Parameter(np.full(self.num_parameters, self.init, np.float32))

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}" if self.num_parameters > 1 else ""

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if self.num_parameters > 1 and (len(shape) < 2 or shape[1] != self.num_parameters):
            raise ShapeError(f"{self!r}: expected {self.num_parameters} channels on axis 1 (one slope each), "
                             f"received shape {shape}.")
        return shape

    def forward(self, x):
        check_float_array(self, x)
        self.output_shape(x.shape)
        y, self._cache = G.prelu(x, self.weight.data)
        return y

    def backward(self, dy):
        dx, dweight = G.prelu_backward(dy, self._pop_cache())
        self.weight.grad += dweight.reshape(self.weight.shape)
        return dx


class SELU(_Elementwise):
    """``scale * (x if x > 0 else alpha * (exp(x) - 1))`` with alpha = 1.6733, scale = 1.0507: activations
    that keep mean 0 and variance 1 through deep stacks (Klambauer et al. 2017). Shape: unchanged.

    Args: none. Raises: TypeError for a non-float x, RuntimeError for backward before forward.

    >>> SELU()(np.array([0.0, 1.0])).round(4).tolist()
    [0.0, 1.0507]
    """

    kernels = (G.selu, G.selu_backward)


class CELU(_Elementwise):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``: ELU with slope 1 at 0 for every alpha.
    Shape: unchanged.

    Args:
        alpha: the negative side saturates at -alpha (default 1.0; not 0).

    Raises:
        TypeError/ValueError: alpha not a number, not finite, or 0.

    >>> CELU(2.0)(np.array([-1.0, 2.0])).round(4).tolist()
    [-0.7869, 2.0]
    """

    kernels, arguments = (G.celu, G.celu_backward), ("alpha",)

    def __init__(self, alpha=1.0):
        self.alpha = _nonzero_real(alpha, "alpha", "CELU", "exp(x / alpha) is taken")


class GELU(_Elementwise):
    """``x * Phi(x)``, Phi the standard normal CDF: the activation of transformers and ConvNeXt.
    Shape: unchanged.

    Args:
        approximate: "none" (default, exact with erf) or "tanh" (the tanh formula of the GELU paper).

    Raises:
        ValueError: another approximate.

    >>> GELU()(np.array([-1.0, 0.0, 1.0])).round(4).tolist()
    [-0.1587, 0.0, 0.8413]
    """

    kernels, arguments = (G.gelu, G.gelu_backward), ("approximate",)

    def __init__(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: Received approximate={approximate!r}; expected 'none' (exact) or "
                             f"'tanh'.")
        self.approximate = approximate


class SiLU(_Elementwise):
    """``x * sigmoid(x)``, also called Swish (EfficientNet's activation). Shape: unchanged.

    Args: none. Raises: TypeError for a non-float x, RuntimeError for backward before forward.

    >>> SiLU()(np.array([0.0, 1.0])).round(4).tolist()
    [0.0, 0.7311]
    """

    kernels = (G.silu, G.silu_backward)


class Mish(_Elementwise):
    """``x * tanh(softplus(x))`` (YOLOv4's activation). Shape: unchanged.

    Args: none. Raises: TypeError for a non-float x, RuntimeError for backward before forward.

    >>> Mish()(np.array([0.0, 1.0])).round(4).tolist()
    [0.0, 0.8651]
    """

    kernels = (G.mish, G.mish_backward)


class Softplus(_Elementwise):
    """``log(1 + exp(beta x)) / beta``, a smooth ReLU; x itself where ``beta x > threshold``.
    Shape: unchanged.

    Args:
        beta: sharpness (default 1.0; not 0). threshold: where it becomes linear (default 20.0).

    Raises:
        TypeError/ValueError: beta or threshold not finite numbers, beta 0.

    >>> Softplus()(np.array([0.0, 30.0])).round(4).tolist()
    [0.6931, 30.0]
    """

    kernels, arguments = (G.softplus, G.softplus_backward), ("beta", "threshold")

    def __init__(self, beta=1.0, threshold=20.0):
        self.beta = _nonzero_real(beta, "beta", "Softplus", "the result is divided by beta")
        self.threshold = finite_real(threshold, "threshold", "Softplus")


class Softsign(_Elementwise):
    """``x / (1 + |x|)``. Shape: unchanged.

    Args: none. Raises: TypeError for a non-float x, RuntimeError for backward before forward.

    >>> Softsign()(np.array([-3.0, 1.0])).tolist()
    [-0.75, 0.5]
    """

    kernels = (G.softsign, G.softsign_backward)


class Hardtanh(_Elementwise):
    """x clipped to ``[min_val, max_val]``; the gradient passes strictly inside. Shape: unchanged.

    Args:
        min_val=-1.0, max_val=1.0 (min_val <= max_val).

    Raises:
        TypeError/ValueError: bounds not finite numbers, or min_val > max_val.

    >>> Hardtanh()(np.array([-2.0, 0.5, 3.0])).tolist()
    [-1.0, 0.5, 1.0]
    """

    kernels, arguments = (G.hardtanh, G.hardtanh_backward), ("min_val", "max_val")

    def __init__(self, min_val=-1.0, max_val=1.0):
        self.min_val = finite_real(min_val, "min_val", "Hardtanh")
        self.max_val = finite_real(max_val, "max_val", "Hardtanh")
        if self.min_val > self.max_val:
            raise ValueError(f"Hardtanh: Received min_val={min_val!r}, max_val={max_val!r}; expected "
                             f"min_val <= max_val.")


class Hardsigmoid(_Elementwise):
    """``relu6(x + 3) / 6``: 0 below -3, 1 above 3, linear between (MobileNet-V3). Shape: unchanged.

    Args: none. Raises: TypeError for a non-float x, RuntimeError for backward before forward.

    >>> Hardsigmoid()(np.array([-4.0, 0.0, 1.5])).tolist()
    [0.0, 0.5, 0.75]
    """

    kernels = (G.hardsigmoid, G.hardsigmoid_backward)


class Hardswish(_Elementwise):
    """``x * relu6(x + 3) / 6``: MobileNet-V3's piecewise-polynomial SiLU. Shape: unchanged.

    Args: none. Raises: TypeError for a non-float x, RuntimeError for backward before forward.

    >>> Hardswish()(np.array([-4.0, 1.0, 5.0])).round(4).tolist()
    [-0.0, 0.6667, 5.0]
    """

    kernels = (G.hardswish, G.hardswish_backward)


class LogSoftmax(_AlongDim):
    """``log(softmax(x))`` along ``dim``, computed without ever taking log(0): the log-probabilities that
    :class:`cnnkit.losses.NLLLoss` takes.

    Shape: unchanged; for (N, C) or (N, C, H, W) scores the default ``dim=1`` normalises over the classes.

    Args:
        dim: the axis to normalise over (default 1, negative values count from the end).

    Raises:
        TypeError: dim is not an int. ShapeError: the input has no axis ``dim``.

    >>> np.exp(LogSoftmax()(np.zeros((1, 4)))).tolist()
    [[0.25, 0.25, 0.25, 0.25]]
    """

    kernels = (F.log_softmax, F.log_softmax_backward)

    def __init__(self, dim=1):
        self._set_dim(dim)
