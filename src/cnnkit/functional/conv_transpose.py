"""Transposed convolution ("deconvolution"): the backward of a convolution, used as a layer to upsample.

A convolution maps (N, C, *S) to (N, K, *S_out) by gathering windows (im2col) and multiplying by W. Its
transpose runs the same two steps backwards: every input pixel multiplies W^T and the resulting
kernel-sized patches are *scattered* (col2im) onto a larger output, summing where they overlap. So

    forward:   y  = col2im(W^T @ x)            (what convnd_backward does to get dx)
    backward:  dx = conv(dy, W)                 (im2col + matrix multiply: a plain convolution)
               dW = x @ im2col(dy)^T            (a matrix multiply)

Layout: x (N, C_in, *S), weight (C_in, C_out/groups, *F) exactly like PyTorch's ``conv_transpose2d``,
bias (C_out,). Output size per axis (the inverse of the convolution rule):

    S_out = (S - 1) * stride - P_before - P_after + dilation * (F - 1) + output_padding + 1

``padding`` crops the output (it is the padding of the convolution this one transposes) and
``output_padding`` adds rows at the far end, to pick one of the ``stride`` input sizes that a strided
convolution maps to the same output size.
"""

from __future__ import annotations

import math

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.functional.conv import col2im, convnd, pad, unpad
from cnnkit.geometry import as_tuple, axis_names, padding_pairs


def transpose_geometry(spatial, kernel_size, stride, padding, dilation, output_padding, *,
                       name="conv_transpose"):
    """Output sizes of a transposed convolution, per axis (see the module docstring for the formula).

    Raises:
        ShapeError: an output size would be < 1 (too much padding for this input).
    """
    out = []
    for n, k, s, (lo, hi), d, op, axis in zip(spatial, kernel_size, stride, padding, dilation, output_padding,
                                               axis_names(len(spatial)), strict=True):
        F = d * (k - 1) + 1
        m = (n - 1) * s - lo - hi + F + op
        if m < 1:
            raise ShapeError(f"{name}: {axis}_out = ({axis} - 1)*S - 2P + F + output_padding = "
                             f"({n} - 1)*{s} - {lo + hi} + {F} + {op} = {m} < 1; use less padding "
                             f"(padding crops the output of a transposed convolution).")
        out.append(m)
    return tuple(out)


def conv_transposend(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     name="conv_transpose"):
    """N-d transposed convolution. Returns ``(y, cache)``; see :func:`conv_transposend_backward`.

    Shape: x (N, C_in, *S), weight (C_in, C_out/groups, *F), bias (C_out,) or None -> y (N, C_out, *S_out).
    """
    nd = x.ndim - 2
    N, C, *spatial = x.shape
    Cin, Cout_g, *F = weight.shape
    if weight.ndim != x.ndim or C != Cin or Cin % groups:
        raise ShapeError(f"{name}: input {tuple(x.shape)} and weight {tuple(weight.shape)} do not match; "
                         f"the weight must be (C_in={C}, C_out/groups, *F) with C_in divisible by "
                         f"groups={groups}.")
    stride, dilation = as_tuple(stride, nd, "stride"), as_tuple(dilation, nd, "dilation")
    output_padding = as_tuple(output_padding, nd, "output_padding", minimum=0)
    pads = padding_pairs(padding, nd)
    out = transpose_geometry(spatial, F, stride, pads, dilation, output_padding, name=name)
    G, L, taps = groups, math.prod(spatial), math.prod(F)

    # W^T @ x: every input pixel becomes a (C_out/G * prod(F)) patch of the output, per group.
    w = weight.reshape(G, Cin // G, Cout_g * taps)
    cols = np.matmul(w.transpose(0, 2, 1), x.reshape(N, G, Cin // G, L))  # (N, G, C_out/G * prod(F), L)
    padded = (N, G * Cout_g, *(m + lo + hi for m, (lo, hi) in zip(out, pads, strict=True)))
    yp = col2im(cols.reshape(N, G * Cout_g, taps, *spatial), padded, F, stride, dilation, spatial)
    y = np.ascontiguousarray(unpad(yp, pads))  # `padding` crops the scattered output
    if bias is not None:
        y += bias.reshape(-1, *(1,) * nd)
    cache = dict(x=x, weight=weight, pads=pads, stride=stride, dilation=dilation, groups=groups,
                 has_bias=bias is not None)
    return y, cache


def conv_transposend_backward(dy, cache):
    """dy (N, C_out, *S_out) -> (dx, dweight, dbias); dbias is None when the forward had no bias.

    dx is the convolution of dy with the same weight (read as a (K=C_in, C_out/groups, *F) conv weight),
    and dW pairs each input pixel with the dy window it painted: one matrix multiply per group.
    """
    x, weight, G = cache["x"], cache["weight"], cache["groups"]
    stride, dilation = cache["stride"], cache["dilation"]
    N, Cin, *spatial = x.shape
    F = weight.shape[2:]
    # Undo the crop of `padding`, and drop the output_padding tail: no window of the forward reached it.
    span = tuple((n - 1) * s + d * (k - 1) + 1
                 for n, s, d, k in zip(spatial, stride, dilation, F, strict=True))
    dyp = pad(dy, cache["pads"])[(..., *(slice(0, m) for m in span))]
    dx, conv_cache = convnd(dyp, weight, None, stride, 0, dilation, G, name="conv_transpose backward")
    cols = conv_cache["cols"]  # im2col(dy): (N, G, C_out/G * prod(F), L)
    xg = x.reshape(N, G, Cin // G, -1)
    dw = np.stack([np.tensordot(xg[:, g], cols[:, g], axes=([0, 2], [0, 2])) for g in range(G)])
    db = dy.sum(axis=(0, *range(2, dy.ndim))) if cache["has_bias"] else None
    return dx, dw.reshape(weight.shape), db


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution: x (N, C_in, H, W) -> y (N, C_out, H_out, W_out); see conv_transposend.

    A 2x2 kernel with stride 2 paints one 2x2 patch per input pixel: a learnable upsampling. It is the
    backward of conv2d with respect to its input, with the same weight.

    Shape:
        H_out = (H - 1)*S - 2P + D*(F - 1) + output_padding + 1 (same for W).

    Args:
        x: input (N, C_in, H, W). weight: (C_in, C_out/groups, F_h, F_w), PyTorch's layout. bias: (C_out,)
            or None. stride, padding, dilation: those of the convolution being transposed.
        output_padding: rows/columns added at the far end (picks among the input sizes a strided
            convolution maps to the same output). groups: as for conv2d.

    Returns ``(y, cache)``; ``conv_transpose2d_backward(dy, cache) -> (dx, dweight, dbias)``.

    Raises:
        ShapeError: not a 4-D input, a weight that does not match the input's channels or groups, or
            H_out < 1.

    >>> y, _ = conv_transpose2d(np.array([[[[1, 2], [3, 4]]]], np.float32), np.ones((1, 1, 2, 2), np.float32),
    ...                         stride=2)
    >>> y[0, 0].astype(int).tolist()
    [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    """
    if x.ndim != 4:
        raise ShapeError(f"conv_transpose2d: expected a 4-D input (N, C, H, W), received shape {x.shape}.")
    return conv_transposend(x, weight, bias, stride, padding, output_padding, groups, dilation,
                            name="conv_transpose2d")


conv_transpose2d_backward = conv_transposend_backward
