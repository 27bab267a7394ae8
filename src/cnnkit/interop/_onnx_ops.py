"""One function per ONNX operator: the cnnkit layers it becomes (used by :mod:`.onnx_import`).

A converter receives the builder ``b``, the node, its attributes and input names, and returns the node's
outputs: runtime Tensors (made with ``b.layer(...)``) or load-time Static values. Operators whose inputs
are all known at load time are folded with NumPy (``FOLDERS``) instead, once per probe batch size.

Attributes that moved to inputs across opsets (Split's sizes, Squeeze's axes, Pad's pads, Clip's bounds,
Resize's scales, ReduceMean's axes, Dropout's ratio) are read from wherever the node's opset keeps them.
"""

from __future__ import annotations

import math

import numpy as np

from cnnkit import layers as L
from cnnkit.interop import _onnx_layers as O
from cnnkit.interop._onnx_layers import TRANSFORMS
from cnnkit.interop.onnx_import import PROBES, OnnxImportError, Static, Tensor

INT64_MAX = np.iinfo(np.int64).max


class _Zeros:
    """A stand-in for a random generator that draws zeros: the importer overwrites every weight it
    creates, and drawing VGG's 140 M random numbers first would cost seconds."""

    def random(self, shape, dtype=np.float64):
        return np.zeros(shape, dtype=dtype)


NO_DRAW = _Zeros()


# -- small helpers ---------------------------------------------------------------------------------------

def _pairs(pads, nd):
    """ONNX's [x1_begin, x2_begin, ..., x1_end, x2_end, ...] -> ((begin, end) per axis)."""
    pads = list(pads) if pads is not None else [0] * (2 * nd)
    return tuple((int(pads[i]), int(pads[i + nd])) for i in range(nd))


def _window_pads(a, spatial, kernel, strides, dilations, *, what):
    """Padding pairs from ``pads`` or ``auto_pad`` (SAME_UPPER/SAME_LOWER: output = ceil(input / stride))."""
    auto = a.get("auto_pad", "NOTSET")
    nd = len(kernel)
    if auto in ("NOTSET", ""):
        return _pairs(a.get("pads"), nd)
    if auto == "VALID":
        return ((0, 0),) * nd
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise OnnxImportError(f"onnx.load: {what} has auto_pad={auto!r}; expected NOTSET, VALID, SAME_UPPER "
                              f"or SAME_LOWER.")
    pairs = []
    for n, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        small, large = total // 2, total - total // 2
        pairs.append((small, large) if auto == "SAME_UPPER" else (large, small))
    return tuple(pairs)


def _input_or_attr(b, node, inputs, index, attrs, name, default=None):
    """An operand that older opsets keep as an attribute and newer ones as an (optional) input."""
    if len(inputs) > index and inputs[index]:
        return b.static(inputs[index], f"{name} of {node.op_type}")
    return attrs.get(name, default)


def _axis(axis, ndim):
    return int(axis) % ndim


def _per_example_target(b, x: Tensor, out_shapes, what):
    """The per-example shape of an output that must keep the batch axis first, or an error."""
    t = Tensor("", tuple(tuple(int(n) for n in s) for s in out_shapes))
    target = t.per_example()
    if target is None:
        raise OnnxImportError(f"onnx.load: {what} changes the batch axis (shapes {out_shapes[0]} and "
                              f"{out_shapes[1]} for batches {PROBES}); cnnkit keeps axis 0 as the batch.")
    return target


def _reshaped(b, node, x: Tensor, target, hint=None):
    """x with per-example shape ``target``: itself, a Flatten (to a vector) or a Reshape node."""
    if tuple(target) == x.shape[1:]:
        return x
    if len(target) == 1:
        return b.layer(node, L.Flatten(), [x], hint)
    return b.layer(node, L.Reshape(tuple(target)), [x], hint)


def _float(array):
    return np.asarray(array, dtype=np.float32)


# -- convolution, pooling, normalization --------------------------------------------------------------

def conv(b, node, a, inputs):
    x, w = b.tensor(inputs[0]), b.static(inputs[1], "the weight of Conv")
    bias = b.static(inputs[2], "the bias of Conv") if len(inputs) > 2 and inputs[2] else None
    kernel = tuple(a.get("kernel_shape", w.shape[2:]))
    nd = len(kernel)
    if tuple(w.shape[2:]) != kernel:
        raise OnnxImportError(f"onnx.load: Conv {node.name!r} has kernel_shape {kernel} but weight "
                              f"{w.shape}.")
    strides, dilations = tuple(a.get("strides", [1] * nd)), tuple(a.get("dilations", [1] * nd))
    group = int(a.get("group", 1))
    pads = _window_pads(a, x.shape[2:], kernel, strides, dilations, what=f"Conv {node.name!r}")
    cls = {1: L.Conv1d, 2: L.Conv2d, 3: L.Conv3d}.get(nd)
    if cls is None:
        raise OnnxImportError(f"onnx.load: Conv {node.name!r} is {nd}-D; cnnkit has 1-, 2- and 3-D.")
    layer = cls(w.shape[1] * group, w.shape[0], kernel, strides, pads, dilations, group,
                bias=bias is not None, fit="crop", rng=NO_DRAW)
    layer.weight.data[...] = _float(w)
    if bias is not None:
        layer.bias.data[...] = _float(bias)
    return [b.layer(node, layer, [x])]


