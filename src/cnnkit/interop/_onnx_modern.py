"""ONNX export of the layers of the ConvNets after AlexNet and VGG (activations, per-example
normalization, upsampling, rearranging), added to ``cnnkit.interop.onnx.EMITTERS``.

Where the export's opset has the operator it is used (PRelu, Selu, Celu, Softsign, HardSigmoid,
HardSwish, LogSoftmax; Gelu from opset 20, Mish from 18); otherwise the layer is spelled out in basic
operators with PyTorch's exact definition (GELU with Erf, SiLU as x * Sigmoid(x), Softplus with its
threshold as a Where).
"""

from __future__ import annotations

import math

from cnnkit.interop.onnx import DEFAULT_OPSET, EMITTERS, _key


def _opset(g):
    return getattr(g, "opset", DEFAULT_OPSET)


def _prelu(g, layer, prefix, x, shape):
    # ONNX broadcasts the slope from the right: (C, 1, ..., 1) puts one slope on each channel of axis 1.
    slope = layer.weight.data
    if layer.num_parameters > 1:
        slope = slope.reshape(-1, *(1,) * (len(shape) - 2))
    return g.node("PRelu", [x, g.constant(slope, _key(prefix, "weight"))], prefix or "prelu")


def _unary(op, **attrs):
    def emit(g, layer, prefix, x, shape):
        values = {k: (v(layer) if callable(v) else v) for k, v in attrs.items()}
        return g.node(op, [x], prefix or op.lower(), **values)
    return emit


def _mul(g, a, b, hint):
    return g.node("Mul", [a, b], hint)


def _gelu(g, layer, prefix, x, shape):
    if _opset(g) >= 20:
        return g.node("Gelu", [x], prefix or "gelu", approximate=layer.approximate)
    if layer.approximate == "tanh":
        cube = g.node("Mul", [g.node("Mul", [x, x], _key(prefix, "square")), x], _key(prefix, "cube"))
        cube = _mul(g, cube, g.constant(0.044715, _key(prefix, "c")), _key(prefix, "cx3"))
        inner = g.node("Add", [x, cube], _key(prefix, "inner"))
        inner = _mul(g, inner, g.constant(math.sqrt(2 / math.pi), _key(prefix, "k")), _key(prefix, "u"))
        gate = g.node("Tanh", [inner], _key(prefix, "tanh"))
    else:
        scaled = _mul(g, x, g.constant(1 / math.sqrt(2), _key(prefix, "inv_sqrt2")), _key(prefix, "scaled"))
        gate = g.node("Erf", [scaled], _key(prefix, "erf"))
    one_plus = g.node("Add", [gate, g.constant(1.0, _key(prefix, "one"))], _key(prefix, "one_plus"))
    half = _mul(g, one_plus, g.constant(0.5, _key(prefix, "half")), _key(prefix, "cdf"))
    return _mul(g, x, half, prefix or "gelu")


def _silu(g, layer, prefix, x, shape):
    return _mul(g, x, g.node("Sigmoid", [x], _key(prefix, "sigmoid")), prefix or "silu")


def _mish(g, layer, prefix, x, shape):
    if _opset(g) >= 18:
        return g.node("Mish", [x], prefix or "mish")
    gate = g.node("Tanh", [g.node("Softplus", [x], _key(prefix, "softplus"))], _key(prefix, "tanh"))
    return _mul(g, x, gate, prefix or "mish")


def _softplus(g, layer, prefix, x, shape):
    z = x if layer.beta == 1 else _mul(g, x, g.constant(layer.beta, _key(prefix, "beta")), _key(prefix, "z"))
    smooth = g.node("Softplus", [z], _key(prefix, "softplus"))
    if layer.beta != 1:
        beta = g.constant(layer.beta, _key(prefix, "beta_div"))
        smooth = g.node("Div", [smooth, beta], _key(prefix, "smooth"))
    threshold = g.constant(layer.threshold, _key(prefix, "threshold"))
    linear = g.node("Greater", [z, threshold], _key(prefix, "linear"))  # PyTorch's switch to x itself
    return g.node("Where", [linear, x, smooth], prefix or "softplus")


def _hardtanh(g, layer, prefix, x, shape):
    low, high = g.constant(layer.min_val, _key(prefix, "min")), g.constant(layer.max_val, _key(prefix, "max"))
    return g.node("Clip", [x, low, high], prefix or "hardtanh")


EMITTERS.update({
    "PReLU": _prelu,
    "SELU": _unary("Selu", alpha=1.6732632423543772, gamma=1.0507009873554805),
    "CELU": _unary("Celu", alpha=lambda m: float(m.alpha)),
    "GELU": _gelu, "SiLU": _silu, "Mish": _mish, "Softplus": _softplus, "Softsign": _unary("Softsign"),
    "Hardtanh": _hardtanh, "Hardsigmoid": _unary("HardSigmoid", alpha=1 / 6, beta=0.5),
    "Hardswish": _unary("HardSwish"), "LogSoftmax": _unary("LogSoftmax", axis=lambda m: int(m.dim)),
})
