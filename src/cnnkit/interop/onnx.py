"""Export a cnnkit model to ONNX, built layer by layer with the ``onnx`` package's helper API.

Each layer writes its ONNX nodes directly (no tracing, no torch): Conv2d is one ``Conv`` node with
explicit begin/end ``pads``, Linear a ``Gemm``, a Residual an ``Add`` after its branches, and so on.
Weights become initializers named by their state-dict keys (``features.0.weight``). The graph is the
inference network (dropout is the identity, batch norm uses its running statistics), takes NCHW float32
input with a dynamic batch dimension, and is checked with ``onnx.checker`` before it is written.

Spatial sizes are fixed by ``input_shape``: cnnkit's ``fit="pad"`` and asymmetric padding are exact
``pads`` for that size (ONNX rounds down, which is ``fit="crop"``).

    net = cnnkit.models.get("lenet5")
    export(net, "lenet5.onnx", input_shape=(1, 28, 28))
    run("lenet5.onnx", x)                       # onnxruntime's output, equal to net.eval()(x)
"""

from __future__ import annotations

import math
import os

import numpy as np

from cnnkit.geometry import conv_geometry, window_geometry
from cnnkit.layers import base

INSTALL_HINT = 'ONNX export needs the onnx package (and onnxruntime to run it): pip install "cnnkit[onnx]".'
DEFAULT_OPSET = 17


def require_onnx():
    try:
        import onnx
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return onnx


