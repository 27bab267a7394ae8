"""Read an ONNX file into a trainable cnnkit network: a Sequential where the graph is a chain, else a Graph.

    net = cnnkit.interop.onnx.load("resnet50.onnx")     # initializers become Parameters (and BN buffers)
    net.train(); fit(net, ...)                            # backward, optimizers, fine-tuning: as any model

The file is parsed with the ``onnx`` package only (a protobuf: no code in it is run). The steps, each of
which fails with one clear error before anything is built:

1. read: a path or bytes; a malformed or truncated protobuf, a file over protobuf's 2 GiB limit, or
   external data (weights in side files) that lies outside the model's folder are refused;
2. check: every node's inputs exist (nodes are in topological order, as ONNX requires), and every
   operator is one cnnkit can build -- one error lists all the others with their node names;
3. build: nodes in order, each becoming cnnkit layers (``_onnx_ops``). Values that do not depend on the
   input (initializers, Constant, ConstantOfShape, and Shape -> Gather -> Concat chains that compute static
   shapes) are folded with NumPy at load time.

Shapes are followed symbolically with two probe batch sizes, so a value that depends on the batch size
(the ``N`` of ``x.view(N, -1)``) is recognised as such and becomes "keep the batch axis", while a
genuinely constant one stays constant. The network is returned in eval mode, as ONNX describes inference;
call ``.train()`` to fine-tune.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from cnnkit.interop import _onnx_layers  # noqa: F401 -- registers the importer's layer types
from cnnkit.layers.base import Layer, Sequential
from cnnkit.layers.graph import Graph, num_outputs, takes_list
from cnnkit.layers.merge import Constant

PROTOBUF_LIMIT = 2**31 - 1  # protobuf cannot parse a message of 2 GiB or more
PROBES = (2, 3)  # two batch sizes: a value that differs between them depends on the batch


class OnnxImportError(ValueError):
    """An ONNX file cnnkit cannot read or build (the message lists every problem found)."""


@dataclass
class Tensor:
    """A runtime value: its name in the cnnkit Graph and its shape for each probe batch size."""

    name: str
    shapes: tuple  # (shape with batch PROBES[0], shape with batch PROBES[1])

    @property
    def shape(self):
        return self.shapes[0]

    @property
    def ndim(self):
        return len(self.shapes[0])

    def per_example(self):
        """The shape without the batch axis, if the batch axis is axis 0 and the rest does not vary."""
        a, b = self.shapes
        if a[0] == PROBES[0] and b[0] == PROBES[1] and a[1:] == b[1:]:
            return a[1:]
        return None


@dataclass
class Static:
    """A value known at load time, per probe batch size (the same array twice unless it depends on it).

    ``fixed``: produced by Constant nodes only (a number written in the model, not a learned tensor).
    """

    values: tuple
    fixed: bool = False

    @property
    def value(self):
        return self.values[0]

    @property
    def varies(self):
        a, b = self.values
        return a is not b and (a.shape != b.shape or not np.array_equal(a, b))


# -- reading ---------------------------------------------------------------------------------------------

def read_model(source, *, max_bytes: int = PROTOBUF_LIMIT):
    """The ``onnx.ModelProto`` of a path or of bytes, external data loaded (only from the model's folder).

    Raises:
        FileNotFoundError; TypeError for another kind of source; OnnxImportError for a file over
        ``max_bytes``, a malformed protobuf, or external data that is missing, out of bounds or outside
        the model's folder.
    """
    from cnnkit.interop.onnx import require_onnx

    onnx = require_onnx()
    if isinstance(source, bytes | bytearray | memoryview):
        data, folder, where = bytes(source), None, "the given bytes"
    elif isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"onnx.load: no such file {path!r}.")
        size = os.path.getsize(path)
        if size > max_bytes:
            raise OnnxImportError(f"onnx.load: {path!r} is {size:,} bytes, over the limit of {max_bytes:,} "
                                  f"(protobuf cannot hold 2 GiB; large models keep weights as external "
                                  f"data).")
        with open(path, "rb") as f:
            data = f.read()
        folder, where = os.path.dirname(os.path.realpath(path)), repr(path)
    else:
        raise TypeError(f"onnx.load: expected a path or bytes, received {type(source).__name__}.")
    if len(data) > max_bytes:
        raise OnnxImportError(f"onnx.load: {where} is {len(data):,} bytes, over the limit of {max_bytes:,}.")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # google.protobuf.message.DecodeError and friends
        raise OnnxImportError(f"onnx.load: {where} is not a readable ONNX model: the protobuf is malformed "
                              f"or truncated ({type(e).__name__}: {e}).") from None
    if not model.HasField("graph") or not model.graph.node:
        raise OnnxImportError(f"onnx.load: {where} holds no graph nodes; it is not an ONNX model, or it "
                              f"is truncated.")
    _load_external_data(onnx, model, folder, where)
    return model


def _tensors_of(graph):
    """Every TensorProto stored in the graph: initializers and Constant nodes' values (subgraphs aside)."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t


def _load_external_data(onnx, model, folder, where):
    for tensor in _tensors_of(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        if folder is None:
            raise OnnxImportError(f"onnx.load: tensor {tensor.name!r} keeps its data in the external file "
                                  f"{location!r}; load the model from its path so that the file can be found "
                                  f"next to it.")
        target = os.path.realpath(os.path.join(folder, location))
        if not location or os.path.isabs(location) or os.path.commonpath([folder, target]) != folder:
            raise OnnxImportError(f"onnx.load: tensor {tensor.name!r} points to external data {location!r} "
                                  f"outside the model's folder {folder!r}; refused (external data must be "
                                  f"a file beside the model or below it).")
        if not os.path.isfile(target):
            raise OnnxImportError(f"onnx.load: tensor {tensor.name!r}: external data file {location!r} "
                                  f"not found in {folder!r}.")
        size = os.path.getsize(target)
        offset, length = int(info.get("offset", 0)), info.get("length")
        length = size - offset if length is None else int(length)
        if offset < 0 or length < 0 or offset + length > size:
            raise OnnxImportError(f"onnx.load: tensor {tensor.name!r}: bytes {offset}..{offset + length} of "
                                  f"{location!r} asked for, but the file has {size}.")
        with open(target, "rb") as f:
            f.seek(offset)
            tensor.raw_data = f.read(length)
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT


# -- cnnkit's own layers, marked by its exporter --------------------------------------------------------

MARK = "cnnkit:"


def mark_layer(nodes, layer, prefix):
    """Tag the nodes that export one weightless cnnkit layer with its name and config (``doc_string``).

    An adaptive pool or a reflection pad has no ONNX operator and becomes a few generic nodes (MatMul,
    Gather...); a dropout becomes Identity. The mark lets :func:`load` rebuild the layer itself from
    its config, so a model survives export and import unchanged. Only layers without parameters or
    buffers are marked: their config is all there is to them. Other tools ignore ``doc_string``.
    """
    if not nodes or layer.named_children() or layer.state_dict():
        return
    import json

    text = MARK + json.dumps({"layer": prefix, "config": layer.config()}, separators=(",", ":"))
    for node in nodes:
        node.doc_string = text


def marked_groups(graph) -> dict[int, tuple[int, str, dict]]:
    """``{first node index: (end index, layer name, config)}`` for runs of nodes that one mark covers and
    that form one layer: a single run-time input from outside the run, one output used outside it."""
    import json

    from cnnkit.layers.base import _LAYER_TYPES

    nodes, groups, i = list(graph.node), {}, 0
    readers: dict[str, int] = {}
    for node in nodes:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    outputs = {o.name for o in graph.output}
    static = {t.name for t in graph.initializer}
    while i < len(nodes):
        text, end = nodes[i].doc_string, i + 1
        if not text.startswith(MARK):
            i += 1
            continue
        while end < len(nodes) and nodes[end].doc_string == text:
            end += 1
        run = nodes[i:end]
        made = {o for node in run for o in node.output if o}
        made |= {o for node in run if node.op_type == "Constant" for o in node.output}
        outside = [name for node in run for name in node.input if name and name not in made
                   and name not in static]
        used = [o for o in made if o in outputs or readers.get(o, 0) > sum(
            name == o for node in run for name in node.input)]
        try:
            info = json.loads(text[len(MARK):])
            known = info["config"].get("type") in _LAYER_TYPES
        except (ValueError, AttributeError, KeyError, TypeError):
            known = False
        if known and len(set(outside)) == 1 and len(used) == 1 and used[0] == run[-1].output[0]:
            groups[i] = (end, str(info.get("layer", "")), info["config"])
        i = end
    return groups


# -- checking --------------------------------------------------------------------------------------------

def opset_version(model) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def _node_label(node, index):
    return node.name or (node.output[0] if node.output else f"#{index}")


def check_graph(model, where="the model"):
    """One OnnxImportError for all missing inputs, and one for all unsupported operators, if any."""
    from cnnkit.interop import _onnx_ops

    graph = model.graph
    known = {t.name for t in graph.initializer} | {i.name for i in graph.input}
    missing, problems = [], OrderedDict()
    static = {t.name for t in graph.initializer}
    opset = opset_version(model)
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    covered = {k for start, (end, _, _) in marked_groups(graph).items() for k in range(start, end)}
    for index, node in enumerate(graph.node):
        label = _node_label(node, index)
        absent = [name for name in node.input if name and name not in known]
        if absent:
            missing.append(f"{node.op_type} node {label!r} reads {', '.join(map(repr, absent))}")
        known.update(o for o in node.output if o)
        inputs_static = all(not name or name in static for name in node.input)
        if node.op_type in _onnx_ops.FOLD_ONLY or (inputs_static and node.op_type in _onnx_ops.FOLDERS):
            static.update(o for o in node.output if o)
        why = None if index in covered else _onnx_ops.unsupported(node, opset, inputs_static, used)
        if why is not None:
            problems.setdefault(why, []).append(label)
    absent_outputs = [o.name for o in graph.output if o.name not in known]
    if absent_outputs:
        missing.append(f"graph output(s) {', '.join(map(repr, absent_outputs))} computed by no node")
    if missing:
        raise OnnxImportError(f"onnx.load: {where} is an inconsistent graph ({len(missing)} problem(s)): "
                              + "; ".join(missing) + ". Each input must be a graph input, an initializer or "
                              "the output of an earlier node.")
    if problems:
        lines = [f"  {what}: node(s) {', '.join(map(repr, labels[:8]))}"
                 + (f" and {len(labels) - 8} more" if len(labels) > 8 else "")
                 for what, labels in problems.items()]
        raise OnnxImportError(f"onnx.load: {where} uses {len(problems)} operator(s) cnnkit cannot build "
                              f"(nothing was built):\n" + "\n".join(lines)
                              + f"\nSupported operators: {', '.join(sorted(_onnx_ops.SUPPORTED))}.")


# -- building --------------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]+")


def clean_name(text: str) -> str:
    """An ONNX name as a cnnkit node name: ``/layer1/layer1.0/conv1`` -> ``layer1_layer1_0_conv1``."""
    return _UNSAFE.sub("_", text).strip("_")


class Builder:
    """Turns ONNX nodes into cnnkit Graph nodes, one ONNX node at a time (see :mod:`._onnx_ops`)."""

    def __init__(self, onnx, model, input_shapes):
        self.onnx, self.model, self.opset = onnx, model, opset_version(model)
        self.values: dict[str, Tensor | Static] = {}
        self.used_names: set[str] = set()
        self.constants: dict[str, Tensor] = {}  # ONNX name of a static value -> its Constant node
        graph = model.graph
        initializers = {t.name: t for t in graph.initializer}
        self.declared_batch = set()
        inputs = [i for i in graph.input if i.name not in initializers]
        if not inputs:
            raise OnnxImportError("onnx.load: the graph has no input (every graph input is an initializer).")
        if input_shapes is not None and len(input_shapes) != len(inputs):
            raise ValueError(f"onnx.load: Received {len(input_shapes)} input shape(s) for a model with "
                             f"{len(inputs)} input(s) ({', '.join(i.name for i in inputs)}).")
        names = []
        for k, value_info in enumerate(inputs):
            name = self.unique(clean_name(value_info.name) or f"input{k}")
            shape = self._input_shape(value_info, None if input_shapes is None else input_shapes[k])
            self.values[value_info.name] = Tensor(name, tuple((probe, *shape) for probe in PROBES))
            names.append(name)
        self.graph = Graph(names)
        for name, tensor in initializers.items():
            array = self.onnx.numpy_helper.to_array(tensor)
            self.values[name] = Static((array, array))

    def _input_shape(self, value_info, given):
        dims = value_info.type.tensor_type.shape.dim
        if given is not None:
            given = tuple(int(n) for n in given)
            if dims and len(dims) != len(given) + 1:
                raise ValueError(f"onnx.load: Received input_shape={given} for input {value_info.name!r} of "
                                 f"rank {len(dims)}; give the shape of one example (without the batch axis).")
            return given
        if not dims:
            raise OnnxImportError(f"onnx.load: input {value_info.name!r} has no declared shape; pass "
                                  f"input_shape=(C, H, W).")
        if dims[0].HasField("dim_value"):
            self.declared_batch.add(int(dims[0].dim_value))
        rest = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims[1:]]
        if None in rest:
            text = ", ".join(d.dim_param or str(d.dim_value) for d in dims)
            raise OnnxImportError(f"onnx.load: input {value_info.name!r} has dynamic dimensions ({text}); "
                                  f"pass input_shape= with the shape of one example, e.g. (3, 224, 224).")
        return tuple(rest)

    # -- names and values -------------------------------------------------------------------------------
    def unique(self, hint: str) -> str:
        base = clean_name(hint) or "node"
        name, i = base, 0
        while name in self.used_names:
            i += 1
            name = f"{base}_{i}"
        self.used_names.add(name)
        return name

    def node_hint(self, node):
        """A readable node name: the layer name of its weight (``features.0`` of ``features.0.weight``),
        else the module path of torch's scoped names (``layer1.0.conv1`` of ``/layer1/layer1.0/conv1/Conv``),
        else the ONNX node name, else its first output."""
        for name in node.input[1:2]:
            if name.endswith(".weight") and name in self.values:
                return name[: -len(".weight")]
        if node.name.startswith("/") and node.name.count("/") > 1:
            # each scope is qualified from the last plain attribute name: /1/branch1/branch1.2/Relu
            path, previous = "", None
            for part in node.name.strip("/").split("/")[:-1]:
                if previous and part.startswith(previous + "."):
                    path = path[: len(path) - len(previous)] + part
                else:
                    path = f"{path}.{part}" if path else part
                previous = part
            return path
        return node.name or (node.output[0] if node.output else node.op_type)

    def get(self, name):
        return self.values[name]

    def tensor(self, name, what="input") -> Tensor:
        """A runtime value; a static one becomes a Constant node (trainable if it was learned)."""
        value = self.values[name]
        if isinstance(value, Tensor):
            return value
        if name in self.constants:
            return self.constants[name]
        if value.varies:
            raise OnnxImportError(f"onnx.load: {name!r} depends on the batch size and is used as data; "
                                  f"cnnkit only folds such values into shapes.")
        array = np.asarray(value.value)
        if not np.issubdtype(array.dtype, np.floating):
            array = array.astype(np.float32)
        learned = not value.fixed and array.size > 1
        layer = Constant(array.shape, trainable=learned, value=array,
                         dtype="float64" if array.dtype == np.float64 else "float32")
        tensor = self.add(self.unique(name), layer, [])
        self.constants[name] = tensor
        return tensor

    def static(self, name, what) -> np.ndarray:
        """A load-time value that must not depend on the batch size (weights, axes, pads...)."""
        value = self.values.get(name)
        if not isinstance(value, Static):
            raise OnnxImportError(f"onnx.load: {what} ({name!r}) is computed at run time; cnnkit needs it "
                                  f"fixed in the file (an initializer or a constant expression).")
        if value.varies:
            raise OnnxImportError(f"onnx.load: {what} ({name!r}) depends on the batch size.")
        return np.asarray(value.value)

    def add(self, name: str, layer: Layer, inputs) -> Tensor | list[Tensor]:
        """Add a layer node reading ``inputs`` (Tensors); returns its output Tensor(s), shapes by probe."""
        sources = [t.name for t in inputs]
        self.graph.add(name, layer, sources)
        shapes = []
        for k in range(len(PROBES)):
            args = [t.shapes[k] for t in inputs]
            shapes.append(layer.output_shape(args if takes_list(layer) else args[0]))
        if num_outputs(layer) == 1:
            return Tensor(name, tuple(tuple(s) for s in shapes))
        return [Tensor(f"{name}:{i}", (tuple(a), tuple(b))) for i, (a, b) in enumerate(zip(*shapes))]

    def layer(self, node, layer: Layer, inputs, hint=None) -> Tensor:
        return self.add(self.unique(hint or self.node_hint(node)), layer, inputs)

    # -- the whole graph --------------------------------------------------------------------------------
    def build(self):
        from cnnkit.interop import _onnx_ops

        nodes, groups, skip_until = list(self.model.graph.node), marked_groups(self.model.graph), 0
        for index, node in enumerate(nodes):
            if index < skip_until:
                continue
            if index in groups:  # a layer cnnkit exported: rebuilt from its config, its nodes skipped
                end, name, config = groups[index]
                self.values[nodes[end - 1].output[0]] = self._marked_layer(nodes[index:end], name, config)
                skip_until = end
                continue
            inputs = list(node.input)
            attrs = {a.name: _attribute(self.onnx, a) for a in node.attribute}
            try:
                outputs = _onnx_ops.build(self, node, attrs, inputs)
            except OnnxImportError:
                raise
            except (ValueError, TypeError) as e:  # a layer refused the arguments: say which node
                raise OnnxImportError(f"onnx.load: {node.op_type} node {_node_label(node, index)!r}: "
                                      f"{e}") from e
            for name, value in zip(node.output, outputs, strict=False):
                if name:
                    self.values[name] = value
        outputs = []
        for value_info in self.model.graph.output:
            value = self.values[value_info.name]
            if isinstance(value, Static):
                raise OnnxImportError(f"onnx.load: graph output {value_info.name!r} does not depend on the "
                                      f"input; there is nothing to build.")
            outputs.append(value.name)
        self.graph.set_outputs(outputs)
        return self.graph


    def _marked_layer(self, nodes, name, config):
        from cnnkit.layers.base import from_config

        made = {o for node in nodes for o in node.output}
        source = next(n for node in nodes for n in node.input if n and n not in made
                      and isinstance(self.values.get(n), Tensor))
        try:
            layer = from_config(config)
        except (TypeError, ValueError, KeyError) as e:
            raise OnnxImportError(f"onnx.load: the nodes of cnnkit layer {name!r} carry a config cnnkit "
                                  f"cannot rebuild: {e}") from e
        if layer.state_dict():
            raise OnnxImportError(f"onnx.load: the nodes of cnnkit layer {name!r} are marked as a layer "
                                  f"without weights, but {type(layer).__name__} has some.")
        return self.add(self.unique(name or type(layer).__name__), layer, [self.values[source]])


def _attribute(onnx, attribute):
    value = onnx.helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8") for v in value]
    return value


def as_chain(graph: Graph) -> Layer:
    """The same layers as a Sequential when the graph is a chain (each node reads the one before it)."""
    previous = graph.inputs[0] if len(graph.inputs) == 1 else None
    for name, layer in graph.named_children():
        if previous is None or graph.inputs_of(name) != (previous,) or takes_list(layer) \
                or num_outputs(layer) != 1:
            return graph
        previous = name
    if graph.output_names() != [previous] or not len(graph):
        return graph
    return Sequential(OrderedDict(graph.named_children()))


def load_with_info(source, *, input_shape=None, max_bytes: int = PROTOBUF_LIMIT):
    """``(network, info)``: :func:`load`'s network, and what the file says about it.

    ``info`` holds ``input_shape`` (one example's shape: the given one, else the file's if static, else
    None), ``metadata`` (the file's ``metadata_props``), ``producer`` and ``opset``. When the metadata
    holds cnnkit's input recipe (written by ``cnnkit export``), the network gets it back as
    ``network.preprocessing``, as a loaded checkpoint has it.
    """
    from cnnkit.interop.onnx import require_onnx

    onnx = require_onnx()
    model = read_model(source, max_bytes=max_bytes)
    where = repr(os.fspath(source)) if isinstance(source, str | os.PathLike) else "the model"
    check_graph(model, where)
    shapes = None
    if input_shape is not None:
        one = all(isinstance(n, int | np.integer) for n in input_shape)
        shapes = [input_shape] if one else list(input_shape)
    builder = Builder(onnx, model, shapes)
    net = as_chain(builder.build()).eval()
    first = builder.values[next(i.name for i in model.graph.input if isinstance(builder.values.get(i.name),
                                                                                 Tensor))]
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    info = {"input_shape": first.per_example(), "metadata": metadata, "producer": model.producer_name,
            "opset": builder.opset}
    try:
        from cnnkit.data.preprocessing import Preprocessing

        recipe = Preprocessing.from_strings(metadata)
    except (ImportError, ValueError, KeyError, TypeError):  # no recipe module, or not cnnkit's recipe
        recipe = None
    if recipe is not None:
        net.preprocessing = recipe
    return net, info


def load(source, *, input_shape=None, max_bytes: int = PROTOBUF_LIMIT) -> Layer:
    """An ONNX model (a path or bytes) as a trainable cnnkit network, in eval mode.

    Args:
        source: the ``.onnx`` file's path, or its bytes.
        input_shape: one example's shape without the batch axis (e.g. ``(3, 224, 224)``), needed when the
            file leaves spatial sizes dynamic; for several inputs, a list of shapes.
        max_bytes: refuse files larger than this (default: protobuf's 2 GiB limit).

    Returns:
        a ``Sequential`` when the graph is a chain of single-input layers, else a ``Graph``; node names
        come from the ONNX names (``features.0`` becomes ``features_0``); initializers are Parameters
        (batch-norm statistics are buffers), so ``state_dict``, optimizers and ``fit`` work as usual.

    Raises:
        ImportError without the onnx package; FileNotFoundError; TypeError for a source that is neither a
        path nor bytes; OnnxImportError (a ValueError) for a malformed or truncated file, external data
        outside the model's folder, an inconsistent graph, or operators cnnkit cannot build (all listed,
        with node names, before anything is built).
    """
    return load_with_info(source, input_shape=input_shape, max_bytes=max_bytes)[0]
