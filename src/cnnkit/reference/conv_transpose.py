"""Transposed convolution ("deconvolution"): a convolution's backward-data pass, used as a layer to upsample.

A convolution gathers windows (im2col) and multiplies by W. Its transpose runs the same two steps
backwards: every input pixel multiplies W^T and the resulting kernel-sized patches are *scattered*
(col2im) onto a larger output, summing where they overlap. Its own backward is then a plain convolution:

    forward:   y  = unpad(col2im(W^T @ x))         exactly how convnd_backward computes dx
    backward:  cols = im2col(pad(dy))               the windows of dy that each input pixel painted
               dx = W @ cols                        a convolution of dy with the same weight
               dW = x @ cols^T                      summed over the batch

Layout: x (N, C_in, *S), weight (C_in, C_out/groups, *F) exactly like PyTorch's ``conv_transpose2d``,
bias (C_out,). Output size per axis (see :func:`cnnkit.geometry.transpose_geometry`):

    S_out = (S - 1) * stride - P_before - P_after + dilation * (F - 1) + output_padding + 1

``padding`` crops the output (it is the padding of the convolution this one transposes) and
``output_padding`` adds rows at the far end, to pick one of the ``stride`` input sizes that a strided
convolution maps to the same output size.
"""

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.geometry import as_tuple, padding_pairs, transpose_geometry
from cnnkit.reference.conv import col2im, im2col, pad, unpad


def conv_transposend(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     name="conv_transpose"):
    """N-d transposed convolution: ``y = unpad(col2im(W^T @ x)) + b``.

    Shape: x (N, C_in, *S), weight (C_in, C_out/groups, *F), bias (C_out,) or None -> y (N, C_out, *S_out),
    ``S_out = (S - 1) * stride - P_before - P_after + dilation * (F - 1) + output_padding + 1``.

    Returns ``(y, cache)``; see :func:`conv_transposend_backward`.

    Raises:
        ShapeError: the weight does not match x's channels and groups, or some S_out < 1.
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
    G, taps, L = groups, int(np.prod(F)), int(np.prod(spatial))

    # W^T @ x: every input pixel becomes a (C_out/G * prod(F)) patch of the output, per group.
    w = weight.reshape(G, Cin // G, Cout_g * taps)
    cols = np.matmul(w.swapaxes(-1, -2), x.reshape(N, G, Cin // G, L))  # (N, G, C_out/G * prod(F), L)
    # col2im scatters the patches: the input grid plays the convolution's output grid S_out.
    padded = (N, G * Cout_g, *(m + lo + hi for m, (lo, hi) in zip(out, pads, strict=True)))
    yp = col2im(cols.reshape(N, G * Cout_g, taps, *spatial), padded, F, stride, dilation, spatial)
    y = np.ascontiguousarray(unpad(yp, pads))  # `padding` crops the scattered output
    if bias is not None:
        y += bias.reshape(-1, *(1,) * nd)
    cache = dict(x=x, weight=weight, pads=pads, stride=stride, dilation=dilation, groups=groups,
                 has_bias=bias is not None)
    return y, cache


def conv_transposend_backward(dy, cache):
    """The gradient of :func:`conv_transposend`: dy (N, C_out, *S_out) -> (dx, dweight, dbias).

    dx is the convolution of dy with the same weight (read as a (K=C_in, C_out/groups, *F) conv weight),
    and dW pairs each input pixel with the window of dy it painted. Both use the columns of dy.

    Returns:
        ``(dx, dweight, dbias)``; dbias is None when the forward had no bias.
    """
    x, weight, G = cache["x"], cache["weight"], cache["groups"]
    stride, dilation = cache["stride"], cache["dilation"]
    N, Cin, *spatial = x.shape
    _, Cout_g, *F = weight.shape
    J, L = Cout_g * int(np.prod(F)), int(np.prod(spatial))
    # Undo the crop of `padding`, and drop the output_padding tail: no window of the forward reached it.
    span = tuple((n - 1) * s + d * (k - 1) + 1
                 for n, s, d, k in zip(spatial, stride, dilation, F, strict=True))
    dyp = pad(dy, cache["pads"])[(..., *(slice(0, m) for m in span))]
    cols = im2col(dyp, F, stride, dilation, spatial).reshape(N, G, J, L)  # (N, G, C_out/G * prod(F), L)

    w = weight.reshape(G, Cin // G, J)
    dx = np.matmul(w, cols).reshape(x.shape)  # a convolution of dy: W @ im2col(dy), as convnd computes
    xg = x.reshape(N, G, Cin // G, L)
    dw = np.matmul(xg, cols.swapaxes(-1, -2)).sum(axis=0)  # (G, C_in/G, J): every image adds its share
    db = dy.sum(axis=(0, *range(2, dy.ndim))) if cache["has_bias"] else None
    return dx, dw.reshape(weight.shape), db


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution: x (N, C_in, H, W) -> y (N, C_out, H_out, W_out); see conv_transposend.

    A 2x2 kernel with stride 2 paints one 2x2 patch per input pixel: a learnable upsampling.

    Shape:
        H_out = (H - 1)*S - 2P + D*(F - 1) + output_padding + 1 (same for W).

    Args:
        x: input (N, C_in, H, W). weight: (C_in, C_out/groups, F_h, F_w), PyTorch's layout. bias: (C_out,)
            or None. stride, padding, dilation: those of the convolution being transposed.
        output_padding: rows/columns added at the far end. groups: as for conv2d.

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