def conv_transpose(b, node, a, inputs):
    x, w = b.tensor(inputs[0]), b.static(inputs[1], "the weight of ConvTranspose")
    bias = b.static(inputs[2], "the bias of ConvTranspose") if len(inputs) > 2 and inputs[2] else None
    kernel = tuple(a.get("kernel_shape", w.shape[2:]))
    nd = len(kernel)
    cls = {2: L.ConvTranspose2d, 1: getattr(L, "ConvTranspose1d", None),
           3: getattr(L, "ConvTranspose3d", None)}.get(nd)
    if cls is None:
        raise OnnxImportError(f"onnx.load: ConvTranspose {node.name!r} is {nd}-D; cnnkit has no such layer.")
    strides, dilations = tuple(a.get("strides", [1] * nd)), tuple(a.get("dilations", [1] * nd))
    group, output_padding = int(a.get("group", 1)), list(a.get("output_padding", [0] * nd))
    auto, spatial = a.get("auto_pad", "NOTSET"), x.shape[2:]
    if "output_shape" in a or auto in ("SAME_UPPER", "SAME_LOWER"):
        wanted = list(a["output_shape"])[-nd:] if "output_shape" in a else \
            [n * s for n, s in zip(spatial, strides, strict=True)]
        pads = []
        for i, (n, k, s, d) in enumerate(zip(spatial, kernel, strides, dilations, strict=True)):
            total = s * (n - 1) + output_padding[i] + (k - 1) * d + 1 - wanted[i]
            if total < 0:  # the output is larger than the kernel's reach: the rest is output padding
                output_padding[i] -= total
                total = 0
            small, large = total // 2, total - total // 2
            pads.append((small, large) if auto == "SAME_UPPER" else (large, small))
        pads = tuple(pads)
    else:
        pads = _window_pads(a, spatial, kernel, strides, dilations, what=f"ConvTranspose {node.name!r}")
    layer = cls(w.shape[0], w.shape[1] * group, kernel, strides, pads, tuple(output_padding), group,
                bias is not None, dilations, rng=NO_DRAW)
    layer.weight.data[...] = _float(w)
    if bias is not None:
        layer.bias.data[...] = _float(bias)
    return [b.layer(node, layer, [x])]


def _pool(b, node, a, inputs, kind):
    x = b.tensor(inputs[0])
    kernel = tuple(a["kernel_shape"])
    nd = len(kernel)
    strides, dilations = tuple(a.get("strides", [1] * nd)), tuple(a.get("dilations", [1] * nd))
    pads = _window_pads(a, x.shape[2:], kernel, strides, dilations, what=f"{node.op_type} {node.name!r}")
    fit = "pad" if a.get("ceil_mode", 0) else "crop"
    if kind == "max":
        cls = {1: L.MaxPool1d, 2: L.MaxPool2d, 3: getattr(L, "MaxPool3d", None)}.get(nd)
        make = None if cls is None else (lambda: cls(kernel, strides, pads, dilations, fit=fit))
    else:
        if any(d != 1 for d in dilations):
            raise OnnxImportError(f"onnx.load: AveragePool {node.name!r} has dilations {dilations}; cnnkit's "
                                  f"average pooling has none.")
        cls = {2: L.AvgPool2d, 1: getattr(L, "AvgPool1d", None), 3: getattr(L, "AvgPool3d", None)}.get(nd)
        include = bool(a.get("count_include_pad", 0))
        make = None if cls is None else \
            (lambda: cls(kernel, strides, pads, count_include_pad=include, fit=fit))
    if make is None:
        raise OnnxImportError(f"onnx.load: {node.op_type} {node.name!r} is {nd}-D; cnnkit has no such layer.")
    return [b.layer(node, make(), [x])]


def _global_pool(b, node, a, inputs, kind):
    x = b.tensor(inputs[0])
    if x.ndim == 4:
        return [b.layer(node, L.GlobalAvgPool2d() if kind == "avg" else L.GlobalMaxPool2d(), [x])]
    name = f"Adaptive{'Avg' if kind == 'avg' else 'Max'}Pool{x.ndim - 2}d"
    if not hasattr(L, name):
        raise OnnxImportError(f"onnx.load: {node.op_type} {node.name!r} on a {x.ndim}-D input; cnnkit has "
                              f"no {name}.")
    return [b.layer(node, getattr(L, name)(1), [x])]


def lp_pool(b, node, a, inputs):
    x = b.tensor(inputs[0])
    kernel = tuple(a["kernel_shape"])
    if any(a.get("pads", [0])) or a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or x.ndim != 4:
        raise OnnxImportError(f"onnx.load: LpPool {node.name!r} pads or is not 2-D; cnnkit's LPPool2d does "
                              f"neither.")
    layer = L.LPPool2d(float(a.get("p", 2)), kernel, tuple(a.get("strides", [1, 1])), fit="crop")
    return [b.layer(node, layer, [x])]


def lrn(b, node, a, inputs):
    layer = L.LocalResponseNorm(int(a["size"]), float(a.get("alpha", 1e-4)), float(a.get("beta", 0.75)),
                                float(a.get("bias", 1.0)))
    return [b.layer(node, layer, [b.tensor(inputs[0])])]


