"""Convolution as the notes teach it: pad, copy every receptive field into a column, one matrix multiply.

Layout: ``x`` is (N, C, *S) -- batch, channels, then the spatial axes (W; H, W; or D, H, W); the weight
is (K, C/groups, *F) like PyTorch's, the bias (K,).

    forward:   cols = im2col(pad(x))                (N, C * prod(F), L)   L = prod(S_out) output positions
               y    = W @ cols + b                  (N, K, L)             one matrix multiply (per group)
    backward:  dW   = dy @ cols^T                   summed over the batch
               db   = sum of dy over batch and positions
               dx   = unpad(col2im(W^T @ dy))       col2im is the adjoint of im2col: it sums overlaps

``groups`` splits the channels into G independent convolutions: the matrices become (G, K/G, C/G *
prod(F)) and NumPy's batched ``matmul`` runs the G products at once. ``dilation`` spreads the taps of a
kernel ``dilation`` positions apart; only the slices that im2col copies change.
"""

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.geometry import as_tuple, conv_geometry, window_slices


def pad(x, pads, value=0.0):
    """Pad the spatial axes of x with ``value`` (a new array).

    Shape: x (N, C, *S), pads one (before, after) pair per spatial axis -> (N, C, *(S + before + after)).
    """
    return np.pad(x, ((0, 0), (0, 0), *pads), constant_values=value)


def unpad(xp, pads):
    """The inverse of :func:`pad`: the (N, C, *S) view of the interior of xp (N, C, *S_padded)."""
    return xp[(..., *(slice(lo, n - hi) for n, (lo, hi) in zip(xp.shape[2:], pads, strict=True)))]


def im2col(xp, kernel_size, stride, dilation, out):
    """Copy every receptive field of the padded input into a column.

    Shape: xp (N, C, *S_padded) -> cols (N, C, prod(F), *S_out); ``cols[n, c, t, *j]`` is the input value
    under kernel tap t of the window at output position j.

    One slice copy per kernel tap (prod(F) of them), never a loop over pixels: tap t reads the same
    strided slice of xp for every output position at once.
    """
    N, C = xp.shape[:2]
    cols = np.empty((N, C, int(np.prod(kernel_size)), *out), xp.dtype)
    for t, offset in enumerate(np.ndindex(*kernel_size)):
        cols[:, :, t] = xp[window_slices(offset, dilation, stride, out)]
    return cols


def col2im(cols, padded_shape, kernel_size, stride, dilation, out):
    """The adjoint of :func:`im2col`: put every column back where it came from, summing overlaps.

    Shape: cols (N, C, prod(F), *S_out) -> xp (N, C, *S_padded) = ``padded_shape``.

    Windows overlap when stride < F_eff, so one input position receives a sum, which is exactly the
    gradient of an input that several windows read.
    """
    xp = np.zeros(padded_shape, cols.dtype)
    for t, offset in enumerate(np.ndindex(*kernel_size)):
        xp[window_slices(offset, dilation, stride, out)] += cols[:, :, t]
    return xp


