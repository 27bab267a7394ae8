"""Channels-last memory behind the NCHW shape: what PyTorch calls ``memory_format=torch.channels_last``.

Every array in cnnkit's API has the shape (N, C, H, W). Its *memory* may still be ordered (N, H, W, C):
``channels_last(x)`` returns such an array, an NCHW-shaped view of NHWC memory. NumPy computes the same
values whatever the strides, so every layer accepts either layout; what changes is which kernels must
copy. The kernels that want channels-last memory make and keep it, so that a chain of them never pays a
transpose between layers:

- Winograd 3x3 convolutions read their input through an NHWC view (free for channels-last input) and
  return a channels-last output and input gradient;
- 1x1 convolutions (groups=1) on channels-last input are ONE (N*H*W, C) @ (C, K) multiply whose output is
  channels-last too (on NCHW input: one (K, C) @ (C, H*W) multiply per image, NCHW out);
- element-wise layers (ReLU and friends, batch norm, residual sums) keep the layout of their input,
  because NumPy's ufuncs write their output in the memory order of their operands.

- depthwise convolutions on maps of up to 28 x 28 work in channels-last memory and return it;
- im2col on channels-last input (2-D, groups=1, more than one channel) multiplies its columns as rows,
  (positions, C*F*F) @ (C*F*F, K), and so writes a channels-last output.

- max pooling with windows that do not overlap (2x2 stride 2 and the like) reads channels-last input in
  place and returns channels-last y (and gradient).

The other depthwise, im2col on NCHW input and the other pooling kernels copy their input into padded
scratch memory anyway (the copy reads either layout) and return NCHW memory.

>>> import numpy as np
>>> x = channels_last(np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4))
>>> x.shape, is_channels_last(x), x.flags.c_contiguous, float(x[0, 1, 2, 3])
((1, 2, 3, 4), True, False, 23.0)
"""

from __future__ import annotations

import numpy as np

from cnnkit.runtime import workspace


def channels_last(x: np.ndarray) -> np.ndarray:
    """The values of x (N, C, *S) in channels-last memory, as an array of the same (N, C, *S) shape.

    Returns x itself if its memory is channels-last already (see :func:`is_channels_last`).

    Raises:
        ValueError: x has fewer than 3 axes (no channel axis between the batch and spatial axes).
    """
    if x.ndim < 3:
        raise ValueError(f"channels_last: expected an array (N, C, *S) with at least 3 axes; received "
                         f"shape {x.shape}.")
    if is_channels_last(x):
        return x
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)


def is_channels_last(x: np.ndarray) -> bool:
    """True if x (N, C, *S) is an NCHW-shaped view of C-contiguous (N, *S, C) memory.

    An array with C = 1 or one spatial position is both NCHW- and channels-last-contiguous: True.
    """
    return x.ndim >= 3 and x.transpose(0, *range(2, x.ndim), 1).flags.c_contiguous  # not moveaxis: 7x slower


def memory_order(x: np.ndarray) -> str | None:
    """"channels-last", "NCHW" or None (another memory order) for x (N, C, *S); an array that is both
    (C = 1, or one spatial position) counts as channels-last."""
    if x.ndim < 3:
        return None
    return "channels-last" if is_channels_last(x) else "NCHW" if x.flags.c_contiguous else None


def empty_as(like: np.ndarray, shape, dtype, scratch: str | None = None) -> np.ndarray:
    """An uninitialized array of ``shape`` (N, C, *S) in the memory order of ``like``: channels-last
    behind the NCHW shape when ``like`` is, else NCHW. New memory, or the scratch workspace named
    ``scratch`` (:func:`cnnkit.runtime.workspace`)."""
    last = memory_order(like) == "channels-last" and not like.flags.c_contiguous
    memory_shape = (shape[0], *shape[2:], shape[1]) if last else tuple(shape)
    memory = np.empty(memory_shape, dtype) if scratch is None else workspace(scratch, memory_shape, dtype)
    return np.moveaxis(memory, -1, 1) if last else memory


def copy_as(like: np.ndarray, x: np.ndarray, scratch: str | None = None) -> np.ndarray:
    """x (N, C, *S) copied into the memory order of ``like`` (new memory, or the workspace ``scratch``, as
    :func:`empty_as`); into channels-last through :func:`copy_planes`."""
    out = empty_as(like, x.shape, x.dtype, scratch)
    if out.flags.c_contiguous:
        np.copyto(out, x)
    else:
        copy_planes(np.moveaxis(out, 1, -1), np.moveaxis(x, 1, -1), axis=-1)
    return out


def pad_into(buffer: np.ndarray, x: np.ndarray, top: int, left: int) -> np.ndarray:
    """Copy x (N, H, W, C) into ``buffer`` (N, H_p, W_p, C) at (top, left), zeroing only the border around
    it (not a full pass); returns ``buffer``. The channels-last kernels' padding (Winograd, depthwise).

    >>> pad_into(np.full((1, 3, 3, 1), 9.0), np.ones((1, 2, 2, 1)), 1, 0)[0, :, :, 0].tolist()
    [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]
    """
    H, W = x.shape[1:3]
    buffer[:, :top] = 0
    buffer[:, top + H:] = 0
    buffer[:, top:top + H, :left] = 0
    buffer[:, top:top + H, left + W:] = 0
    copy_planes(buffer[:, top:top + H, left:left + W], x, axis=3)
    return buffer


def pad_last(x: np.ndarray, pads, scratch: str) -> np.ndarray:
    """x (N, C, H, W) zero-padded by ``pads`` ((top, bottom), (left, right)) as channels-last memory
    (N, H_p, W_p, C) in the workspace ``scratch`` (:func:`cnnkit.runtime.workspace`): :func:`pad_into` of
    x's channels-last view, which is free when x is channels-last already.

    >>> pad_last(np.ones((1, 2, 2, 2)), ((1, 0), (0, 1)), "doc.pad")[0, :, :, 1].tolist()
    [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]
    """
    (top, bottom), (left, right) = pads
    N, C, H, W = x.shape
    buffer = workspace(scratch, (N, H + top + bottom, W + left + right, C), x.dtype)
    return pad_into(buffer, x.transpose(0, 2, 3, 1), top, left)


def copy_planes(out: np.ndarray, x: np.ndarray, axis: int) -> np.ndarray:
    """``np.copyto(out, x)``, for copies between NCHW and channels-last memory (``axis``: the channels).

    Such a copy reads one number of each of x's channel planes in turn. When the planes lie a multiple of
    4 KB apart (32 x 32 float32 maps), those reads all fall in one set of the 8-way L1 cache and evict
    each other before the next number of the plane is read: the copy then goes 8 channels at a time (5x
    faster on 32 x 32 maps; elsewhere one call is faster).

    >>> x = np.arange(2 * 16 * 32 * 32, dtype=np.float32).reshape(2, 16, 32, 32)
    >>> out = np.zeros((2, 32, 32, 16), np.float32)  # channels-last memory for x's values
    >>> bool(np.array_equal(copy_planes(out, np.moveaxis(x, 1, -1), axis=-1), np.moveaxis(x, 1, -1)))
    True
    """
    step = 8 if x.strides[axis] and x.strides[axis] % 4096 == 0 else max(x.shape[axis], 1)
    for c in range(0, x.shape[axis], step):
        index = (slice(None),) * (axis % x.ndim) + (slice(c, c + step),)
        np.copyto(out[index], x[index])
    return out