def batch_norm(b, node, a, inputs):
    x = b.tensor(inputs[0])
    scale, shift, mean, var = (b.static(name, f"{what} of BatchNormalization")
                               for name, what in zip(inputs[1:5], ("the scale", "the bias", "the mean",
                                                                   "the variance")))
    cls = {2: L.BatchNorm1d, 3: L.BatchNorm1d, 4: L.BatchNorm2d,
           5: getattr(L, "BatchNorm3d", None)}.get(x.ndim)
    if cls is None:
        raise OnnxImportError(f"onnx.load: BatchNormalization {node.name!r} on a {x.ndim}-D input.")
    # ONNX's momentum weighs the old running value, PyTorch's (and cnnkit's) the new batch statistic
    layer = cls(scale.size, float(a.get("epsilon", 1e-5)), 1.0 - float(a.get("momentum", 0.9)))
    layer.weight.data[...], layer.bias.data[...] = _float(scale), _float(shift)
    layer.running_mean[...], layer.running_var[...] = _float(mean), _float(var)
    return [b.layer(node, layer, [x])]


def instance_norm(b, node, a, inputs):
    x = b.tensor(inputs[0])
    scale, shift = b.static(inputs[1], "the scale of InstanceNormalization"), \
        b.static(inputs[2], "the bias of InstanceNormalization")
    cls = {3: L.InstanceNorm1d, 4: L.InstanceNorm2d, 5: L.InstanceNorm3d}.get(x.ndim)
    if cls is None:
        raise OnnxImportError(f"onnx.load: InstanceNormalization {node.name!r} on a {x.ndim}-D input; "
                              f"cnnkit's InstanceNorm1d/2d/3d take (N, C, *S) with 1 to 3 spatial axes.")
    # the input's own statistics, as ONNX's operator (no running averages: track_running_stats=False)
    layer = cls(scale.size, float(a.get("epsilon", 1e-5)), affine=True)
    layer.weight.data[...], layer.bias.data[...] = _float(scale), _float(shift)
    return [b.layer(node, layer, [x])]


def _per_element(value, normalized, what):
    """LayerNormalization's Scale or B as LayerNorm's weight or bias: of the normalized shape, leading axes
    of size 1 dropped; one that is shared over some normalized axes is refused."""
    lead = value.ndim - len(normalized)
    if lead >= 0 and value.shape[lead:] == normalized and all(n == 1 for n in value.shape[:lead]):
        return _float(value.reshape(normalized))
    raise OnnxImportError(f"onnx.load: {what} of shape {value.shape} is broadcast over the normalized axes "
                          f"{normalized}; cnnkit's LayerNorm learns one value per normalized element.")


def layer_norm(b, node, a, inputs):
    x = b.tensor(inputs[0])
    axis = _axis(a.get("axis", -1), x.ndim)
    what = f"LayerNormalization {node.name!r}"
    if axis == 0:
        raise OnnxImportError(f"onnx.load: {what} has axis={a.get('axis')}: it normalizes over the batch "
                              f"axis too; cnnkit's LayerNorm normalizes each example (axis >= 1).")
    if int(a.get("stash_type", 1)) != 1:
        raise OnnxImportError(f"onnx.load: {what} has stash_type={a['stash_type']}; cnnkit's LayerNorm "
                              f"computes its statistics in the input's precision (stash_type=1, float32).")
    normalized = x.shape[axis:]
    scale = b.static(inputs[1], "the scale of LayerNormalization")
    bias = b.static(inputs[2], "the bias of LayerNormalization") if len(inputs) > 2 and inputs[2] else None
    layer = L.LayerNorm(normalized, float(a.get("epsilon", 1e-5)), bias=bias is not None)
    layer.weight.data[...] = _per_element(scale, normalized, f"{what}: Scale")
    if bias is not None:
        layer.bias.data[...] = _per_element(bias, normalized, f"{what}: B")
    return [b.layer(node, layer, [x])]


# -- activations -------------------------------------------------------------------------------------------

def _simple(make):
    def convert(b, node, a, inputs):
        return [b.layer(node, make(a), [b.tensor(inputs[0])])]
    return convert


def clip(b, node, a, inputs):
    low = _input_or_attr(b, node, inputs, 1, a, "min", -np.inf)
    high = _input_or_attr(b, node, inputs, 2, a, "max", np.inf)
    layer = O.activation("Clip", float(np.asarray(low)), float(np.asarray(high)))
    return [b.layer(node, layer, [b.tensor(inputs[0])])]


def prelu(b, node, a, inputs):
    x, slope = b.tensor(inputs[0]), b.static(inputs[1], "the slope of PRelu")
    if slope.ndim == 1 and slope.size == x.shape[1] and x.ndim > 2 and slope.size > 1:
        slope = slope.reshape(-1, *([1] * (x.ndim - 2)))  # opset < 7 broadcast a (C,) slope per channel
    return [b.layer(node, O.prelu(slope, x.shape), [x])]


