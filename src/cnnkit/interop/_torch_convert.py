"""The layer-by-layer tables behind to_torch and from_torch (imported only when torch is available).

``TO_TORCH`` maps a cnnkit layer type to a function building the torch module; ``FROM_TORCH`` maps a torch
module type to a function building the cnnkit layer. Windowed layers are read from their normalised
attributes (per-axis ``kernel_size``, ``stride``, ``dilation``, (before, after) ``padding`` pairs and
``fit``), everything else from the layer's constructor arguments.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from cnnkit import layers as L
from cnnkit.interop import _torch_modules as M
from cnnkit.layers import base
from cnnkit.layers.graph import Graph, num_outputs, takes_list


def _symmetric(pairs) -> bool:
    return all(lo == hi for lo, hi in pairs)


def _conv(layer, torch_class, fit_class):
    args = dict(in_channels=layer.in_channels, out_channels=layer.out_channels,
                kernel_size=layer.kernel_size, stride=layer.stride, dilation=layer.dilation,
                groups=layer.groups, bias=layer.bias is not None)
    if _symmetric(layer.padding) and layer.fit != "pad":
        # torch rounds down, which is cnnkit's fit="crop" (and fit="error" on inputs it accepts)
        return torch_class(padding=tuple(lo for lo, _ in layer.padding), **args)
    module = fit_class(padding=0, **args)
    module.setup_fit(layer.padding, layer.fit)
    return module


def _pool_fits_torch(layer) -> bool:
    # torch pools take symmetric padding of at most half the (effective) window
    dilation = getattr(layer, "dilation", (1,) * len(layer.kernel_size))
    return _symmetric(layer.padding) and all(
        lo <= (d * (k - 1) + 1) // 2 for (lo, _), k, d in zip(layer.padding, layer.kernel_size, dilation,
                                                             strict=True))


def _max_pool(layer, torch_class):
    if _pool_fits_torch(layer):
        return torch_class(layer.kernel_size, layer.stride, tuple(lo for lo, _ in layer.padding),
                           layer.dilation, ceil_mode=layer.fit == "pad")
    if torch_class is not nn.MaxPool2d:
        raise TypeError(f"{layer!r}: torch's MaxPool1d cannot pad asymmetrically or by over half a window.")
    return M.FitPool2d("max", layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.fit)


def _avg_pool(layer):
    if _pool_fits_torch(layer):
        return nn.AvgPool2d(layer.kernel_size, layer.stride, tuple(lo for lo, _ in layer.padding),
                            ceil_mode=layer.fit == "pad", count_include_pad=layer.count_include_pad)
    return M.FitPool2d("avg", layer.kernel_size, layer.stride, layer.padding, fit=layer.fit,
                       count_include_pad=layer.count_include_pad)


def _args(layer, *names):
    return [layer._init_args[n] for n in names]


def _conv_transpose(layer):
    if not _symmetric(layer.padding):
        raise TypeError(f"{layer!r}: torch's ConvTranspose2d crops both sides equally; asymmetric padding "
                        f"{layer.padding} has no torch counterpart.")
    return nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                              tuple(lo for lo, _ in layer.padding), layer.output_padding, layer.groups,
                              layer.bias is not None, layer.dilation)


def _container(layer, convert):
    if isinstance(layer, base.Residual):
        body = OrderedDict((n, convert(c)) for n, c in layer.body.named_children())
        shortcut = None if layer.shortcut is None else convert(layer.shortcut)
        activation = None if layer.activation is None else convert(layer.activation)
        return M.Residual(body, shortcut, activation, layer.shortcut_name)
    if isinstance(layer, base.Concat):
        return M.Concat(OrderedDict((n, convert(c)) for n, c in layer.named_children()))
    if isinstance(layer, Graph):
        nodes = [(n, convert(c), layer.inputs_of(n), takes_list(c), num_outputs(c))
                 for n, c in layer.named_children()]
        return M.Graph(layer.inputs, layer.output_names(), nodes)
    return nn.Sequential(OrderedDict((n, convert(c)) for n, c in layer.named_children()))


TO_TORCH = {
    "Sequential": None, "Residual": None, "Concat": None,  # containers: see _container
    "Conv1d": lambda m: _conv(m, nn.Conv1d, M.FitConv1d),
    "Conv2d": lambda m: _conv(m, nn.Conv2d, M.FitConv2d),
    "Conv3d": lambda m: _conv(m, nn.Conv3d, M.FitConv3d),
    "ConvTranspose2d": _conv_transpose,
    "LocallyConnected2d": lambda m: M.LocallyConnected2d(m.weight.shape, m.bias is not None, m.kernel_size,
                                                         m.stride, m.padding, m.fit, m.input_size),
    "Blur2d": lambda m: M.Blur2d(m.channels, m.filter_size, m.filter, m.stride, m.padding, m.fit),
    "Linear": lambda m: nn.Linear(m.in_features, m.out_features, bias=m.bias is not None),
    "Flatten": lambda m: nn.Flatten(m.start_dim, m.end_dim),
    "Dropout": lambda m: nn.Dropout(m.p),
    "BatchNorm1d": lambda m: nn.BatchNorm1d(*_args(m, "num_features", "eps", "momentum", "affine",
                                                   "track_running_stats")),
    "BatchNorm2d": lambda m: nn.BatchNorm2d(*_args(m, "num_features", "eps", "momentum", "affine",
                                                   "track_running_stats")),
    "LocalResponseNorm": lambda m: nn.LocalResponseNorm(m.size, m.alpha, m.beta, m.k),
    "MaxPool1d": lambda m: _max_pool(m, nn.MaxPool1d),
    "MaxPool2d": lambda m: _max_pool(m, nn.MaxPool2d),
    "AvgPool2d": _avg_pool,
    "LPPool2d": lambda m: M.FitPool2d("lp", m.kernel_size, m.stride, m.padding if hasattr(m, "padding")
                                      else ((0, 0), (0, 0)), fit=m.fit, norm_type=m.norm_type),
    "GlobalAvgPool2d": lambda m: nn.AdaptiveAvgPool2d(1),
    "GlobalMaxPool2d": lambda m: nn.AdaptiveMaxPool2d(1),
    "ReLU": lambda m: nn.ReLU(),
    "ReLU6": lambda m: nn.ReLU6(),
    "LeakyReLU": lambda m: nn.LeakyReLU(m.negative_slope),
    "ELU": lambda m: nn.ELU(m.alpha),
    "Sigmoid": lambda m: nn.Sigmoid(),
    "Tanh": lambda m: nn.Tanh(),
    "Softmax": lambda m: nn.Softmax(m.dim),
    "Identity": lambda m: nn.Identity(),
    # a Graph's merge and tensor nodes
    "Graph": None, "Add": lambda m: M.Add(), "Multiply": lambda m: M.Multiply(),
    "Subtract": lambda m: M.Subtract(), "Divide": lambda m: M.Divide(), "MatMul": lambda m: M.MatMul(),
    "Concatenate": lambda m: M.Concatenate(m.dim), "Constant": lambda m: M.Constant(m.shape, m.trainable),
    "Split": lambda m: M.Split(m.sizes, m.dim), "Reshape": lambda m: M.Reshape(m.shape),
    "Slice": lambda m: _slice(m), "Permute": lambda m: M.Permute(m.dims),
    # the layers of ONNX imports
    "OnnxActivation": lambda m: M.OnnxActivation(m.op, m.alpha, m.beta),
    "OnnxPRelu": lambda m: M.OnnxPRelu(m.slope_shape), "OnnxResize": lambda m: _resize(m),
}


_RESIZE = {("nearest", "asymmetric"): ("nearest", None), ("linear", "half_pixel"): ("linear", False),
           ("linear", "pytorch_half_pixel"): ("linear", False), ("linear", "align_corners"): ("linear", True)}


def _resize(layer):
    key = (layer.mode, layer.transform)
    if key not in _RESIZE or (layer.mode == "nearest" and layer.nearest_mode != "floor"):
        raise TypeError(f"{layer!r}: torch's interpolate has no {layer.mode} resize with "
                        f"coordinate_transformation_mode={layer.transform!r}, nearest_mode="
                        f"{layer.nearest_mode!r}.")
    mode, align = _RESIZE[key]
    rank = len(layer.scales or layer.sizes)
    if mode == "linear":
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[rank]
    return M.OnnxResize(layer.scales, layer.sizes, mode, align)


def _slice(layer):
    if layer.step < 0:
        raise TypeError(f"{layer!r}: torch slicing takes no negative step.")
    return M.Slice(layer.start, layer.stop, layer.step, layer.dim)


def torch_kind(layer) -> str | None:
    """The TO_TORCH entry for a layer: its own class name or that of the nearest cnnkit base class."""
    for cls in type(layer).__mro__:
        if cls.__name__ in TO_TORCH and cls.__module__.startswith("cnnkit."):
            return cls.__name__
    return None


def convert_to_torch(layer):
    kind = torch_kind(layer)
    if TO_TORCH[kind] is None:
        return _container(layer, convert_to_torch)
    return TO_TORCH[kind](layer)


# -- torch -> cnnkit --------------------------------------------------------------------------------------

def _from_conv(m, cls):
    if m.padding_mode != "zeros":
        raise TypeError(f"padding_mode={m.padding_mode!r} (cnnkit pads with zeros)")
    if isinstance(m, M._FitConv):
        padding, fit = m.padding_pairs, m.fit
    else:
        padding, fit = m.padding, "crop"
    return cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, padding, m.dilation, m.groups,
               m.bias is not None, fit=fit)


def _from_max_pool(m, cls):
    if m.return_indices:
        raise TypeError("return_indices=True")
    return cls(m.kernel_size, m.stride, m.padding, m.dilation, fit="pad" if m.ceil_mode else "crop")


def _from_avg_pool(m):
    if m.divisor_override is not None:
        raise TypeError(f"divisor_override={m.divisor_override}")
    return L.AvgPool2d(m.kernel_size, m.stride, m.padding, count_include_pad=m.count_include_pad,
                       fit="pad" if m.ceil_mode else "crop")


def _from_fit_pool(m):
    if m.mode == "max":
        return L.MaxPool2d(m.kernel_size, m.stride, m.padding_pairs, m.dilation, fit=m.fit)
    if m.mode == "avg":
        return L.AvgPool2d(m.kernel_size, m.stride, m.padding_pairs, count_include_pad=m.count_include_pad,
                           fit=m.fit)
    return L.LPPool2d(m.norm_type, m.kernel_size, m.stride, fit=m.fit)


def _global(m, cls):
    size = m.output_size if isinstance(m.output_size, tuple) else (m.output_size,)
    if any(s != 1 for s in size):
        raise TypeError(f"output_size={m.output_size} (only 1, a global pool, is supported)")
    if getattr(m, "return_indices", False):
        raise TypeError("return_indices=True")
    return cls()


def _from_local(m):
    K, _, _, C = m.weight.shape[:4]
    return L.LocallyConnected2d(C, K, m.kernel_size, m.stride, m.padding_pairs, m.bias is not None,
                                input_size=m.input_size, fit=m.fit)


def _from_bn(m, cls):
    return cls(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)


FROM_TORCH = {
    nn.Conv1d: lambda m: _from_conv(m, L.Conv1d), nn.Conv2d: lambda m: _from_conv(m, L.Conv2d),
    nn.Conv3d: lambda m: _from_conv(m, L.Conv3d), M.FitConv1d: lambda m: _from_conv(m, L.Conv1d),
    M.FitConv2d: lambda m: _from_conv(m, L.Conv2d), M.FitConv3d: lambda m: _from_conv(m, L.Conv3d),
    nn.ConvTranspose2d: lambda m: L.ConvTranspose2d(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                                                    m.padding, m.output_padding, m.groups, m.bias is not None,
                                                    m.dilation),
    nn.Linear: lambda m: L.Linear(m.in_features, m.out_features, m.bias is not None),
    nn.Flatten: lambda m: L.Flatten(m.start_dim, m.end_dim),
    nn.Dropout: lambda m: L.Dropout(m.p),
    nn.BatchNorm1d: lambda m: _from_bn(m, L.BatchNorm1d),
    nn.BatchNorm2d: lambda m: _from_bn(m, L.BatchNorm2d),
    nn.LocalResponseNorm: lambda m: L.LocalResponseNorm(m.size, m.alpha, m.beta, m.k),
    nn.MaxPool1d: lambda m: _from_max_pool(m, L.MaxPool1d),
    nn.MaxPool2d: lambda m: _from_max_pool(m, L.MaxPool2d),
    nn.AvgPool2d: _from_avg_pool, M.FitPool2d: _from_fit_pool,
    M.Blur2d: lambda m: L.Blur2d(m.channels, m.filter_size, m.stride, fit=m.fit),
    M.LocallyConnected2d: _from_local,
    M.Add: lambda m: L.Add(), M.Multiply: lambda m: L.Multiply(), M.Subtract: lambda m: L.Subtract(),
    M.Divide: lambda m: L.Divide(), M.MatMul: lambda m: L.MatMul(),
    M.Concatenate: lambda m: L.Concatenate(m.dim),
    M.Constant: lambda m: L.Constant(tuple(m.value.shape), trainable=m.trainable),
    M.Split: lambda m: L.Split(m.sizes, m.dim), M.Slice: lambda m: L.Slice(m.start, m.stop, m.step, m.dim),
    M.Reshape: lambda m: L.Reshape(m.shape), M.Permute: lambda m: L.Permute(m.dims),
    nn.AdaptiveAvgPool2d: lambda m: _global(m, L.GlobalAvgPool2d),
    nn.AdaptiveMaxPool2d: lambda m: _global(m, L.GlobalMaxPool2d),
    nn.ReLU: lambda m: L.ReLU(), nn.ReLU6: lambda m: L.ReLU6(),
    nn.LeakyReLU: lambda m: L.LeakyReLU(m.negative_slope), nn.ELU: lambda m: L.ELU(m.alpha),
    nn.Sigmoid: lambda m: L.Sigmoid(), nn.Tanh: lambda m: L.Tanh(),
    nn.Softmax: lambda m: L.Softmax(1 if m.dim is None else m.dim), nn.Identity: lambda m: L.Identity(),
}


def convert_from_torch(module, path: str = "", problems: list | None = None):
    """The cnnkit layer for ``module``; conversion problems are appended to ``problems`` as text."""
    problems = [] if problems is None else problems

    def children():
        return OrderedDict((name, convert_from_torch(child, f"{path}.{name}" if path else name, problems))
                           for name, child in module.named_children())

    where = f"{path or '(root)'} ({type(module).__module__}.{type(module).__name__}"
    # A Sequential subclass that keeps Sequential's forward (torchvision's Conv2dNormActivation) is a chain.
    if isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward:
        return base.Sequential(children())
    if type(module) is M.Concat:
        return base.Concat(**children())
    if type(module) is M.Graph:
        graph, parts = Graph(module.inputs), children()
        for name, sources, _, _ in module.plan:
            graph.add(name, parts[name], list(sources))
        return graph.set_outputs(module.outputs)
    if type(module) is M.Residual:
        parts = children()
        body = base.Sequential(OrderedDict((n, parts[n]) for n in module.body_names))
        shortcut = parts.get(module.shortcut_name) if module.shortcut_name else None
        return base.Residual(body, shortcut, activation=parts.get("activation"),
                             shortcut_name=module.shortcut_name or "shortcut")
    convert = FROM_TORCH.get(type(module))
    if convert is None:
        problems.append(where + ")")
        return L.Identity()
    try:
        return convert(module)
    except (TypeError, ValueError, AttributeError) as e:
        problems.append(f"{where} with {e})")
        return L.Identity()


# Adaptive pooling, padding layers and unpooling (_torch_pooling), and the activations, norms, upsampling
# and rearranging layers of issue 14 item 5 (_torch_modern) add their entries to TO_TORCH and FROM_TORCH.
from cnnkit.interop import _torch_modern, _torch_pooling  # noqa: E402, F401
