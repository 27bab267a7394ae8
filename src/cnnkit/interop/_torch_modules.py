"""The few torch.nn modules that cnnkit needs beyond torch's own, for :func:`cnnkit.interop.torch.to_torch`.

Imported only when a conversion runs (it imports torch at the top). Each keeps PyTorch's parameter names,
so a converted network's ``state_dict()`` has exactly the keys of the cnnkit model's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.geometry import conv_geometry, window_geometry


class Residual(nn.Module):
    """``activation(body(x) + shortcut(x))`` with the body's children named directly under the block."""

    def __init__(self, body: dict[str, nn.Module], shortcut: nn.Module | None = None,
                 activation: nn.Module | None = None, shortcut_name: str = "shortcut"):
        super().__init__()
        self.body_names = list(body)
        for name, module in body.items():
            self.add_module(name, module)
        self.shortcut_name = shortcut_name if shortcut is not None else None
        if shortcut is not None:
            self.add_module(shortcut_name, shortcut)
        self.activation = activation

    def forward(self, x):
        y = x
        for name in self.body_names:
            y = getattr(self, name)(y)
        y = y + (x if self.shortcut_name is None else getattr(self, self.shortcut_name)(x))
        return y if self.activation is None else self.activation(y)


class Concat(nn.Module):
    """Branches applied to the same input, their outputs joined along channels (the Inception module)."""

    def __init__(self, branches: dict[str, nn.Module]):
        super().__init__()
        for name, module in branches.items():
            self.add_module(name, module)

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.children()], dim=1)


def torch_pads(pads) -> list[int]:
    """cnnkit's ((before, after) per axis, first axis first) -> F.pad's flat list, last axis first."""
    return [v for lo, hi in reversed(pads) for v in (lo, hi)]


class _FitConv:
    """A torch convolution whose padding follows cnnkit: asymmetric pairs and ``fit="pad"`` (ceil mode).

    torch convolutions take one symmetric padding and always round down, so the padding is applied here
    with F.pad, computed per input size by cnnkit's own output-size rule.
    """

    def setup_fit(self, padding_pairs, fit):
        self.padding_pairs, self.fit = tuple(map(tuple, padding_pairs)), fit

    def forward(self, x):
        _, pads = conv_geometry(tuple(x.shape[2:]), self.kernel_size, self.stride, self.padding_pairs,
                                self.dilation, self.fit, name=type(self).__name__)
        return self._conv_forward(F.pad(x, torch_pads(pads)), self.weight, self.bias)

    def extra_repr(self):
        return super().extra_repr() + f", padding_pairs={self.padding_pairs}, fit={self.fit!r}"


class FitConv1d(_FitConv, nn.Conv1d):
    pass


class FitConv2d(_FitConv, nn.Conv2d):
    pass


class FitConv3d(_FitConv, nn.Conv3d):
    pass


class FitPool2d(nn.Module):
    """Max, average or L_p pooling exactly as cnnkit computes it, for what torch's pooling cannot say.

    Used for asymmetric padding, padding over half the window, and L_p pooling (torch raises x, not |x|,
    to the power p, and rescales partial ceil-mode windows). The padding comes from cnnkit's output-size
    rule per input size: -inf for max pooling, zeros otherwise; the average's divisor counts the user's
    padding only with ``count_include_pad`` and never the extra far-side zeros of ``fit="pad"``.
    """

    def __init__(self, mode: str, kernel_size, stride, padding_pairs, dilation=(1, 1), fit="error",
                 count_include_pad=True, norm_type=2.0):
        super().__init__()
        self.mode, self.kernel_size, self.stride = mode, tuple(kernel_size), tuple(stride)
        self.padding_pairs, self.dilation, self.fit = tuple(map(tuple, padding_pairs)), tuple(dilation), fit
        self.count_include_pad, self.norm_type = count_include_pad, float(norm_type)

    def forward(self, x):
        pads = [window_geometry(int(n), k, s, p, d, self.fit, name="FitPool2d")[1:]
                for n, k, s, p, d in zip(x.shape[2:], self.kernel_size, self.stride, self.padding_pairs,
                                         self.dilation, strict=True)]
        if self.mode == "max":
            x = F.pad(x, torch_pads(pads), value=float("-inf"))
            return F.max_pool2d(x, self.kernel_size, self.stride, 0, self.dilation)
        area = self.kernel_size[0] * self.kernel_size[1]
        if self.mode == "lp":
            p = self.norm_type
            powers = F.pad(x.abs() ** p, torch_pads(pads))
            return (F.avg_pool2d(powers, self.kernel_size, self.stride) * area) ** (1.0 / p)
        window_sum = F.avg_pool2d(F.pad(x, torch_pads(pads)), self.kernel_size, self.stride) * area
        # The divisor: pool a mask that is 1 on the input (and on the user's padding if it counts).
        mask = F.pad(torch.ones_like(x[:1, :1]), torch_pads(self.padding_pairs),
                     value=1.0 if self.count_include_pad else 0.0)
        extra = [(lo - ulo, hi - uhi) for (lo, hi), (ulo, uhi) in zip(pads, self.padding_pairs, strict=True)]
        mask = F.pad(mask, torch_pads(extra))
        count = F.avg_pool2d(mask, self.kernel_size, self.stride) * area
        return window_sum / count.clamp(min=1.0)

    def extra_repr(self):
        return (f"{self.mode}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding_pairs={self.padding_pairs}, fit={self.fit!r}")