def _softmax(b, node, a, inputs, log):
    x = b.tensor(inputs[0])
    default = -1 if b.opset >= 13 else 1
    axis = _axis(a.get("axis", default), x.ndim)
    if axis == 0:
        raise OnnxImportError(f"onnx.load: {node.op_type} {node.name!r} normalizes over the batch axis.")

    def make(dim):
        return L.LogSoftmax(dim) if log else L.Softmax(dim)

    if b.opset >= 13 or axis == x.ndim - 1:
        return [b.layer(node, make(axis), [x])]
    # before opset 13 the axes from `axis` on are normalized together, as one flattened axis
    flat = b.layer(node, L.Flatten(start_dim=axis), [x], b.node_hint(node) + "_flat")
    y = b.layer(node, make(axis), [flat])
    return [_reshaped(b, node, y, x.shape[1:], b.node_hint(node) + "_unflat")]


# -- fully connected ---------------------------------------------------------------------------------------

def gemm(b, node, a, inputs):
    x = b.tensor(inputs[0])
    if a.get("transA", 0) or x.ndim != 2:
        raise OnnxImportError(f"onnx.load: Gemm {node.name!r} takes A transposed or not 2-D (shape "
                              f"{x.shape}); cnnkit's Linear takes (N, in_features).")
    weight, alpha = b.static(inputs[1], "B of Gemm"), float(a.get("alpha", 1.0))
    weight = weight if alpha == 1.0 else weight * alpha
    weight = weight if a.get("transB", 0) else weight.T
    bias = b.static(inputs[2], "C of Gemm") if len(inputs) > 2 and inputs[2] else None
    out_features, in_features = weight.shape
    layer = L.Linear(in_features, out_features, bias=bias is not None, rng=NO_DRAW)
    layer.weight.data[...] = _float(weight)
    if bias is not None:
        if bias.ndim == 2 and bias.shape[0] != 1:
            raise OnnxImportError(f"onnx.load: Gemm {node.name!r} adds C of shape {bias.shape}, one row per "
                                  f"example; cnnkit's Linear has one bias for all.")
        layer.bias.data[...] = np.broadcast_to(_float(bias).reshape(-1) * float(a.get("beta", 1.0)),
                                               (out_features,))
    return [b.layer(node, layer, [x])]


def matmul(b, node, a, inputs):
    left, right = b.get(inputs[0]), b.get(inputs[1])
    if isinstance(left, Tensor) and isinstance(right, Static) and left.ndim == 2 and right.value.ndim == 2 \
            and not right.varies:
        weight = np.asarray(right.value)
        layer = L.Linear(weight.shape[0], weight.shape[1], bias=False, rng=NO_DRAW)
        layer.weight.data[...] = _float(weight.T)
        return [b.layer(node, layer, [left])]
    return [b.layer(node, L.MatMul(), [b.tensor(inputs[0]), b.tensor(inputs[1])])]


# -- element-wise arithmetic -------------------------------------------------------------------------------

def _legacy_broadcast(b, node, a, inputs):
    """Before opset 7, B broadcast against A from ``axis`` on (when ``broadcast=1``): make it NumPy's."""
    if b.opset >= 7 or not a.get("broadcast", 0) or "axis" not in a:
        return [b.tensor(name) for name in inputs]
    x = b.tensor(inputs[0])
    other = b.get(inputs[1])
    if not isinstance(other, Static):
        raise OnnxImportError(f"onnx.load: {node.op_type} {node.name!r} broadcasts a run-time B from axis "
                              f"{a['axis']} (opset {b.opset}); only constants can be aligned.")
    value = np.asarray(other.value)
    axis = _axis(a["axis"], x.ndim)
    aligned = value.reshape(value.shape + (1,) * (x.ndim - axis - value.ndim))
    name = inputs[1] + "_aligned"
    b.values[name] = Static((aligned, aligned), other.fixed)
    return [x, b.tensor(name)]


def _merge(cls):
    def convert(b, node, a, inputs):
        return [b.layer(node, cls(), _legacy_broadcast(b, node, a, inputs))]
    return convert


def sum_(b, node, a, inputs):
    values = [b.tensor(name) for name in inputs]
    return [values[0]] if len(values) == 1 else [b.layer(node, L.Add(), values)]


def concat(b, node, a, inputs):
    values = [b.tensor(name) for name in inputs if name]
    axis = _axis(a.get("axis", 1), values[0].ndim)
    if axis == 0:
        raise OnnxImportError(f"onnx.load: Concat {node.name!r} joins along the batch axis.")
    return [b.layer(node, L.Concatenate(axis), values)]


# -- shapes ------------------------------------------------------------------------------------------------

