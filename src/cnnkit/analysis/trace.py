"""Walk a model symbolically: each leaf layer's input and output shape and receptive field, no data.

One walker serves :func:`~cnnkit.analysis.summary`, :func:`~cnnkit.analysis.receptive_field` and
:func:`~cnnkit.analysis.check`. Containers are opened (Sequential in order; Residual's body and shortcut
and Concat's branches on the same input, their fields merged); every other layer is a leaf that answers
``output_shape``. A container type the walker does not know is treated as one leaf.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from cnnkit.analysis.arithmetic import Field, field_step, is_transposed, window_hyperparameters
from cnnkit.errors import ShapeError
from cnnkit.geometry import Window, axis_names, window_geometry
from cnnkit.layers.base import Concat, Residual, Sequential
from cnnkit.layers.graph import Graph, num_outputs, takes_list


@dataclass
class Step:
    """One leaf layer as the data would flow through it (shapes include the batch axis)."""

    name: str
    layer: object
    input_shape: tuple
    output_shape: tuple
    field: Field


@dataclass
class Problem:
    """A layer whose windows do not tile its input, or that cannot take its input at all."""

    name: str
    layer: object
    message: str
    handled: bool = False  # the layer declares fit="crop"/"pad", so it runs (and rounds) anyway
    fatal: bool = False  # the walk could not go on past this layer

    def __str__(self):
        note = f" (handled by fit={self.layer.fit!r})" if self.handled else ""
        return f"{self.name or type(self.layer).__name__}{note}: {self.message}"


@dataclass
class _Walk:
    strict: bool
    steps: list = field(default_factory=list)
    problems: list = field(default_factory=list)


class _Stop(Exception):
    pass


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def trace(model, input_shape, *, strict: bool = True, problems: list | None = None) -> list[Step]:
    """The leaves of ``model`` in forward order for one example of ``input_shape`` (no batch axis).

    The first step is the input itself (name ``"input"``, layer None). With ``strict`` a layer that cannot
    take its input raises its ShapeError, prefixed with the layer's dotted name. Without it, windows that do
    not tile are recorded in ``problems`` and the walk goes on with the size PyTorch would use (rounded
    down), so that every such layer is found; it stops at the first error that has no such fallback.
    """
    shape = (1, *tuple(int(n) for n in input_shape))
    start = Field.of_input(len(shape) - 2)
    walk = _Walk(strict)
    walk.steps.append(Step("input", None, shape, shape, start))
    try:
        _walk(walk, model, "", shape, start)
    except _Stop:
        pass
    if problems is not None:
        problems.extend(walk.problems)
    return walk.steps


def _walk(walk, layer, name, shape, fld):
    if isinstance(layer, Sequential):
        for child_name, child in layer.named_children():
            shape, fld = _walk(walk, child, _join(name, child_name), shape, fld)
        return shape, fld
    if isinstance(layer, Residual):
        body_shape, body_field = shape, fld
        for child_name, child in layer.body.named_children():
            body_shape, body_field = _walk(walk, child, _join(name, child_name), body_shape, body_field)
        short_shape, short_field = shape, fld
        if layer.shortcut is not None:
            short_name = _join(name, layer.shortcut_name)
            short_shape, short_field = _walk(walk, layer.shortcut, short_name, shape, fld)
        if body_shape != short_shape:
            _fail(walk, name, layer, f"Residual: body gives {body_shape[1:]} but shortcut gives "
                                     f"{short_shape[1:]}; add a shortcut (a strided 1x1 conv) that matches.")
        shape, fld = body_shape, body_field.merge(short_field)
        if layer.activation is not None:
            shape, fld = _walk(walk, layer.activation, _join(name, "activation"), shape, fld)
        return shape, fld
    if isinstance(layer, Concat):
        outputs = [_walk(walk, branch, _join(name, branch_name), shape, fld)
                   for branch_name, branch in layer.named_children()]
        shapes = [s for s, _ in outputs]
        if any(s[:1] + s[2:] != shapes[0][:1] + shapes[0][2:] for s in shapes):
            _fail(walk, name, layer, f"Concat: branch outputs {[s[1:] for s in shapes]} differ beyond the "
                                     f"channel axis; give every branch the same stride and padding.")
        merged = outputs[0][1]
        for _, other in outputs[1:]:
            merged = merged.merge(other)
        return (shapes[0][0], sum(s[1] for s in shapes), *shapes[0][2:]), merged
    if isinstance(layer, Graph):
        return _walk_graph(walk, layer, name, shape, fld)
    out = _leaf_shape(walk, layer, name, shape)
    fld = field_step(layer, fld, shape, out)
    walk.steps.append(Step(name, layer, shape, out, fld))
    return out, fld


def _walk_graph(walk, graph, name, shape, fld):
    """A Graph's nodes in order. A merge is a leaf whose field is the merge of its inputs' fields (a
    Constant's value sees no pixels, so it adds none); each output of a Split is a step of its own."""
    if len(graph.inputs) != 1:
        raise ValueError(f"{name or 'the model'}: a Graph with {len(graph.inputs)} inputs cannot be traced "
                         f"from one input shape.")
    shapes, fields = {graph.inputs[0]: shape}, {graph.inputs[0]: fld}
    for node, layer in graph.named_children():
        node_name, sources = _join(name, node), graph.inputs_of(node)
        if takes_list(layer):
            in_shapes = [shapes[v] for v in sources]
            known = [fields[v] for v in sources if fields[v] is not None]
            out = _leaf_shape(walk, layer, node_name, in_shapes)
            out_field = known[0] if known else None
            for other in known[1:]:
                out_field = out_field.merge(other)
            walk.steps.append(Step(node_name, layer, in_shapes, out,
                                   out_field or Field.of_input(len(walk.steps[0].output_shape) - 2)))
        elif num_outputs(layer) > 1 and not layer.named_children():
            out = [tuple(s) for s in _leaf_shape(walk, layer, node_name, shapes[sources[0]])]
            out_field = fields[sources[0]]
            walk.steps += [Step(f"{node_name}:{i}", layer, shapes[sources[0]], s, out_field)
                           for i, s in enumerate(out)]
        else:
            out, out_field = _walk(walk, layer, node_name, shapes[sources[0]], fields[sources[0]])
        if num_outputs(layer) == 1:
            shapes[node], fields[node] = tuple(out), out_field
        else:
            for i, s in enumerate(out):
                shapes[f"{node}:{i}"], fields[f"{node}:{i}"] = tuple(s), out_field
    outputs = graph.output_names()
    if len(outputs) == 1:
        return shapes[outputs[0]], fields[outputs[0]]
    merged = [fields[v] for v in outputs if fields[v] is not None]
    return [shapes[v] for v in outputs], (merged[0] if merged else None)


def _fail(walk, name, layer, message):
    if walk.strict:
        raise ShapeError(f"{name}: {message}" if name else message)
    walk.problems.append(Problem(name, layer, message, fatal=True))
    raise _Stop


def _leaf_shape(walk, layer, name, shape):
    if walk.strict:
        try:
            return tuple(layer.output_shape(shape))
        except ShapeError as e:
            raise ShapeError(f"{name}: {e}" if name else str(e)) from e
    untiled = _untiled_axes(layer, shape)
    if untiled:
        handled = getattr(layer, "fit", "error") != "error"
        walk.problems.append(Problem(name, layer, " ".join(untiled), handled=handled))
    try:
        return tuple(layer.output_shape(shape))
    except ShapeError as e:
        if untiled and not walk.problems[-1].handled:
            # Go on with PyTorch's rounding down so the layers after this one are checked too.
            cropped = copy.copy(layer)
            cropped.fit = "crop"
            try:
                return tuple(cropped.output_shape(shape))
            except ShapeError:
                pass
        walk.problems.append(Problem(name, layer, str(e), fatal=True))
        raise _Stop from None


def _untiled_axes(layer, shape):
    """The ShapeError messages of the axes along which the layer's windows do not tile (fit="error")."""
    if not (hasattr(layer, "fit") and hasattr(layer, "kernel_size")) or is_transposed(layer):
        return []
    spatial = shape[2:]
    kernel, stride, dilation, padding = window_hyperparameters(layer, len(spatial))
    messages, seen = [], {}
    axes = axis_names(len(spatial))
    for n, k, s, d, pad, axis in zip(spatial, kernel, stride, dilation, padding, axes, strict=True):
        span, effective = n + sum(pad), d * (k - 1) + 1
        # A kernel larger than the input is not a tiling question: output_shape reports it as fatal.
        if effective > span or (span - effective) % s == 0:
            continue
        key = (n, effective, pad, s)
        if key in seen:  # a square input and kernel: say it once, for every axis
            messages[seen[key]] += f" The same holds for {axis}."
            continue
        try:
            window_geometry(n, k, s, pad, d, "error", name=repr(layer), axis=axis,
                            layer=Window(spatial, kernel, stride, padding, dilation,
                                         getattr(layer, "max_padding", None)))
        except ShapeError as e:
            seen[key] = len(messages)
            messages.append(str(e))
    return messages