def convnd(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error", *, name="conv"):
    """N-d convolution (really cross-correlation, as in every deep learning library): im2col + one matmul.

    Shape:
        x (N, C, *S), weight (K, C/groups, *F), bias (K,) or None -> y (N, K, *S_out) with, per axis,
        ``S_out = (S - F_eff + P_before + P_after) / stride + 1`` and ``F_eff = dilation * (F - 1) + 1``.

    Args:
        stride, dilation: an int or one per axis. padding: an int, one per axis, (before, after) pairs,
        "valid" or "same". groups: channel groups (C and K divisible by it). fit: "error", "crop" or "pad"
        when the windows do not tile the input (see cnnkit.geometry). name: prefix of error messages.

    Returns ``(y, cache)``; pass the cache to :func:`convnd_backward`.

    Raises:
        ShapeError: the weight does not match x's channels and groups, or the windows do not fit.
    """
    nd = x.ndim - 2
    N, C, *spatial = x.shape
    K, Cg, *F = weight.shape
    if C != Cg * groups or K % groups:
        raise ShapeError(f"{name}: input has {C} channels and the weight {tuple(weight.shape)}; with "
                         f"groups={groups} the weight must be (K, C/groups={C // groups}, ...) "
                         f"and K divisible by groups.")
    stride, dilation = as_tuple(stride, nd, "stride"), as_tuple(dilation, nd, "dilation")
    out, pads = conv_geometry(spatial, F, stride, padding, dilation, fit, name=name)
    G, J, L = groups, Cg * int(np.prod(F)), int(np.prod(out))  # J: numbers in one filter of a group

    xp = pad(x, pads)
    cols = im2col(xp, F, stride, dilation, out).reshape(N, G, J, L)  # (N, G, C/G * prod(F), L)
    w = weight.reshape(G, K // G, J)  # one filter per row
    y = np.matmul(w, cols).reshape(N, K, *out)  # (N, G, K/G, L) is already (N, K, L) in memory
    if bias is not None:
        y += bias.reshape(K, *(1,) * nd)  # in place: keeps y's dtype
    # The columns are prod(F) times larger than x: keep x and let backward rebuild them (as Caffe does).
    cache = dict(x=x, weight=weight, pads=pads, stride=stride, dilation=dilation, out=out, groups=groups,
                 has_bias=bias is not None)
    return y, cache


def convnd_backward(dy, cache, *, input_grad=True):
    """The gradient of :func:`convnd`: dy (N, K, *S_out) -> (dx, dweight, dbias).

    ``dW = dy @ cols^T`` (summed over the batch), ``db`` = the sum of dy over the batch and the output
    positions, ``dx = unpad(col2im(W^T @ dy))``: the same two steps as the forward, read backwards.

    Args:
        dy: the gradient of y. cache: from :func:`convnd`. input_grad=True: False skips dx (returned as
        None); the first layer of a network needs no gradient for its input.

    Returns:
        ``(dx, dweight, dbias)``; dbias is None when the forward had no bias.
    """
    x, weight, G, pads = cache["x"], cache["weight"], cache["groups"], cache["pads"]
    stride, dilation, out = cache["stride"], cache["dilation"], cache["out"]
    N, C, *_ = x.shape
    K, Cg, *F = weight.shape
    taps, L = int(np.prod(F)), int(np.prod(out))
    J = Cg * taps
    dy_g = dy.reshape(N, G, K // G, L)
    xp = pad(x, pads)
    cols = im2col(xp, F, stride, dilation, out).reshape(N, G, J, L)  # the forward's columns, rebuilt

    dw = np.matmul(dy_g, cols.swapaxes(-1, -2)).sum(axis=0)  # (G, K/G, J): every image adds its share
    db = dy.sum(axis=(0, *range(2, dy.ndim))) if cache["has_bias"] else None
    if not input_grad:
        return None, dw.reshape(weight.shape), db
    # W^T @ dy: every output position sends its gradient back along the weights that made it
    dcols = np.matmul(weight.reshape(G, K // G, J).swapaxes(-1, -2), dy_g)  # (N, G, J, L)
    dxp = col2im(dcols.reshape(N, C, taps, *out), xp.shape, F, stride, dilation, out)
    return np.ascontiguousarray(unpad(dxp, pads)), dw.reshape(weight.shape), db


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error"):
    """1-D convolution: x (N, C, W) -> y (N, K, W_out). See :func:`convnd`."""
    return convnd(x, weight, bias, stride, padding, dilation, groups, fit, name="conv1d")


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error"):
    """2-D convolution: x (N, C, H, W) -> y (N, K, H_out, W_out). See :func:`convnd`.

    >>> y, cache = conv2d(np.ones((1, 3, 5, 5), np.float32), np.ones((2, 3, 3, 3), np.float32), padding=1)
    >>> y.shape, float(y[0, 0, 2, 2]), float(y[0, 0, 0, 0])
    ((1, 2, 5, 5), 27.0, 12.0)
    """
    return convnd(x, weight, bias, stride, padding, dilation, groups, fit, name="conv2d")


def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, fit="error"):
    """3-D convolution: x (N, C, D, H, W) -> y (N, K, D_out, H_out, W_out). See :func:`convnd`."""
    return convnd(x, weight, bias, stride, padding, dilation, groups, fit, name="conv3d")


conv1d_backward = conv2d_backward = conv3d_backward = convnd_backward