def split(b, node, a, inputs):
    x = b.tensor(inputs[0])
    axis = _axis(a.get("axis", 0), x.ndim)
    if axis == 0:
        raise OnnxImportError(f"onnx.load: Split {node.name!r} cuts the batch axis.")
    sizes = _input_or_attr(b, node, inputs, 1, a, "split")
    count = len(node.output)
    if sizes is None:  # equal parts (the last one smaller, from opset 18's num_outputs)
        n = x.shape[axis]
        part = -(-n // count)
        sizes = [part] * (count - 1) + [n - part * (count - 1)]
    layer = L.Split([int(s) for s in np.asarray(sizes).reshape(-1)], axis)
    return b.layer(node, layer, [x])


def slice_(b, node, a, inputs):
    x = b.tensor(inputs[0])
    if b.opset < 10:
        starts, ends = a["starts"], a["ends"]
        axes, steps = a.get("axes", list(range(len(starts)))), [1] * len(starts)
    else:
        starts, ends = b.static(inputs[1], "starts of Slice"), b.static(inputs[2], "ends of Slice")
        axes = b.static(inputs[3], "axes of Slice") if len(inputs) > 3 and inputs[3] else range(len(starts))
        steps = b.static(inputs[4], "steps of Slice") if len(inputs) > 4 and inputs[4] else [1] * len(starts)
    y = x
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis, start, end, step = _axis(axis, x.ndim), int(start), int(end), int(step)
        n = y.shape[axis]
        if axis == 0:
            if range(n)[start:end:step] == range(n):
                continue
            raise OnnxImportError(f"onnx.load: Slice {node.name!r} slices the batch axis.")
        if range(n)[start:end:step] == range(n):
            continue
        y = b.layer(node, L.Slice(start, end if abs(end) < 2**62 else None, step, axis), [y])
    return [y]


def flatten(b, node, a, inputs):
    x = b.tensor(inputs[0])
    axis = _axis(a.get("axis", 1), x.ndim) if x.ndim else 1
    if axis == 0 or math.prod(x.shape[1:axis]) != 1:
        raise OnnxImportError(f"onnx.load: Flatten {node.name!r} with axis={a.get('axis', 1)} merges the "
                              f"batch axis with others.")
    return [_reshaped(b, node, x, (math.prod(x.shape[1:]),))]


def reshape(b, node, a, inputs):
    x, target = b.tensor(inputs[0]), b.get(inputs[1])
    if not isinstance(target, Static):
        raise OnnxImportError(f"onnx.load: Reshape {node.name!r} takes a shape computed at run time.")
    allow_zero = a.get("allowzero", 0)
    outs = []
    for k, probe in enumerate(PROBES):
        wanted = [int(n) for n in np.asarray(target.values[k]).reshape(-1)]
        if wanted and (wanted[0] in b.declared_batch or (wanted[0] == 0 and not allow_zero)):
            wanted[0] = probe  # the file's fixed batch size (or "copy axis 0"): keep the batch axis
        shape = x.shapes[k]
        wanted = [shape[i] if n == 0 and not allow_zero else n for i, n in enumerate(wanted)]
        if -1 in wanted:
            known = math.prod(n for n in wanted if n != -1)
            wanted[wanted.index(-1)] = math.prod(shape) // known if known else 0
        if math.prod(wanted) != math.prod(shape):
            raise OnnxImportError(f"onnx.load: Reshape {node.name!r} cannot make {tuple(shape)} into "
                                  f"{tuple(wanted)}.")
        outs.append(tuple(wanted))
    return [_reshaped(b, node, x, _per_example_target(b, x, outs, f"Reshape {node.name!r}"))]


def transpose(b, node, a, inputs):
    x = b.tensor(inputs[0])
    perm = tuple(int(p) for p in a.get("perm", range(x.ndim - 1, -1, -1)))
    if perm == tuple(range(x.ndim)):
        return [x]
    if perm[0] != 0:
        raise OnnxImportError(f"onnx.load: Transpose {node.name!r} moves the batch axis (perm={perm}).")
    return [b.layer(node, L.Permute(perm), [x])]


def _squeeze_shape(shape, axes, squeeze):
    shape = list(shape)
    if squeeze:
        axes = sorted({_axis(ax, len(shape)) for ax in axes} if axes is not None else
                      [i for i, n in enumerate(shape) if n == 1])
        return tuple(n for i, n in enumerate(shape) if i not in axes)
    rank = len(shape) + len(axes)
    for ax in sorted(_axis(ax, rank) for ax in axes):
        shape.insert(ax, 1)
    return tuple(shape)


def _squeeze(squeeze):
    def convert(b, node, a, inputs):
        x = b.tensor(inputs[0])
        axes = _input_or_attr(b, node, inputs, 1, a, "axes")
        axes = None if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]
        if not squeeze and axes is None:
            raise OnnxImportError(f"onnx.load: Unsqueeze {node.name!r} has no axes.")
        outs = [_squeeze_shape(s, axes, squeeze) for s in x.shapes]
        return [_reshaped(b, node, x, _per_example_target(b, x, outs, f"{node.op_type} {node.name!r}"))]
    return convert


def dropout(b, node, a, inputs):
    ratio = _input_or_attr(b, node, inputs, 1, a, "ratio", 0.5)
    return [b.layer(node, L.Dropout(float(np.asarray(ratio))), [b.tensor(inputs[0])])]


_PAD_LAYERS = {"constant": "ConstantPad", "reflect": "ReflectionPad", "edge": "ReplicationPad",
               "wrap": "CircularPad"}


