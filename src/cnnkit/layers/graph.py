"""Graph: a network as a DAG of named nodes, for what chains cannot say (dense blocks, long skips, gates).

Each node is a layer applied to named values: the graph's inputs or other nodes' outputs. Forward runs the
nodes in the order they were added, which is a topological order because a node can only read values that
already exist. Backward runs them in reverse; where a value fans out to several nodes, their gradients are
summed into it before its own node's backward runs (the multivariate chain rule).

    g = Graph(inputs="x")
    g.add("conv1", Conv2d(3, 16, 3, padding=1), "x")
    g.add("conv2", Conv2d(16, 16, 3, padding=1), "conv1")
    g.add("sum", Add(), ["conv1", "conv2"])        # conv1 fans out: its gradient is the sum of two paths

A node with several inputs is a merge (``cnnkit.layers.merge``: Add, Multiply, Concatenate, ...): it
receives the list of arrays. A node with several outputs (Split) names them ``"node:0"``, ``"node:1"``.
Nodes are the graph's children under their own names, so ``state_dict`` keys are ``"conv1.weight"`` and
stay stable as long as the names do.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.layers.base import Layer, from_config

_NAME = re.compile(r"[A-Za-z0-9_\-]+")


def takes_list(layer) -> bool:
    """A merge (or a multi-input graph) receives the list of its inputs; every other layer one array."""
    return bool(getattr(layer, "takes_list", False))


def num_outputs(layer) -> int:
    return int(getattr(layer, "num_outputs", 1))


class Graph(Layer):
    """A directed acyclic graph of named layers; forward in the order of ``add``, backward in reverse.

    Shape:
        input shape(s) -> output shape(s), node by node: each node's ``output_shape`` of its inputs'
        shapes. One input and one output take and give one array/shape; several take and give lists.

    Args:
        inputs: the name of the input value, or a list of names for several inputs (default "x").
        outputs: the value(s) the graph returns; default: the last node added. Settable later with
            :meth:`set_outputs`.

    Raises:
        ValueError/KeyError (in ``add``): a bad or repeated name, an input value that does not exist yet,
            or the wrong number of inputs for the layer. ShapeError (in forward/output_shape): the node
            whose input does not fit, named.

    >>> from cnnkit.layers import Conv2d, ReLU
    >>> from cnnkit.layers.merge import Add
    >>> g = Graph(inputs="x")
    >>> _ = g.add("conv", Conv2d(4, 4, 3, padding=1), "x")
    >>> _ = g.add("relu", ReLU(), "conv")
    >>> _ = g.add("sum", Add(), ["x", "relu"])
    >>> g.output_shape((2, 4, 8, 8))
    (2, 4, 8, 8)
    """

    def __init__(self, inputs="x", outputs=None):
        names = [inputs] if isinstance(inputs, str) else list(inputs)
        if not names:
            raise ValueError("Graph: Received inputs=[]; a graph needs at least one input.")
        self.inputs = []
        self._nodes: OrderedDict[str, Layer] = OrderedDict()
        self._edges: dict[str, tuple[str, ...]] = {}
        for name in names:
            self._check_name(name)
            self.inputs.append(name)
        self.outputs: list[str] = []
        if outputs is not None:
            self.set_outputs(outputs)

    # -- building ------------------------------------------------------------------------------------------
    def _check_name(self, name):
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"Graph: Received name {name!r}; names are letters, digits, '_' and '-' (a '.' "
                             f"would clash with state-dict keys and ':' picks an output of a node).")
        if name in self.inputs or name in self._nodes:
            raise ValueError(f"Graph: the name {name!r} is already used; names must be unique.")

    def values(self) -> list[str]:
        """Every value a node can read: the inputs, then each node's output(s) in order."""
        names = list(self.inputs)
        for name, layer in self._nodes.items():
            k = num_outputs(layer)
            names += [name] if k == 1 else [f"{name}:{i}" for i in range(k)]
        return names

    def add(self, name: str, layer: Layer, inputs) -> str:
        """Add ``layer`` as node ``name`` reading ``inputs`` (a value name or a list); returns ``name``."""
        self._check_name(name)
        if not isinstance(layer, Layer):
            raise TypeError(f"Graph.add({name!r}): received a {type(layer).__name__}, not a cnnkit Layer.")
        sources = [inputs] if isinstance(inputs, str) else list(inputs)
        known = set(self.values())
        missing = [s for s in sources if s not in known]
        if missing:
            raise KeyError(f"Graph.add({name!r}): no value named {', '.join(map(repr, missing))} yet; nodes "
                           f"read the inputs or earlier nodes: {', '.join(sorted(known))}.")
        if not takes_list(layer) and len(sources) != 1:
            raise ValueError(f"Graph.add({name!r}): {layer!r} takes one input, received {len(sources)}; "
                             f"join several with a merge (Add, Concatenate, ...).")
        arity = getattr(layer, "arity", None) if takes_list(layer) else 1
        if arity is not None and len(sources) != arity:
            raise ValueError(f"Graph.add({name!r}): {layer!r} takes {arity} input(s), received "
                             f"{len(sources)}.")
        self._nodes[name] = layer
        self._edges[name] = tuple(sources)
        return name

    def set_outputs(self, outputs):
        """Choose the value(s) the graph returns (a name or a list of names)."""
        names = [outputs] if isinstance(outputs, str) else list(outputs)
        known = set(self.values())
        missing = [n for n in names if n not in known]
        if missing or not names:
            raise KeyError(f"Graph.set_outputs: no value named {', '.join(map(repr, missing))}; "
                           f"known: {', '.join(sorted(known))}.")
        self.outputs = names
        return self

    def replace(self, name: str, layer: Layer) -> Layer:
        """Put ``layer`` in place of node ``name`` (same inputs); returns the old layer."""
        if name not in self._nodes:
            raise KeyError(f"Graph.replace: no node named {name!r}.")
        old, self._nodes[name] = self._nodes[name], layer
        return old

    def inputs_of(self, name: str) -> tuple[str, ...]:
        """The values node ``name`` reads."""
        return self._edges[name]

    def output_names(self) -> list[str]:
        """The values the graph returns: those of set_outputs, else the last node's output(s)."""
        if self.outputs:
            return self.outputs
        if not self._nodes:
            return list(self.inputs)
        last = next(reversed(self._nodes))
        k = num_outputs(self._nodes[last])
        return [last] if k == 1 else [f"{last}:{i}" for i in range(k)]

    def subgraph(self, outputs) -> Graph:
        """The part of the graph that computes ``outputs``: the same layer objects, only the nodes needed."""
        names = [outputs] if isinstance(outputs, str) else list(outputs)
        needed, stack = set(), [n.split(":")[0] for n in names]
        while stack:
            node = stack.pop()
            if node in self._nodes and node not in needed:
                needed.add(node)
                stack += [v.split(":")[0] for v in self._edges[node]]
        sub = Graph(self.inputs)
        for name, layer in self._nodes.items():
            if name in needed:
                sub._nodes[name], sub._edges[name] = layer, self._edges[name]
        return sub.set_outputs(names)

    # -- children -------------------------------------------------------------------------------------------
    def named_children(self):
        return list(self._nodes.items())

    def __getitem__(self, name):
        return self._nodes[name]

    def __len__(self):
        return len(self._nodes)

    def __iter__(self):
        return iter(self._nodes.values())

    @property
    def takes_list(self):  # a multi-input graph inside another graph receives the list of its inputs
        return len(self.inputs) != 1

    @property
    def arity(self):
        return len(self.inputs)

    @property
    def num_outputs(self):
        return len(self.output_names())

    # -- running --------------------------------------------------------------------------------------------
    def _as_list(self, x, what):
        if len(self.inputs) == 1:
            return [x]
        if not isinstance(x, list | tuple) or len(x) != len(self.inputs):
            raise TypeError(f"Graph: {what} takes a list of {len(self.inputs)} arrays (for "
                            f"{', '.join(self.inputs)}), received {type(x).__name__}.")
        return list(x)

    def _last_uses(self):
        """For each value, the index of the last node reading it, so forward can let it go after that."""
        last = {}
        for i, name in enumerate(self._nodes):
            for v in self._edges[name]:
                last[v] = i
        return last

    def forward(self, x):
        values = dict(zip(self.inputs, self._as_list(x, "forward"), strict=True))
        # input shapes and dtypes: the zero gradient of an input that no output depends on
        input_specs = {v: (np.shape(a), getattr(a, "dtype", np.float32)) for v, a in values.items()}
        outputs, last = set(self.output_names()), self._last_uses()
        for i, (name, layer) in enumerate(self._nodes.items()):
            args = [values[v] for v in self._edges[name]]
            try:
                y = layer.forward(args if takes_list(layer) else args[0])
            except ShapeError as e:
                raise ShapeError(f"Graph node {name!r}: {e}") from e
            if num_outputs(layer) == 1:
                values[name] = y
            else:
                values.update((f"{name}:{j}", part) for j, part in enumerate(y))
            for v in set(self._edges[name]):  # free what no later node reads (and the graph does not return)
                if last[v] == i and v not in outputs:
                    del values[v]
        self._cache = input_specs
        result = [values[v] for v in self.output_names()]
        return result[0] if len(result) == 1 else tuple(result)

    def backward(self, dy):
        return self._backward(dy, need_input_grads=True)

    def backward_params(self, dy):
        self._backward(dy, need_input_grads=False)

    def _backward(self, dy, need_input_grads):
        input_specs = self._pop_cache()
        names = self.output_names()
        dys = [dy] if len(names) == 1 else list(dy)
        if len(dys) != len(names):
            raise ValueError(f"Graph.backward: expected {len(names)} gradients (for {', '.join(names)}), "
                             f"received {len(dys)}.")
        grads: dict[str, np.ndarray] = {}
        for name, g in zip(names, dys, strict=True):
            _accumulate(grads, name, g)
        for name in reversed(self._nodes):
            layer, sources = self._nodes[name], self._edges[name]
            k = num_outputs(layer)
            if k == 1:
                if name not in grads:
                    continue  # no path from this node to an output: nothing to differentiate
                d = grads.pop(name)
            else:
                d = [grads.pop(f"{name}:{j}", None) for j in range(k)]
                if all(g is None for g in d):
                    continue
            if not need_input_grads and not takes_list(layer) and sources[0] in self.inputs:
                layer.backward_params(d)  # it reads the graph's input: no dx needed (a first layer)
                continue
            dx = layer.backward(d)
            for v, g in zip(sources, dx if takes_list(layer) else [dx], strict=True):
                _accumulate(grads, v, g)
        if not need_input_grads:
            return None
        result = []
        for v in self.inputs:
            if v in grads:
                result.append(grads[v])
            else:  # the input did not influence the outputs
                shape, dtype = input_specs[v]
                result.append(np.zeros(shape, dtype=dtype))
        return result[0] if len(result) == 1 else result

    def output_shape(self, input_shape):
        shapes = dict(zip(self.inputs, [tuple(input_shape)] if len(self.inputs) == 1 else
                          [tuple(s) for s in input_shape], strict=True))
        for name, layer in self._nodes.items():
            args = [shapes[v] for v in self._edges[name]]
            try:
                out = layer.output_shape(args if takes_list(layer) else args[0])
            except ShapeError as e:
                raise ShapeError(f"Graph node {name!r}: {e}") from e
            if num_outputs(layer) == 1:
                shapes[name] = tuple(out)
            else:
                shapes.update((f"{name}:{j}", tuple(s)) for j, s in enumerate(out))
        result = [shapes[v] for v in self.output_names()]
        return result[0] if len(result) == 1 else result

    # -- description ----------------------------------------------------------------------------------------
    def config(self):
        return {"type": "Graph", "inputs": list(self.inputs), "outputs": list(self.output_names()),
                "nodes": [{"name": n, "inputs": list(self._edges[n]), "layer": layer.config()}
                          for n, layer in self._nodes.items()]}

    @classmethod
    def _from_config(cls, config):
        graph = cls(config["inputs"])
        for node in config["nodes"]:
            graph.add(node["name"], from_config(node["layer"]), node["inputs"])
        return graph.set_outputs(config["outputs"])

    def __repr__(self):
        head = f"Graph(inputs={', '.join(self.inputs)}; outputs={', '.join(self.output_names())})"
        if not self._nodes:
            return head
        lines = [f"  ({name}): " + repr(layer).replace("\n", "\n  ") + "  <- " + ", ".join(self._edges[name])
                 for name, layer in self._nodes.items()]
        return head + "[\n" + "\n".join(lines) + "\n]"


def _accumulate(grads, name, g):
    """Sum gradients arriving at one value from several readers (never in place: g may be a view)."""
    if g is None:
        return
    grads[name] = g if name not in grads else grads[name] + g
