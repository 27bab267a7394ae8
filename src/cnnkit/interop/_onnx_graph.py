"""ONNX export of a :class:`cnnkit.Graph`, its merge nodes and the importer's ONNX-semantics layers,
added to ``cnnkit.interop.onnx.EMITTERS``.

A Graph's nodes are written in their order, each reading the ONNX names of its input values; merges take a
list of names (and shapes) instead of one. Split writes one node with several outputs. The layers of
``cnnkit.interop._onnx_layers`` (imported here, so that their types are known wherever ONNX export is) go
back to the operators they came from.
"""

from __future__ import annotations

import numpy as np

from cnnkit.interop import _onnx_layers  # noqa: F401 -- registers the imported models' layer types
from cnnkit.interop.onnx import EMITTERS, _key, emit_layer
from cnnkit.layers.graph import num_outputs, takes_list

INT64_MAX = np.iinfo(np.int64).max


def _graph(g, layer, prefix, x, shape):
    if len(layer.inputs) == 1:
        x, shape = [x], [shape]
    names = dict(zip(layer.inputs, x, strict=True))
    shapes = dict(zip(layer.inputs, (tuple(s) for s in shape), strict=True))
    for node, child in layer.named_children():
        sources = layer.inputs_of(node)
        xs, ss = [names[v] for v in sources], [shapes[v] for v in sources]
        if not takes_list(child):
            xs, ss = xs[0], ss[0]
        out, out_shape = emit_layer(g, child, _key(prefix, node), xs, ss)
        if num_outputs(child) == 1:
            names[node], shapes[node] = out, tuple(out_shape)
        else:
            for i, (name, s) in enumerate(zip(out, out_shape, strict=True)):
                names[f"{node}:{i}"], shapes[f"{node}:{i}"] = name, tuple(s)
    outputs = [names[v] for v in layer.output_names()]
    return outputs[0] if len(outputs) == 1 else outputs


def _binary(op):
    def emit(g, layer, prefix, xs, shapes):
        return g.node(op, xs, prefix or op.lower())
    return emit


def _add(g, layer, prefix, xs, shapes):
    if len(xs) == 1:
        return g.node("Identity", xs, prefix or "add")
    return g.node("Add" if len(xs) == 2 else "Sum", xs, prefix or "add")


def _concatenate(g, layer, prefix, xs, shapes):
    return g.node("Concat", xs, prefix or "concat", axis=layer.dim % len(shapes[0]))


def _constant(g, layer, prefix, xs, shapes):
    return g.constant(layer._array(), _key(prefix, "value"), dtype=layer._array().dtype)


def _split(g, layer, prefix, x, shape):
    outs = [g.name(f"{prefix or 'split'}:{i}") for i in range(len(layer.sizes))]
    axis = layer.dim % len(shape)
    if getattr(g, "opset", 17) < 13:  # split sizes were an attribute before opset 13
        g.nodes.append(g.helper.make_node("Split", [x], outs, name=prefix or "split", axis=axis,
                                          split=list(layer.sizes)))
    else:
        sizes = g.constant(layer.sizes, _key(prefix, "sizes"), np.int64)
        g.nodes.append(g.helper.make_node("Split", [x, sizes], outs, name=prefix or "split", axis=axis))
    return outs


def _slice(g, layer, prefix, x, shape):
    step = layer.step
    start = layer.start if layer.start is not None else (0 if step > 0 else INT64_MAX)
    stop = layer.stop if layer.stop is not None else (INT64_MAX if step > 0 else -INT64_MAX)
    inputs = [x] + [g.constant([v], _key(prefix, part), np.int64)
                    for part, v in (("starts", start), ("ends", stop), ("axes", layer.dim % len(shape)),
                                    ("steps", step))]
    return g.node("Slice", inputs, prefix or "slice")


def _reshape(g, layer, prefix, x, shape):
    return g.reshape(x, [0, *layer.shape], prefix or "reshape")  # 0 copies the (dynamic) batch size


def _permute(g, layer, prefix, x, shape):
    return g.node("Transpose", [x], prefix or "transpose", perm=list(layer.dims))


def _activation(g, layer, prefix, x, shape):
    if layer.op == "Clip":
        low = g.constant(layer.alpha, _key(prefix, "min"))
        high = g.constant(layer.beta, _key(prefix, "max"))
        return g.node("Clip", [x, low, high], prefix or "clip")
    attrs = {"Selu": {"alpha": layer.alpha, "gamma": layer.beta},
             "HardSigmoid": {"alpha": layer.alpha, "beta": layer.beta}}.get(layer.op, {})
    return g.node(layer.op, [x], prefix or layer.op.lower(), **attrs)


def _prelu(g, layer, prefix, x, shape):
    return g.node("PRelu", [x, g.constant(layer.weight.data, _key(prefix, "weight"))], prefix or "prelu")


def _resize(g, layer, prefix, x, shape):
    roi = g.constant(np.zeros(0), _key(prefix, "roi"))
    if layer.scales is not None:
        inputs = [x, roi, g.constant([1.0, 1.0, *layer.scales], _key(prefix, "scales"))]
    else:
        inputs = [x, roi, "", g.constant([*shape[:2], *layer.sizes], _key(prefix, "sizes"), np.int64)]
    return g.node("Resize", inputs, prefix or "resize", mode=layer.mode,
                  coordinate_transformation_mode=layer.transform, nearest_mode=layer.nearest_mode)


EMITTERS.update({
    "OnnxActivation": _activation, "OnnxPRelu": _prelu, "OnnxResize": _resize,
})

EMITTERS.update({
    "Graph": _graph, "Add": _add, "Multiply": _binary("Mul"), "Subtract": _binary("Sub"),
    "Divide": _binary("Div"), "MatMul": _binary("MatMul"), "Concatenate": _concatenate,
    "Constant": _constant, "Split": _split, "Slice": _slice, "Reshape": _reshape, "Permute": _permute,
})