def pad(b, node, a, inputs):
    x = b.tensor(inputs[0])
    mode = a.get("mode", "constant")
    pads = _input_or_attr(b, node, inputs, 1, a, "pads", a.get("paddings"))
    value = _input_or_attr(b, node, inputs, 2, a, "value", 0.0)
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    if b.opset >= 18 and len(inputs) > 3 and inputs[3]:  # pads for the listed axes only
        axes = [_axis(ax, x.ndim) for ax in b.static(inputs[3], "axes of Pad").reshape(-1)]
        full = [0] * (2 * x.ndim)
        for i, ax in enumerate(axes):
            full[ax], full[ax + x.ndim] = pads[i], pads[i + len(axes)]
        pads = full
    pairs = _pairs(pads, x.ndim)
    nd = x.ndim - 2
    if any(pairs[0] + pairs[1]) or any(lo < 0 or hi < 0 for lo, hi in pairs) or not 1 <= nd <= 3:
        raise OnnxImportError(f"onnx.load: Pad {node.name!r} pads {pairs} on a {x.ndim}-D input; cnnkit pads "
                              f"the spatial axes of (N, C, *S) by amounts >= 0.")
    if not any(lo or hi for lo, hi in pairs):
        return [x]
    cls = getattr(L, f"{_PAD_LAYERS[mode]}{nd}d")
    layer = cls(pairs[2:], float(np.asarray(value))) if mode == "constant" else cls(pairs[2:])
    return [b.layer(node, layer, [x])]


def resize(b, node, a, inputs):
    x = b.tensor(inputs[0])
    if node.op_type == "Upsample":
        scales = _input_or_attr(b, node, inputs, 1, a, "scales")
        sizes, transform, nearest = None, "asymmetric", "floor"
        mode = a.get("mode", "nearest")
    else:
        scale_index = 1 if b.opset < 11 else 2
        scales = b.static(inputs[scale_index], "scales of Resize") if len(inputs) > scale_index and \
            inputs[scale_index] else None
        sizes = b.static(inputs[3], "sizes of Resize") if len(inputs) > 3 and inputs[3] else None
        if scales is not None and np.asarray(scales).size == 0:
            scales = None
        mode = a.get("mode", "nearest")
        transform = a.get("coordinate_transformation_mode", "asymmetric" if b.opset < 11 else "half_pixel")
        nearest = a.get("nearest_mode", "round_prefer_floor")
    mode = "linear" if mode in ("linear", "bilinear", "trilinear") else mode
    if "axes" in a and (scales is not None or sizes is not None):  # opset 18: the listed axes only
        full = [1.0] * x.ndim if scales is not None else list(x.shape)  # the others keep their size
        listed = scales if scales is not None else sizes
        for ax, value in zip(a["axes"], np.asarray(listed).reshape(-1), strict=True):
            full[_axis(ax, x.ndim)] = value
        scales, sizes = (full, None) if scales is not None else (None, full)
    if scales is not None:
        scales = [float(s) for s in np.asarray(scales).reshape(-1)]
        if scales[:2] != [1.0, 1.0]:
            raise OnnxImportError(f"onnx.load: {node.op_type} {node.name!r} scales the batch or channel axis "
                                  f"({scales[:2]}).")
        layer = O.resize(x.shape[2:], scales=scales[2:], mode=mode, transform=transform, nearest_mode=nearest)
    elif sizes is not None:
        sizes = [int(s) for s in np.asarray(sizes).reshape(-1)]
        if sizes[1] != x.shape[1]:
            raise OnnxImportError(f"onnx.load: Resize {node.name!r} changes the channel count.")
        layer = O.resize(x.shape[2:], sizes=sizes[2:], mode=mode, transform=transform, nearest_mode=nearest)
    else:
        raise OnnxImportError(f"onnx.load: {node.op_type} {node.name!r} has neither scales nor sizes.")
    return [b.layer(node, layer, [x])]


def reduce_mean(b, node, a, inputs):
    x = b.tensor(inputs[0])
    axes = _input_or_attr(b, node, inputs, 1, a, "axes")
    axes = sorted({_axis(v, x.ndim) for v in np.asarray(axes).reshape(-1)}) if axes is not None else None
    if axes != list(range(2, x.ndim)):
        raise OnnxImportError(f"onnx.load: ReduceMean {node.name!r} averages over axes {axes} of a "
                              f"{x.ndim}-D input; cnnkit averages over the spatial axes (a global pool).")
    pooled = _global_pool(b, node, a, [inputs[0]], "avg")[0]
    if a.get("keepdims", 1):
        return [pooled]
    return [_reshaped(b, node, pooled, (x.shape[1],), b.node_hint(node) + "_squeeze")]


def cast(b, node, a, inputs):
    return [b.tensor(inputs[0])]  # on run-time (float) data a cast to float changes nothing cnnkit keeps


def identity(b, node, a, inputs):
    return [b.get(inputs[0])]


