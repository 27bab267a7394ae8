"""Windows as slices of *flattened* padded channels: one long run per tap instead of H_out short rows.

A 2-D window gather (im2col's copies, col2im's adds, a depthwise tap) over (H_out, W_out) positions moves
H_out rows of W_out numbers per channel; on small images (LeNet's 10 x 10, CIFAR's 8 x 8) NumPy spends
more time starting its inner loops than in them. Flatten each padded channel instead and keep the output
on a grid R columns wide, R >= W_out, whose columns past W_out are scratch. With strides (S_h, S_w) and
dilation (D_h, D_w), tap (i, k) of output (h, j) reads

    x_flat[S_w * (h * R + j) + i * D_h * W_p + k * D_w]       (R = S_h * W_p / S_w, W_p a multiple of S_w)

so for each tap the whole output grid reads ONE slice of x_flat with a fixed offset and step S_w. Results
on the wide grid drop their scratch columns; gradients put on it get zeros there, so those columns add
nothing to what they meet. The price is R / W_out more positions (1.06 for a 3x3 layer on 32 x 32, 1.4
for LeNet's second layer), which is why the im2col kernel uses this only where it measured faster.
"""

from __future__ import annotations

import itertools

import numpy as np


def plan(spatial, kernel_size, stride, dilation, pads, out):
    """The geometry: padded size, wide row R, slice step, tap offsets, wide grid size, flat channel size.

    >>> p = plan((5, 5), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), (5, 5))
    >>> p["padded"], p["row"], p["wide"], p["offsets"][:4]
    ((7, 7), 7, 35, [0, 1, 2, 7])
    """
    (H, W), ((top, bottom), (left, right)) = spatial, pads
    (S_h, S_w), (D_h, D_w) = stride, dilation
    Hp, Wp = H + top + bottom, -(-(W + left + right) // S_w) * S_w  # extra zero columns: W_p % S_w == 0
    offsets = [i * D_h * Wp + k * D_w for i, k in itertools.product(*map(range, kernel_size))]
    R = S_h * Wp // S_w
    wide = out[0] * R
    flat = max(Hp * Wp, max(offsets) + S_w * (wide - 1) + 1)  # every tap's slice fits in a flat channel
    return dict(padded=(Hp, Wp), row=R, step=S_w, offsets=offsets, wide=wide, flat=flat, out=tuple(out),
                kernel=tuple(kernel_size), tap_steps=(D_h * Wp, D_w))


def pad_into(buffer, x, plan, pads):
    """x (..., H, W) zero-padded into ``buffer`` (..., flat); only the border is zeroed, not a full pass."""
    (Hp, Wp), ((top, _), (left, _)) = plan["padded"], pads
    H, W = x.shape[-2:]
    image = buffer[..., :Hp * Wp].reshape(*buffer.shape[:-1], Hp, Wp)
    image[..., :top, :] = 0
    image[..., top + H:, :] = 0
    image[..., top:top + H, :left] = 0
    image[..., top:top + H, left + W:] = 0
    buffer[..., Hp * Wp:] = 0
    image[..., top:top + H, left:left + W] = x
    return buffer


def unpad(buffer, plan, pads, spatial):
    """The (..., H, W) interior of a flat padded buffer, as a view."""
    (Hp, Wp), ((top, _), (left, _)), (H, W) = plan["padded"], pads, spatial
    return buffer[..., :Hp * Wp].reshape(*buffer.shape[:-1], Hp, Wp)[..., top:top + H, left:left + W]


def tap(xp, offset, plan):
    """The slice of flat channels (..., flat) one tap reads for the whole wide grid: (..., wide)."""
    return xp[..., offset:offset + plan["step"] * (plan["wide"] - 1) + 1:plan["step"]]


def taps(xp, plan):
    """Every tap's slice at once: a read-only view (..., F_h, F_w, wide) of flat channels (..., flat).

    Tap (i, k) starts at ``i * D_h * W_p + k * D_w``, so the taps form a regular 2-level grid of offsets
    and one strided view holds them all: copying it is ONE NumPy call where a loop over the taps is
    F_h * F_w (25 for a 5x5 filter), each call a fixed cost and, on threads, a turn of the GIL.
    """
    step = xp.strides[-1]
    (F_h, F_w), (tap_h, tap_w) = plan["kernel"], plan["tap_steps"]
    return np.lib.stride_tricks.as_strided(
        xp, shape=(*xp.shape[:-1], F_h, F_w, plan["wide"]),
        strides=(*xp.strides[:-1], tap_h * step, tap_w * step, plan["step"] * step), writeable=False)


def to_wide(buffer, y, plan):
    """y (..., H_out, W_out) into ``buffer`` (..., H_out, R) with zeros in the scratch columns."""
    W_out = plan["out"][1]
    buffer[..., W_out:] = 0
    buffer[..., :W_out] = y
    return buffer.reshape(*buffer.shape[:-2], plan["wide"])


def from_wide(y_wide, plan):
    """The (..., H_out, W_out) view of a wide-grid array (..., wide): the scratch columns dropped."""
    return y_wide.reshape(*y_wide.shape[:-1], plan["out"][0], plan["row"])[..., :plan["out"][1]]