class Blur2d(nn.Module):
    """cnnkit's Blur2d: a fixed binomial filter on every channel (a depthwise convolution), then a stride.

    The filter is a constant, not a parameter or buffer, so it stays out of the state dict as in cnnkit;
    it is made on the input's device and dtype at each call.
    """

    def __init__(self, channels, filter_size, kernel, stride, padding_pairs, fit):
        super().__init__()
        self.channels, self.filter_size, self.stride, self.fit = channels, filter_size, tuple(stride), fit
        self.padding_pairs, self.kernel = tuple(map(tuple, padding_pairs)), kernel.copy()

    def forward(self, x):
        _, pads = conv_geometry(tuple(x.shape[2:]), self.kernel.shape, self.stride, self.padding_pairs,
                                (1, 1), self.fit, name="Blur2d")
        weight = torch.as_tensor(self.kernel, dtype=x.dtype, device=x.device)
        weight = weight.expand(self.channels, 1, *self.kernel.shape)
        return F.conv2d(F.pad(x, torch_pads(pads)), weight, stride=self.stride, groups=self.channels)


class LocallyConnected2d(nn.Module):
    """cnnkit's LocallyConnected2d: a convolution with one filter per output position (no sharing).

    weight (K, H_out, W_out, C, F, F) and bias (K, H_out, W_out) as in cnnkit; the receptive fields come
    from F.unfold (im2col), and each output position takes the dot product with its own filter.
    """

    def __init__(self, weight_shape, bias: bool, kernel_size, stride, padding_pairs, fit, input_size):
        super().__init__()
        self.kernel_size, self.stride, self.fit = tuple(kernel_size), tuple(stride), fit
        self.input_size = tuple(input_size)
        self.padding_pairs = tuple(map(tuple, padding_pairs))
        self.weight = nn.Parameter(torch.zeros(weight_shape))
        self.bias = nn.Parameter(torch.zeros(weight_shape[:3])) if bias else None

    def forward(self, x):
        _, pads = conv_geometry(tuple(x.shape[2:]), self.kernel_size, self.stride, self.padding_pairs,
                                (1, 1), self.fit, name="LocallyConnected2d")
        K, H_out, W_out = self.weight.shape[:3]
        cols = F.unfold(F.pad(x, torch_pads(pads)), self.kernel_size, stride=self.stride)  # (N, C*F*F, L)
        y = torch.einsum("njl,klj->nkl", cols, self.weight.reshape(K, H_out * W_out, -1))
        y = y.reshape(x.shape[0], K, H_out, W_out)
        return y if self.bias is None else y + self.bias


# -- cnnkit.Graph and its merge nodes ----------------------------------------------------------------------

