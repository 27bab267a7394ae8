"""Windows as slices of *flattened* padded channels: one long run per tap instead of H_out short rows.

A 2-D window gather (im2col's copies, col2im's adds, a depthwise tap) over (H_out, W_out) positions moves
H_out rows of W_out numbers per channel; on small images (LeNet's 10 x 10, CIFAR's 8 x 8) NumPy spends
more time starting its inner loops than in them. Flatten each padded channel instead and keep the output
on a grid R columns wide, R >= W_out, whose columns past W_out are scratch. With stride 1 and dilation
(D_h, D_w), tap (i, k) of output (h, j) reads

    x_flat[(h * R + j) + i * D_h * W_p + k * D_w]       (R = W_p, the padded width)

so for each tap the whole output grid reads ONE contiguous slice of x_flat at a fixed offset.

Strides (S_h, S_w) first split the padded channel into its S_h * S_w *phases* (the polyphase
decomposition): phase (a, b) holds the padded pixels (q * S_h + a, r * S_w + b), a plane of
H_q x W_q = ceil(H_p / S_h) x ceil(W_p / S_w). Tap (i, k) of output (h, j) reads padded pixel
(h * S_h + i * D_h, j * S_w + k * D_w), which is pixel (h + i * D_h // S_h, j + k * D_w // S_w) of phase
((i * D_h) % S_h, (k * D_w) % S_w): a strided convolution is a sum of stride-1 convolutions over the
phases, and every tap is again one contiguous slice, now of a phase plane, on a grid R = W_q wide
(about W_out, where slicing the padded channel with step S_w needs R = S_h * W_p / S_w: twice the
positions for stride 2). The price is one strided copy of the input into its phases.

Results on the wide grid drop their scratch columns; gradients put on it get zeros there, so those
columns add nothing to what they meet. The price is R / W_out more positions (1.06 for a 3x3 layer on
32 x 32, 1.4 for LeNet's second layer), which is why the im2col kernel uses this only where it measured
faster.
"""

from __future__ import annotations

import itertools

import numpy as np


