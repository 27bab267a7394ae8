"""Locally connected layer: a convolution without parameter sharing, one filter per output position.

The notes relax parameter sharing for inputs with a centred structure (faces, for instance): a neuron at
the top of the image may need different features than one at the bottom. Every output neuron (k, i, j)
then owns its own F x F x C filter and bias.

Layout: x (N, C, *S); weight (K, *S_out, C, *F): ``weight[k, i, j]`` is the filter of output neuron
(k, i, j), ``bias[k, i, j]`` its bias (K, *S_out). Sizes follow the convolution rule
``S_out = (S - F + 2P) / stride + 1``.

It is im2col + matrix multiply like the convolution, only the multiply is batched over the output
positions l instead of shared by them:

    forward:   y_l   = W_l @ cols_l                 (K, J) @ (J, N) at every position l, J = C * prod(F)
    backward:  dW_l  = dy_l @ cols_l^T,   dcols_l = W_l^T @ dy_l,   dx = unpad(col2im(dcols))
"""

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.geometry import as_tuple, conv_geometry
from cnnkit.reference.conv import col2im, im2col, pad, unpad


def locally_connected(x, weight, bias=None, stride=1, padding=0, fit="error", *, name="locally_connected"):
    """N-d locally connected layer: ``y[:, :, l] = W_l @ cols[:, :, l] + b_l`` at every output position l.

    Shape: x (N, C, *S), weight (K, *S_out, C, *F), bias (K, *S_out) or None -> y (N, K, *S_out).

    Returns ``(y, cache)``; see :func:`locally_connected_backward`.

    Raises:
        ShapeError: the weight does not fit x's channels or output size, or the windows do not fit.
    """
    nd = x.ndim - 2
    N, C, *spatial = x.shape
    K, F = weight.shape[0], weight.shape[2 + nd:]
    if weight.ndim != 2 * nd + 2 or weight.shape[1 + nd] != C:
        raise ShapeError(f"{name}: weight {tuple(weight.shape)} does not fit input {tuple(x.shape)}; "
                         f"expected (K, *S_out, C={C}, *F) with {nd} output and {nd} kernel axes.")
    stride, ones = as_tuple(stride, nd, "stride"), (1,) * nd
    out, pads = conv_geometry(spatial, F, stride, padding, ones, fit, name=name)
    if tuple(weight.shape[1:1 + nd]) != out:
        raise ShapeError(f"{name}: input {tuple(x.shape)} gives outputs of size {out} but the weight has "
                         f"one filter per position of {tuple(weight.shape[1:1 + nd])}; a locally connected "
                         f"layer only takes the input size it was built for.")
    L, J = int(np.prod(out)), C * int(np.prod(F))
    xp = pad(x, pads)
    cols = im2col(xp, F, stride, ones, out).reshape(N, J, L)
    w = weight.reshape(K, L, J)
    # One (K, J) @ (J, N) product per output position l, batched: (L, K, J) @ (L, J, N) -> (L, K, N).
    y = np.matmul(w.transpose(1, 0, 2), cols.transpose(2, 1, 0))
    y = np.ascontiguousarray(y.transpose(2, 1, 0)).reshape(N, K, *out)
    if bias is not None:
        y += bias
    cache = dict(cols=cols, weight=weight, padded_shape=xp.shape, pads=pads, stride=stride, out=out,
                 has_bias=bias is not None)
    return y, cache


def locally_connected_backward(dy, cache):
    """The gradient of :func:`locally_connected`: dy (N, K, *S_out) -> (dx, dweight, dbias).

    Returns:
        ``(dx, dweight, dbias)``; dbias is None when the forward had no bias.
    """
    cols, weight, out = cache["cols"], cache["weight"], cache["out"]
    N, J, L = cols.shape
    K, nd = dy.shape[1], len(out)
    F = weight.shape[2 + nd:]
    taps = int(np.prod(F))
    dy_l = dy.reshape(N, K, L).transpose(2, 1, 0)  # (L, K, N)
    db = dy.sum(axis=0) if cache["has_bias"] else None
    # dW_l = dy_l @ cols_l^T and dcols_l = W_l^T @ dy_l, batched over the output positions l.
    dw = np.matmul(dy_l, cols.transpose(2, 0, 1)).transpose(1, 0, 2).reshape(weight.shape)  # from (L, K, J)
    dcols = np.matmul(weight.reshape(K, L, J).transpose(1, 2, 0), dy_l)  # (L, J, N)
    dcols = dcols.transpose(2, 1, 0).reshape(N, J // taps, taps, *out)
    dxp = col2im(dcols, cache["padded_shape"], F, cache["stride"], (1,) * nd, out)
    return np.ascontiguousarray(unpad(dxp, cache["pads"])), np.ascontiguousarray(dw), db


def locally_connected2d(x, weight, bias=None, stride=1, padding=0, fit="error"):
    """2-D locally connected: x (N, C, H, W), weight (K, H_out, W_out, C, F, F) -> y (N, K, H_out, W_out).

    Like conv2d, but every output position (i, j) has its own filter ``weight[:, i, j]`` (no sharing).

    Shape:
        H_out = (H - F + 2P) / S + 1 (same for W), under the ``fit`` policy; the weight's H_out, W_out must
        be these sizes, so the layer only takes the input size it was built for.

    Args:
        x: input (N, C, H, W). weight: (K, H_out, W_out, C, F_h, F_w). bias: (K, H_out, W_out) or None.
        stride, padding: as for conv2d (padding may be per-axis (before, after) pairs). fit: "error",
            "pad" or "crop" when the windows do not tile the input.

    Returns ``(y, cache)``; ``locally_connected2d_backward(dy, cache) -> (dx, dweight, dbias)``.

    Raises:
        ShapeError: not a 4-D input, a weight that does not match the input's channels or output size, or
            windows that do not fit with ``fit="error"``.

    >>> x, w = np.ones((1, 2, 4, 4), np.float32), np.ones((1, 2, 2, 2, 3, 3), np.float32)
    >>> w[0, 1, 1] = 2  # the bottom-right neuron has its own filter
    >>> y, _ = locally_connected2d(x, w)
    >>> y[0, 0].tolist()
    [[18.0, 18.0], [18.0, 36.0]]
    """
    if x.ndim != 4:
        raise ShapeError(f"locally_connected2d: expected a 4-D input (N, C, H, W), received shape {x.shape}.")
    return locally_connected(x, weight, bias, stride, padding, fit, name="locally_connected2d")


locally_connected2d_backward = locally_connected_backward