class Graph(nn.Module):
    """cnnkit's Graph: named nodes run in order, each reading named values; nodes are children by name."""

    def __init__(self, inputs, outputs, nodes):
        super().__init__()
        self.inputs, self.outputs, self.plan = list(inputs), list(outputs), []
        for name, module, sources, takes_list, num_outputs in nodes:
            self.add_module(name, module)
            self.plan.append((name, tuple(sources), takes_list, num_outputs))

    def forward(self, *xs):
        values = dict(zip(self.inputs, xs, strict=True))
        for name, sources, takes_list, num_outputs in self.plan:
            args = [values[v] for v in sources]
            y = self._modules[name](*args) if takes_list else self._modules[name](args[0])
            if num_outputs == 1:
                values[name] = y
            else:
                values.update((f"{name}:{i}", part) for i, part in enumerate(y))
        result = [values[v] for v in self.outputs]
        return result[0] if len(result) == 1 else tuple(result)


class Add(nn.Module):
    def forward(self, *xs):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y


class Multiply(nn.Module):
    def forward(self, a, b):
        return a * b


class Subtract(nn.Module):
    def forward(self, a, b):
        return a - b


class Divide(nn.Module):
    def forward(self, a, b):
        return a / b


class MatMul(nn.Module):
    def forward(self, a, b):
        return torch.matmul(a, b)


class Concatenate(nn.Module):
    def __init__(self, dim=1):
        super().__init__()
        self.dim = dim

    def forward(self, *xs):
        return torch.cat(xs, dim=self.dim)


class Constant(nn.Module):
    """A stored tensor named ``value``: a Parameter if trainable, else a buffer (as in cnnkit)."""

    def __init__(self, shape, trainable=False):
        super().__init__()
        self.trainable = trainable
        if trainable:
            self.value = nn.Parameter(torch.zeros(shape))
        else:
            self.register_buffer("value", torch.zeros(shape))

    def forward(self):
        return self.value


class Split(nn.Module):
    def __init__(self, sizes, dim=1):
        super().__init__()
        self.sizes, self.dim = list(sizes), dim

    def forward(self, x):
        return torch.split(x, self.sizes, dim=self.dim)


class Slice(nn.Module):
    def __init__(self, start, stop, step, dim):
        super().__init__()
        self.start, self.stop, self.step, self.dim = start, stop, step, dim

    def forward(self, x):
        index = [slice(None)] * (self.dim % x.dim()) + [slice(self.start, self.stop, self.step)]
        return x[tuple(index)]


class Reshape(nn.Module):
    """Each example to ``shape`` (the batch axis kept), as cnnkit's Reshape."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


class Permute(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x):
        return x.permute(*self.dims)


# -- the layers of ONNX imports (cnnkit.interop._onnx_layers) ------------------------------------------------

class OnnxActivation(nn.Module):
    """Selu, Softplus, HardSigmoid, HardSwish or Clip with ONNX's attributes, as cnnkit's layer."""

    def __init__(self, op, alpha, beta):
        super().__init__()
        self.op, self.alpha, self.beta = op, alpha, beta

    def forward(self, x):
        a, b = self.alpha, self.beta
        if self.op == "Selu":
            return b * torch.where(x > 0, x, a * torch.expm1(torch.clamp(x, max=0)))
        if self.op == "Softplus":
            return F.softplus(x)
        if self.op == "HardSigmoid":
            return torch.clamp(a * x + b, 0, 1)
        if self.op == "HardSwish":
            return F.hardswish(x)
        return torch.clamp(x, a, b)

    def extra_repr(self):
        return f"{self.op}, alpha={self.alpha}, beta={self.beta}"


class OnnxPRelu(nn.Module):
    """A learned slope for negative inputs, broadcast as ONNX does (``weight`` of shape ``slope_shape``)."""

    def __init__(self, slope_shape):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(slope_shape))

    def forward(self, x):
        return torch.where(x > 0, x, self.weight * x)


class OnnxResize(nn.Module):
    """cnnkit's OnnxResize through F.interpolate, for the coordinate rules torch has."""

    def __init__(self, scales, sizes, mode, align_corners):
        super().__init__()
        self.scales, self.sizes, self.mode, self.align_corners = scales, sizes, mode, align_corners

    def forward(self, x):
        size = self.sizes or [int(n * s) for n, s in zip(x.shape[2:], self.scales, strict=True)]
        return F.interpolate(x, size=size, mode=self.mode, align_corners=self.align_corners)