LAYER_OPS = {
    "Conv": conv, "ConvTranspose": conv_transpose,
    "MaxPool": lambda b, n, a, i: _pool(b, n, a, i, "max"),
    "AveragePool": lambda b, n, a, i: _pool(b, n, a, i, "avg"),
    "GlobalAveragePool": lambda b, n, a, i: _global_pool(b, n, a, i, "avg"),
    "GlobalMaxPool": lambda b, n, a, i: _global_pool(b, n, a, i, "max"),
    "LpPool": lp_pool, "LRN": lrn, "BatchNormalization": batch_norm, "InstanceNormalization": instance_norm,
    "LayerNormalization": layer_norm,
    "Relu": _simple(lambda a: L.ReLU()),
    "LeakyRelu": _simple(lambda a: L.LeakyReLU(float(a.get("alpha", 0.01)))),
    "Elu": _simple(lambda a: L.ELU(float(a.get("alpha", 1.0)))),
    "Selu": _simple(lambda a: O.activation("Selu", a.get("alpha"), a.get("gamma"))),
    "Sigmoid": _simple(lambda a: L.Sigmoid()), "Tanh": _simple(lambda a: L.Tanh()),
    "Softplus": _simple(lambda a: L.Softplus()),  # PyTorch's switch to x above 20 changes < 2e-9
    "HardSigmoid": _simple(lambda a: O.activation("HardSigmoid", a.get("alpha"), a.get("beta"))),
    "HardSwish": _simple(lambda a: L.Hardswish()),
    "Clip": clip, "PRelu": prelu,
    "Softmax": lambda b, n, a, i: _softmax(b, n, a, i, False),
    "LogSoftmax": lambda b, n, a, i: _softmax(b, n, a, i, True),
    "Gemm": gemm, "MatMul": matmul,
    "Add": _merge(L.Add), "Sub": _merge(L.Subtract), "Mul": _merge(L.Multiply), "Div": _merge(L.Divide),
    "Sum": sum_, "Concat": concat, "Split": split, "Slice": slice_, "Flatten": flatten, "Reshape": reshape,
    "Transpose": transpose, "Squeeze": _squeeze(True), "Unsqueeze": _squeeze(False), "Dropout": dropout,
    "Pad": pad, "Resize": resize, "Upsample": resize, "ReduceMean": reduce_mean, "Identity": identity,
    "Cast": cast,
}


# -- load-time folding -------------------------------------------------------------------------------------