class _Graph:
    """Nodes and initializers being collected, with unique value names."""

    def __init__(self, onnx):
        self.onnx, self.helper = onnx, onnx.helper
        self.nodes, self.initializers, self.used = [], [], set()

    def name(self, hint: str) -> str:
        base_name, i = hint or "value", 0
        name = base_name
        while name in self.used:
            i += 1
            name = f"{base_name}_{i}"
        self.used.add(name)
        return name

    def constant(self, array, hint: str, dtype=np.float32) -> str:
        name = self.name(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array, dtype=dtype), name))
        return name

    def node(self, op: str, inputs, hint: str, **attrs) -> str:
        out = self.name(hint)
        self.nodes.append(self.helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def reshape(self, x: str, target, hint: str) -> str:
        """Reshape to ``target``; a 0 copies that axis (the dynamic batch size)."""
        return self.node("Reshape", [x, self.constant(target, hint + "_shape", np.int64)], hint)


def _key(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _pads(pairs):
    """cnnkit's ((before, after) per axis) -> ONNX's [x1_begin, x2_begin, ..., x1_end, x2_end, ...]."""
    return [lo for lo, _ in pairs] + [hi for _, hi in pairs]


def _window_pads(layer, spatial, dilation=None):
    dilation = dilation or getattr(layer, "dilation", (1,) * len(spatial))
    return tuple(window_geometry(n, k, s, p, d, layer.fit, name=repr(layer))[1:]
                 for n, k, s, p, d in zip(spatial, layer.kernel_size, layer.stride, layer.padding, dilation,
                                          strict=True))


# -- one function per layer type: (graph, layer, state-dict prefix, input name, input shape) -> output name

def _conv(g, layer, prefix, x, shape):
    _, pads = conv_geometry(shape[2:], layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                            layer.fit, name=repr(layer))
    inputs = [x, g.constant(layer.weight.data, _key(prefix, "weight"))]
    if layer.bias is not None:
        inputs.append(g.constant(layer.bias.data, _key(prefix, "bias")))
    return g.node("Conv", inputs, prefix or "conv", kernel_shape=list(layer.kernel_size),
                  strides=list(layer.stride), dilations=list(layer.dilation), group=layer.groups,
                  pads=_pads(pads))


def _conv_transpose(g, layer, prefix, x, shape):
    inputs = [x, g.constant(layer.weight.data, _key(prefix, "weight"))]
    if layer.bias is not None:
        inputs.append(g.constant(layer.bias.data, _key(prefix, "bias")))
    return g.node("ConvTranspose", inputs, prefix or "conv_transpose", kernel_shape=list(layer.kernel_size),
                  strides=list(layer.stride), dilations=list(layer.dilation), group=layer.groups,
                  pads=_pads(layer.padding), output_padding=list(layer.output_padding))


def _blur(g, layer, prefix, x, shape):
    _, pads = conv_geometry(shape[2:], layer.kernel_size, layer.stride, layer.padding, (1, 1), layer.fit,
                            name=repr(layer))
    kernel = np.broadcast_to(layer.filter, (layer.channels, 1, *layer.filter.shape))
    return g.node("Conv", [x, g.constant(kernel, _key(prefix, "filter"))], prefix or "blur",
                  kernel_shape=list(layer.filter.shape), strides=list(layer.stride), group=layer.channels,
                  pads=_pads(pads))


def _locally_connected(g, layer, prefix, x, shape):
    # im2col as a convolution with one-hot filters, then one dot product per output position (Einsum).
    _, pads = conv_geometry(shape[2:], layer.kernel_size, layer.stride, layer.padding, (1, 1), layer.fit,
                            name=repr(layer))
    K, H_out, W_out, C = layer.weight.shape[:4]
    taps = C * math.prod(layer.kernel_size)
    one_hot = np.eye(taps, dtype=np.float32).reshape(taps, C, *layer.kernel_size)
    cols = g.node("Conv", [x, g.constant(one_hot, _key(prefix, "im2col"))], _key(prefix, "cols"),
                  kernel_shape=list(layer.kernel_size), strides=list(layer.stride), pads=_pads(pads))
    cols = g.reshape(cols, [0, taps, H_out * W_out], _key(prefix, "cols_flat"))
    weight = g.constant(layer.weight.data.reshape(K, H_out * W_out, taps), _key(prefix, "weight"))
    y = g.node("Einsum", [cols, weight], _key(prefix, "dot"), equation="njl,klj->nkl")
    y = g.reshape(y, [0, K, H_out, W_out], prefix if layer.bias is None else _key(prefix, "no_bias"))
    if layer.bias is None:
        return y
    return g.node("Add", [y, g.constant(layer.bias.data, _key(prefix, "bias"))], prefix or "local")


def _linear(g, layer, prefix, x, shape):
    if len(shape) != 2:
        raise TypeError(f"export: {prefix} ({layer!r}) receives a {len(shape)}-D input; "
                        f"add a Flatten before it.")
    inputs = [x, g.constant(layer.weight.data, _key(prefix, "weight"))]
    if layer.bias is not None:
        inputs.append(g.constant(layer.bias.data, _key(prefix, "bias")))
    return g.node("Gemm", inputs, prefix or "linear", transB=1)


def _flatten(g, layer, prefix, x, shape):
    start, end = layer.start_dim % len(shape), layer.end_dim % len(shape)
    if start == 1 and end == len(shape) - 1:
        return g.node("Flatten", [x], prefix or "flatten", axis=1)
    if start == 0:
        raise TypeError(f"export: {prefix} ({layer!r}) flattens the batch axis, which ONNX export keeps "
                        f"dynamic.")
    target = [0] * start + [-1] + list(shape[end + 1:])  # 0 copies the (dynamic) batch size
    return g.reshape(x, target, prefix or "flatten")


def _batch_norm(g, layer, prefix, x, shape):
    if layer.running_mean is None:
        raise TypeError(f"export: {prefix} ({layer!r}) has track_running_stats=False, so inference would use "
                        f"batch statistics; ONNX export needs running statistics.")
    C = layer.num_features
    scale = layer.weight.data if layer.weight is not None else np.ones(C)
    shift = layer.bias.data if layer.bias is not None else np.zeros(C)
    inputs = [x, g.constant(scale, _key(prefix, "weight")), g.constant(shift, _key(prefix, "bias")),
              g.constant(layer.running_mean, _key(prefix, "running_mean")),
              g.constant(layer.running_var, _key(prefix, "running_var"))]
    return g.node("BatchNormalization", inputs, prefix or "batch_norm", epsilon=float(layer.eps))


def _lrn(g, layer, prefix, x, shape):
    if layer.size % 2:
        return g.node("LRN", [x], prefix or "lrn", size=layer.size, alpha=float(layer.alpha),
                      beta=float(layer.beta), bias=float(layer.k))
    # ONNX's LRN centres an even window one channel later than PyTorch (and cnnkit), so spell it out:
    # the mean of x^2 over channels c - size//2 .. c + (size-1)//2 as a 3-D average pool on (N, 1, C, ...).
    before, after = layer.size // 2, (layer.size - 1) // 2
    rest = len(shape) - 2
    square = g.node("Mul", [x, x], _key(prefix, "square"))
    axes = g.constant([1], _key(prefix, "axes"), np.int64)
    stacked = g.node("Unsqueeze", [square, axes], _key(prefix, "unsqueeze"))
    mean = g.node("AveragePool", [stacked], _key(prefix, "mean"), kernel_shape=[layer.size] + [1] * rest,
                  pads=[before] + [0] * rest + [after] + [0] * rest, count_include_pad=1)
    mean = g.node("Squeeze", [mean, axes], _key(prefix, "squeeze"))
    scaled = g.node("Mul", [mean, g.constant(layer.alpha, _key(prefix, "alpha"))], _key(prefix, "scaled"))
    d = g.node("Add", [scaled, g.constant(layer.k, _key(prefix, "k"))], _key(prefix, "d"))
    d_pow = g.node("Pow", [d, g.constant(-layer.beta, _key(prefix, "minus_beta"))], _key(prefix, "d_pow"))
    return g.node("Mul", [x, d_pow], prefix or "lrn")


def _max_pool(g, layer, prefix, x, shape):
    return g.node("MaxPool", [x], prefix or "max_pool", kernel_shape=list(layer.kernel_size),
                  strides=list(layer.stride), dilations=list(layer.dilation),
                  pads=_pads(_window_pads(layer, shape[2:])))


def _avg_pool(g, layer, prefix, x, shape):
    from cnnkit.geometry import pool_geometry
    from cnnkit.reference.pool import window_divisor

    pads = _window_pads(layer, shape[2:], dilation=(1,) * (len(shape) - 2))
    attrs = dict(kernel_shape=list(layer.kernel_size), strides=list(layer.stride))
    if pads == tuple(map(tuple, layer.padding)):
        return g.node("AveragePool", [x], prefix or "avg_pool", pads=_pads(pads),
                      count_include_pad=int(layer.count_include_pad), **attrs)
    # fit="pad" adds far-side zeros that ONNX would count. The sizes are fixed here, so average over every
    # position, then rescale each output by area / divisor, counted exactly as cnnkit (and PyTorch) do.
    geometry = pool_geometry((1, 1, *shape[2:]), layer.kernel_size, layer.stride, layer.padding, 1, layer.fit)
    divisor = window_divisor(shape[2:], geometry, layer.padding, layer.count_include_pad, np.float64)
    mean = g.node("AveragePool", [x], _key(prefix, "mean"), pads=_pads(pads), count_include_pad=1, **attrs)
    correction = g.constant(math.prod(layer.kernel_size) / divisor, _key(prefix, "divisor_correction"))
    return g.node("Mul", [mean, correction], prefix or "avg_pool")


def _lp_pool(g, layer, prefix, x, shape):
    # The far-side zeros of fit="pad" add nothing to a window's norm, so explicit pads are exact.
    attrs = dict(kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                 pads=_pads(_window_pads(layer, shape[2:], dilation=(1,) * (len(shape) - 2))))
    p = float(layer.norm_type)
    if p.is_integer():
        return g.node("LpPool", [x], prefix or "lp_pool", p=int(p), **attrs)
    # ONNX's LpPool takes an integer p: spell out (sum |x|^p)^(1/p) as area * mean of |x|^p.
    powers = g.node("Pow", [g.node("Abs", [x], _key(prefix, "abs")), g.constant(p, _key(prefix, "p"))],
                    _key(prefix, "powers"))
    mean = g.node("AveragePool", [powers], _key(prefix, "mean"), count_include_pad=1, **attrs)
    total = g.node("Mul", [mean, g.constant(math.prod(layer.kernel_size), _key(prefix, "area"))],
                   _key(prefix, "sum"))
    return g.node("Pow", [total, g.constant(1.0 / p, _key(prefix, "inverse_p"))], prefix or "lp_pool")


def _simple(op, **attrs):
    def emit(g, layer, prefix, x, shape):
        values = {k: (v(layer) if callable(v) else v) for k, v in attrs.items()}
        return g.node(op, [x], prefix or op.lower(), **values)
    return emit


def _relu6(g, layer, prefix, x, shape):
    low, high = g.constant(0.0, _key(prefix, "min")), g.constant(6.0, _key(prefix, "max"))
    return g.node("Clip", [x, low, high], prefix or "relu6")


def _sequential(g, layer, prefix, x, shape):
    for name, child in layer.named_children():
        x, shape = emit_layer(g, child, _key(prefix, name), x, shape)
    return x


def _residual(g, layer, prefix, x, shape):
    y, out_shape = x, shape
    for name, child in layer.body.named_children():
        y, out_shape = emit_layer(g, child, _key(prefix, name), y, out_shape)
    s = x if layer.shortcut is None else emit_layer(g, layer.shortcut, _key(prefix, layer.shortcut_name),
                                                    x, shape)[0]
    y = g.node("Add", [y, s], _key(prefix, "add"))
    if layer.activation is not None:
        y, _ = emit_layer(g, layer.activation, _key(prefix, "activation"), y, out_shape)
    return y


def _concat(g, layer, prefix, x, shape):
    outputs = [emit_layer(g, child, _key(prefix, name), x, shape)[0]
               for name, child in layer.named_children()]
    return g.node("Concat", outputs, _key(prefix, "concat"), axis=1)


EMITTERS = {
    "Sequential": _sequential, "Residual": _residual, "Concat": _concat,
    "Conv1d": _conv, "Conv2d": _conv, "Conv3d": _conv, "ConvTranspose2d": _conv_transpose,
    "Blur2d": _blur, "LocallyConnected2d": _locally_connected,
    "Linear": _linear, "Flatten": _flatten, "Dropout": _simple("Identity"),
    "BatchNorm1d": _batch_norm, "BatchNorm2d": _batch_norm, "LocalResponseNorm": _lrn,
    "MaxPool1d": _max_pool, "MaxPool2d": _max_pool, "AvgPool2d": _avg_pool, "LPPool2d": _lp_pool,
    "GlobalAvgPool2d": _simple("GlobalAveragePool"), "GlobalMaxPool2d": _simple("GlobalMaxPool"),
    "ReLU": _simple("Relu"), "ReLU6": _relu6,
    "LeakyReLU": _simple("LeakyRelu", alpha=lambda m: float(m.negative_slope)),
    "ELU": _simple("Elu", alpha=lambda m: float(m.alpha)),
    "Sigmoid": _simple("Sigmoid"), "Tanh": _simple("Tanh"),
    "Softmax": _simple("Softmax", axis=lambda m: int(m.dim)), "Identity": _simple("Identity"),
}


def onnx_kind(layer) -> str | None:
    """The EMITTERS entry for a layer: its class name or that of its nearest cnnkit base class."""
    for cls in type(layer).__mro__:
        if cls.__name__ in EMITTERS and cls.__module__.startswith("cnnkit."):
            return cls.__name__
    return None


def emit_layer(g, layer, prefix, x, shape):
    """Add ``layer``'s nodes to ``g``; returns (output name, output shape)."""
    from cnnkit.interop.onnx_import import mark_layer

    out_shape = layer.output_shape(shape)
    first = len(g.nodes)
    y = EMITTERS[onnx_kind(layer)](g, layer, prefix, x, shape)
    mark_layer(g.nodes[first:], layer, prefix)  # so that cnnkit's own import rebuilds the layer itself
    return y, out_shape


def to_onnx(model: base.Layer, input_shape, opset: int = DEFAULT_OPSET, *, input_name: str = "input",
            output_name: str = "output", check: bool = True):
    """The ``onnx.ModelProto`` of a model (see :func:`export`), checked with ``onnx.checker`` if ``check``."""
    onnx = require_onnx()
    helper = onnx.helper
    unsupported = [f"{name or '(root)'} ({type(layer).__name__})" for name, layer in model.named_layers()
                   if onnx_kind(layer) is None]
    if unsupported:
        raise TypeError(f"export: no ONNX translation for {', '.join(unsupported)}; supported layers: "
                        f"{', '.join(sorted(EMITTERS))}.")
    input_shape = tuple(int(n) for n in input_shape)
    shape = (1, *input_shape)
    out_shape = model.output_shape(shape)  # raises the model's own ShapeError for a size it cannot take
    g = _Graph(onnx)
    g.opset = opset
    g.used.update({input_name, output_name})
    y, _ = emit_layer(g, model, "", input_name, shape)
    g.nodes.append(helper.make_node("Identity", [y], [output_name], name=output_name))
    float32 = onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        g.nodes, type(model).__name__,
        [helper.make_tensor_value_info(input_name, float32, ["batch", *input_shape])],
        [helper.make_tensor_value_info(output_name, float32, ["batch", *out_shape[1:]])],
        initializer=g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="cnnkit", doc_string=f"cnnkit {type(model).__name__}")
    # the oldest IR version that has this opset, so that older runtimes load the file too
    proto.ir_version = helper.find_min_ir_version_for(proto.opset_import)
    if check:
        onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model: base.Layer, path, input_shape, opset: int = DEFAULT_OPSET):
    """Write ``model`` as a standard ONNX file; returns the ``onnx.ModelProto``.

    Args:
        model: any cnnkit model made of supported layers (every zoo model).
        path: the ``.onnx`` file to write.
        input_shape: one example's shape without the batch axis, e.g. (3, 224, 224) (the zoo's
            ``input_shape``); the batch dimension is dynamic ("batch").
        opset: the ONNX operator set (17 by default).

    The model's input recipe (``model.preprocessing``: input shape, channel order, mean/std, class names)
    goes into the file's ``metadata_props``: ``cnnkit.preprocessing`` holds it as JSON, and ``mean``,
    ``std``, ``classes``... one field each, for other tools.

    Raises:
        ImportError (which extra to install) without onnx; TypeError naming every unsupported layer;
        ShapeError if the model cannot take ``input_shape``.
    """
    onnx = require_onnx()
    proto = to_onnx(model, input_shape, opset, check=False)
    preprocessing = getattr(model, "preprocessing", None)
    if preprocessing is not None:
        onnx.helper.set_model_props(proto, preprocessing.to_strings())
    onnx.save_model(proto, os.fspath(path))
    # Checking the written file lets the checker read it in C++, instead of serializing a second copy of
    # every weight in Python (seconds for a large model).
    try:
        onnx.checker.check_model(os.fspath(path), full_check=True)
    except onnx.checker.ValidationError:
        os.remove(path)
        raise
    return proto


def load(source, *, input_shape=None, max_bytes: int = 2**31 - 1):
    """An ONNX file (a path or its bytes) as a trainable cnnkit network, in eval mode: a Sequential where the
    graph is a chain, else a Graph, with the initializers as parameters. The arguments, the operators and
    the errors are those of :func:`cnnkit.interop.onnx_import.load`.
    """
    from cnnkit.interop.onnx_import import load as load_onnx

    return load_onnx(source, input_shape=input_shape, max_bytes=max_bytes)


def run(path, x: np.ndarray) -> np.ndarray:
    """Run an exported file on ``x`` with onnxruntime (CPU) and return its output."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # a small model runs as fast on one thread, and the machine is shared
    session = onnxruntime.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: np.asarray(x, dtype=np.float32)})[0]


# A Graph and its merge nodes (and the layers of imported models) add their emitters to EMITTERS.
import cnnkit.interop._onnx_graph  # noqa: E402, F401

# Adaptive pooling and the padding layers (_onnx_pooling), and the activations, norms, upsampling and
# rearranging layers of issue 14 item 5 (_onnx_modern) add their emitters to EMITTERS.
from cnnkit.interop import _onnx_modern, _onnx_pooling  # noqa: E402, F401