def plan(spatial, kernel_size, stride, dilation, pads, out):
    """The geometry: padded size, phases, wide row R, tap offsets, wide grid size, flat channel size.

    >>> p = plan((5, 5), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), (5, 5))
    >>> p["padded"], p["row"], p["wide"], p["offsets"][:4]
    ((7, 7), 7, 35, [0, 1, 2, 7])
    >>> q = plan((6, 6), (3, 3), (2, 2), (1, 1), ((1, 1), (1, 1)), (3, 3))  # 4 phases of 4 x 4
    >>> q["phase"], q["row"], q["wide"], q["offsets"][:4]
    ((4, 4), 4, 12, [0, 16, 1, 32])
    """
    (H, W), ((top, bottom), (left, right)) = spatial, pads
    (S_h, S_w), (D_h, D_w) = stride, dilation
    Hp, Wp = H + top + bottom, W + left + right
    Hq, Wq = -(-Hp // S_h), -(-Wp // S_w)  # one phase plane
    offsets = [((i * D_h % S_h) * S_w + k * D_w % S_w) * Hq * Wq + (i * D_h // S_h) * Wq + k * D_w // S_w
               for i, k in itertools.product(*map(range, kernel_size))]
    wide = out[0] * Wq
    flat = max(S_h * S_w * Hq * Wq, max(offsets) + wide)  # every tap's slice fits in a flat channel
    return dict(padded=(Hp, Wp), phase=(Hq, Wq), stride=(S_h, S_w), row=Wq, offsets=offsets, wide=wide,
                flat=flat, out=tuple(out), kernel=tuple(kernel_size), tap_steps=(D_h * Wq, D_w))


def band(plan, first, stop):
    """The plan of output rows ``first`` to ``stop`` alone: its taps read flat channels shifted by
    ``first * plan["row"]`` (pass ``xp[..., first * plan["row"]:]``), each still one contiguous slice.

    >>> p = plan((5, 5), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), (5, 5))
    >>> b = band(p, 2, 4)
    >>> b["wide"], b["out"], b["offsets"] == p["offsets"]
    (14, (2, 5), True)
    """
    return dict(plan, wide=(stop - first) * plan["row"], out=(stop - first, plan["out"][1]))


def _phases(buffer, plan, pads, spatial):
    """For each phase: (its plane in ``buffer``, the rows and columns of it the input covers, the
    input's pixels that land there as slices)."""
    (Hq, Wq), (S_h, S_w), (H, W) = plan["phase"], plan["stride"], spatial
    planes = buffer[..., :S_h * S_w * Hq * Wq].reshape(*buffer.shape[:-1], S_h, S_w, Hq, Wq)
    for a, b in itertools.product(range(S_h), range(S_w)):
        covered, taken = [], []
        for phase, pad, n, S in ((a, pads[0][0], H, S_h), (b, pads[1][0], W, S_w)):
            first, end = -(-(pad - phase) // S), -(-(pad + n - phase) // S)  # phase rows holding input
            first, end = max(first, 0), max(end, 0)
            covered.append(slice(first, end))
            taken.append(slice(first * S + phase - pad, (end - 1) * S + phase - pad + 1 if end > first else 0,
                               S))
        yield planes[..., a, b, :, :], covered, taken


def pad_into(buffer, x, plan, pads):
    """x (..., H, W) zero-padded into ``buffer`` (..., flat), split into phases when strided; only the
    border is zeroed, not a full pass."""
    (S_h, S_w), (Hq, Wq) = plan["stride"], plan["phase"]
    for image, (rows, cols), (x_rows, x_cols) in _phases(buffer, plan, pads, x.shape[-2:]):
        image[..., :rows.start, :] = 0
        image[..., rows.stop:, :] = 0
        image[..., rows, :cols.start] = 0
        image[..., rows, cols.stop:] = 0
        image[..., rows, cols] = x[..., x_rows, x_cols]
    buffer[..., S_h * S_w * Hq * Wq:] = 0
    return buffer


def unpad(buffer, plan, pads, spatial, out=None):
    """The (..., H, W) interior of a flat padded buffer: a view without strides, else gathered from the
    phases into ``out`` (or a new array)."""
    if plan["stride"] == (1, 1):
        ((top, _), (left, _)), (H, W) = pads, spatial
        Hp, Wp = plan["padded"]
        view = buffer[..., :Hp * Wp].reshape(*buffer.shape[:-1], Hp, Wp)[..., top:top + H, left:left + W]
        if out is None:
            return view
        out[...] = view
        return out
    out = np.empty((*buffer.shape[:-1], *spatial), buffer.dtype) if out is None else out
    for image, (rows, cols), (x_rows, x_cols) in _phases(buffer, plan, pads, spatial):
        out[..., x_rows, x_cols] = image[..., rows, cols]
    return out


def tap(xp, offset, plan):
    """The slice of flat channels (..., flat) one tap reads for the whole wide grid: (..., wide)."""
    return xp[..., offset:offset + plan["wide"]]


def taps(xp, plan):
    """Every tap's slice at once: a read-only view (..., F_h, F_w, wide) of flat channels (..., flat), for
    plans without strides (:func:`gather` takes any plan).

    Tap (i, k) starts at ``i * D_h * W_p + k * D_w``, so the taps form a regular 2-level grid of offsets
    and one strided view holds them all: copying it is ONE NumPy call where a loop over the taps is
    F_h * F_w (25 for a 5x5 filter), each call a fixed cost and, on threads, a turn of the GIL.
    """
    assert plan["stride"] == (1, 1), "the taps of a strided plan lie in different phases: use gather()"
    step = xp.strides[-1]
    (F_h, F_w), (tap_h, tap_w) = plan["kernel"], plan["tap_steps"]
    return np.lib.stride_tricks.as_strided(
        xp, shape=(*xp.shape[:-1], F_h, F_w, plan["wide"]),
        strides=(*xp.strides[:-1], tap_h * step, tap_w * step, step), writeable=False)


def gather(xp, plan, out):
    """Every tap's slice of flat channels (..., flat) copied into ``out`` (..., F_h, F_w, wide): one
    call without strides (:func:`taps`), one per tap with."""
    if plan["stride"] == (1, 1):
        np.copyto(out, taps(xp, plan))
        return out
    for (i, k), offset in zip(itertools.product(*map(range, plan["kernel"])), plan["offsets"], strict=True):
        out[..., i, k, :] = tap(xp, offset, plan)
    return out


def to_wide(buffer, y, plan):
    """y (..., H_out, W_out) into ``buffer`` (..., H_out, R) with zeros in the scratch columns."""
    W_out = plan["out"][1]
    buffer[..., W_out:] = 0
    buffer[..., :W_out] = y
    return buffer.reshape(*buffer.shape[:-2], plan["wide"])


def from_wide(y_wide, plan):
    """The (..., H_out, W_out) view of a wide-grid array (..., wide): the scratch columns dropped."""
    return y_wide.reshape(*y_wide.shape[:-1], plan["out"][0], plan["row"])[..., :plan["out"][1]]