def _fold_constant(onnx, a):
    if "value" in a:
        return onnx.numpy_helper.to_array(a["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in a:
            return np.asarray(a[key], dtype=dtype)
    raise OnnxImportError(f"onnx.load: a Constant node holds {sorted(a)}; cnnkit reads numeric tensors.")


def _gather(xs, a):
    return np.take(xs[0], xs[1].astype(np.int64), axis=int(a.get("axis", 0)))


def _fold_slice(xs, a, opset):
    data = xs[0]
    if opset < 10:
        starts, ends = a["starts"], a["ends"]
        axes, steps = a.get("axes", range(len(starts))), [1] * len(starts)
    else:
        starts, ends = xs[1], xs[2]
        axes = xs[3] if len(xs) > 3 and xs[3] is not None else range(len(starts))
        steps = xs[4] if len(xs) > 4 and xs[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        index[int(axis) % data.ndim] = slice(int(start), int(end), int(step))
    return data[tuple(index)]


def _fold_reshape(xs, a):
    shape = [int(n) for n in xs[1]]
    shape = [xs[0].shape[i] if n == 0 and not a.get("allowzero", 0) else n for i, n in enumerate(shape)]
    return xs[0].reshape(shape)


def _divide(x, y):
    if np.issubdtype(x.dtype, np.integer) and np.issubdtype(y.dtype, np.integer):
        return np.trunc(x / y).astype(np.result_type(x, y))
    return x / y


def _axes_arg(xs, a, opset):
    axes = xs[1] if len(xs) > 1 and xs[1] is not None else a.get("axes")
    return None if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]


_TYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
          10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}

FOLDERS = {
    "Identity": lambda xs, a, o: xs[0],
    "Cast": lambda xs, a, o: xs[0].astype(_TYPES.get(int(a["to"]), np.float32)),
    "Gather": lambda xs, a, o: _gather(xs, a),
    "Unsqueeze": lambda xs, a, o: xs[0].reshape(_squeeze_shape(xs[0].shape, _axes_arg(xs, a, o), False)),
    "Squeeze": lambda xs, a, o: xs[0].reshape(_squeeze_shape(xs[0].shape, _axes_arg(xs, a, o), True)),
    "Concat": lambda xs, a, o: np.concatenate([x for x in xs if x is not None], axis=int(a.get("axis", 0))),
    "Slice": lambda xs, a, o: _fold_slice(xs, a, o),
    "Reshape": lambda xs, a, o: _fold_reshape(xs, a),
    "Flatten": lambda xs, a, o: xs[0].reshape(math.prod(xs[0].shape[:a.get("axis", 1)]), -1),
    "Transpose": lambda xs, a, o: xs[0].transpose(a.get("perm")),
    "ConstantOfShape": lambda xs, a, o: np.full(tuple(int(n) for n in xs[0]),
                                                a["value"] if "value" in a else np.float32(0)),
    "Add": lambda xs, a, o: xs[0] + xs[1], "Sub": lambda xs, a, o: xs[0] - xs[1],
    "Mul": lambda xs, a, o: xs[0] * xs[1], "Div": lambda xs, a, o: _divide(xs[0], xs[1]),
    "Neg": lambda xs, a, o: -xs[0], "Abs": lambda xs, a, o: np.abs(xs[0]),
    "Floor": lambda xs, a, o: np.floor(xs[0]), "Ceil": lambda xs, a, o: np.ceil(xs[0]),
    "Sqrt": lambda xs, a, o: np.sqrt(xs[0]),
    "Min": lambda xs, a, o: np.minimum.reduce(xs), "Max": lambda xs, a, o: np.maximum.reduce(xs),
    "Equal": lambda xs, a, o: np.equal(xs[0], xs[1]), "Where": lambda xs, a, o: np.where(*xs),
    "Range": lambda xs, a, o: np.arange(xs[0], xs[1], xs[2]).astype(np.result_type(xs[0], xs[1], xs[2])),
    "Expand": lambda xs, a, o: xs[0] * np.ones(tuple(int(n) for n in xs[1]), xs[0].dtype),
    "Size": lambda xs, a, o: np.asarray(xs[0].size, np.int64),
    "Shape": lambda xs, a, o: np.asarray(xs[0].shape[a.get("start", 0):a.get("end")], np.int64),
    "ReduceProd": lambda xs, a, o: np.prod(xs[0], keepdims=bool(a.get("keepdims", 1))),
}
FOLD_ONLY = {"Constant", "Shape", "Size"}  # static whatever their input: the value, or its (known) shape
SUPPORTED = set(LAYER_OPS) | FOLD_ONLY | {"ConstantOfShape", "Gather"}


def unsupported(node, opset, inputs_static, used=None):
    """Why cnnkit cannot build this node (a short phrase that groups like problems), or None.

    ``used``: the names some node or the graph output reads (an extra output nobody reads is no problem).
    """
    op, a = node.op_type, {attr.name: attr for attr in node.attribute}
    if node.domain not in ("", "ai.onnx"):
        return f"{node.domain}.{op} (a custom domain)"
    if op in FOLD_ONLY or (inputs_static and op in FOLDERS):
        return None
    if op not in LAYER_OPS:
        return f"{op} on run-time data" if op in FOLDERS else op
    outputs = [o for o in node.output[1:] if o and (used is None or o in used)]
    if op == "LRN" and a["size"].i % 2 == 0:
        return f"LRN with an even size ({a['size'].i}: ONNX centres it one channel off PyTorch's window)"
    if op == "MaxPool" and outputs:
        return "MaxPool with its Indices output"
    if op == "BatchNormalization" and (outputs or ("training_mode" in a and a["training_mode"].i)):
        return "BatchNormalization in training mode (with running-statistics outputs)"
    if op == "Dropout" and outputs:
        return "Dropout with its mask output"
    if op == "LayerNormalization" and outputs:
        return "LayerNormalization with its Mean or InvStdDev output"
    if op in ("Resize", "Upsample"):
        mode = a["mode"].s.decode() if "mode" in a else "nearest"
        transform = a["coordinate_transformation_mode"].s.decode() if "coordinate_transformation_mode" in a \
            else ""
        if mode not in ("nearest", "linear", "bilinear"):
            return f"{op} with mode={mode!r}"
        if "antialias" in a and a["antialias"].i:
            return f"{op} with antialias=1"
        if transform and transform not in TRANSFORMS:  # tf_crop_and_resize, for one
            return f"{op} with coordinate_transformation_mode={transform!r}"
        policy = a["keep_aspect_ratio_policy"].s.decode() if "keep_aspect_ratio_policy" in a else "stretch"
        if policy != "stretch":
            return f"{op} with keep_aspect_ratio_policy={policy!r}"
    if op == "Pad":
        mode = a["mode"].s.decode() if "mode" in a else "constant"
        if mode not in _PAD_LAYERS:
            return f"Pad with mode={mode!r}"
    return None


def build(b, node, attrs, inputs):
    """The values of the node's outputs: folded at load time, or cnnkit layers added to the graph."""
    op = node.op_type
    values = [b.get(name) if name else None for name in inputs]
    if op == "Constant":
        array = _fold_constant(b.onnx, attrs)
        return [Static((array, array), fixed=True)]
    if op in ("Shape", "Size") and isinstance(values[0], Tensor):
        arrays = [FOLDERS[op]([np.empty(s, dtype=np.uint8)], attrs, b.opset) for s in values[0].shapes]
        return [Static(tuple(arrays), fixed=True)]
    if op in FOLDERS and all(v is None or isinstance(v, Static) for v in values):
        if op == "ConstantOfShape" and "value" in attrs:
            attrs = {**attrs, "value": b.onnx.numpy_helper.to_array(attrs["value"]).reshape(-1)[0]}
        present = [v for v in values if v is not None]
        if all(v.values[0] is v.values[1] for v in present):  # independent of the batch: fold once
            result = FOLDERS[op]([None if v is None else v.values[0] for v in values], attrs, b.opset)
            results = (result, result)
        else:
            results = tuple(FOLDERS[op]([None if v is None else v.values[k] for v in values], attrs, b.opset)
                            for k in range(len(PROBES)))
        if results[0] is results[1]:
            results = (np.asarray(results[0]),) * 2
        return [Static(tuple(np.asarray(r) for r in results), fixed=all(v.fixed for v in present))]
    if op == "Gather":
        raise OnnxImportError(f"onnx.load: Gather {node.name!r} indexes run-time data (an embedding?); "
                              f"cnnkit folds Gather only on shapes and constants.")
    return LAYER_OPS[op](b, node, attrs, inputs)
