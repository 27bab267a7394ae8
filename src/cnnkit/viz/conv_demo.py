"""The notes' convolution demo as a page: every output of a small convolution as a visible dot product.

The lecture notes' most famous picture animates a 5x5x3 input with padding 1 and two 3x3x3 filters at
stride 2: a window slides over the input, and each output number is the sum of the window times the filter
plus the bias. :func:`conv_demo` computes such a layer with cnnkit's own kernels and writes it as one
self-contained HTML page (inline script and style, no network) that steps through

1. the convolution, window by window, with the terms of each dot product, next to im2col's matrix view
   (``Y = W @ cols + b``: the highlighted row of W times the highlighted column of cols);
2. max pooling of the result, window by window, the winner of each window marked (the "switch");
3. the backward pass through the same windows: the pooling gradient routed to the switches, then each
   output's gradient sent back along its window: ``dx[window] += dy * W_k``, ``dW_k += dy * x[window]``.

The numbers the page shows as results are cnnkit's: ``cnnkit.functional.conv2d`` (y),
``cnnkit.reference.conv.im2col`` (the columns), ``max_pool2d`` and its backward (the pooled values, the
switches, dy) and ``conv2d_backward`` (dx, dW, db). The page writes out the terms of each dot product and
adds up the backward contributions as it steps; at each result it says whether its own sum equals cnnkit's.
The inputs are small integers, so every sum is exact and can be followed by hand.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnkit.errors import ShapeError

MAX_SIDE, MAX_CHANNELS = 16, 8  # the page draws every number: beyond this it stops being readable


@dataclass(frozen=True)
class ConvDemo:
    """The numbers of one demo (one image, N = 1 dropped) and the page that shows them.

    Arrays: ``x`` (C, H, W), ``weight`` (K, C, F, F), ``bias`` (K,), ``y`` (K, H_out, W_out) =
    conv2d(x), ``cols`` (C*F*F, H_out*W_out) = im2col of the padded x, ``pooled`` (K, P_out, Q_out) =
    max_pool2d(y), ``switches`` (K, P_out, Q_out, 2) the (row, column) in y of each window's max,
    ``grad`` (K, P_out, Q_out) the gradient given to the pooled output, ``dy`` the gradient of y,
    ``dx``/``dweight``/``dbias`` the gradients of the convolution's input and parameters.

    ``html`` is the page; :meth:`save` writes it; in Jupyter the demo shows itself inline.
    """

    x: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    stride: int
    padding: int
    pool_size: int
    pool_stride: int
    y: np.ndarray
    cols: np.ndarray
    pooled: np.ndarray
    switches: np.ndarray
    grad: np.ndarray
    dy: np.ndarray
    dx: np.ndarray
    dweight: np.ndarray
    dbias: np.ndarray
    html: str = field(repr=False, default="")

    def save(self, path) -> Path:
        """Write the page to ``path`` (UTF-8); returns the path."""
        path = Path(path)
        path.write_text(self.html, encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        # An iframe keeps the page's script and style apart from the notebook's (and runs in JupyterLab,
        # which does not run scripts inserted into an output's HTML).
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" title="cnnkit convolution demo" '
                f'style="width: 100%; height: 900px; border: 1px solid #ddd"></iframe>')


def conv_demo(input_shape=(3, 5, 5), *, padding=1, filters=2, kernel_size=3, stride=2, pool_size=2,
              pool_stride=1, x=None, weight=None, bias=None, grad=None, rng=None, save=None) -> ConvDemo:
    """Compute a small convolution, its max pooling and its backward pass, and lay them out as a page.

    Shape:
        x (C, H, W), weight (K, C, F, F), bias (K,) -> y (K, H_out, W_out) with
        ``H_out = (H - F + 2P) / S + 1`` (likewise W_out) -> pooled (K, P_out, Q_out) with
        ``P_out = (H_out - F_pool) / S_pool + 1``.

    Args:
        input_shape: (C, H, W) of the input drawn when ``x`` is not given; default the notes' 5x5x3.
        padding, filters (K), kernel_size (F), stride (S): the convolution; defaults the notes' demo.
        pool_size, pool_stride: the max pooling applied to the convolution's output (default 2x2 windows
            at stride 1: the notes' 3x3 output does not tile with stride 2, and overlapping windows show
            a switch that wins twice and so receives two gradients).
        x, weight, bias, grad: arrays to use instead of random small integers (grad: the gradient of the
            pooled output).
        rng: ``numpy.random.Generator`` for the integers (default: seed 0, so the page is reproducible).
        save: a path to write the page to.

    Returns:
        A :class:`ConvDemo`: the arrays and ``.html``.

    Raises:
        ShapeError: the windows do not tile the input (the message gives the output-size arithmetic), or
            the given arrays' shapes disagree.
        ValueError: a volume too large to draw (more than 16 pixels a side or 8 channels or filters).

    >>> demo = conv_demo()
    >>> demo.y.shape, demo.cols.shape, demo.pooled.shape, demo.dx.shape
    ((2, 3, 3), (27, 9), (2, 2, 2), (3, 5, 5))
    >>> "<script>" in demo.html and "http" not in demo.html
    True
    """
    from cnnkit import functional as F
    from cnnkit.reference.conv import im2col, pad

    rng = np.random.default_rng(0) if rng is None else rng
    if x is None:
        x = rng.integers(0, 3, tuple(input_shape)).astype(np.float64)  # the notes' inputs: 0, 1, 2
    x = np.asarray(x, np.float64)
    if x.ndim != 3:
        raise ShapeError(f"conv_demo: x must be one image (C, H, W); received shape {x.shape}.")
    C, H, W = x.shape
    if weight is None:
        weight = rng.integers(-1, 2, (filters, C, kernel_size, kernel_size)).astype(np.float64)
    weight = np.asarray(weight, np.float64)
    if weight.ndim != 4 or weight.shape[1] != C or weight.shape[2] != weight.shape[3]:
        raise ShapeError(f"conv_demo: weight must be (K, C={C}, F, F) for a ({C}, {H}, {W}) input; received "
                         f"shape {weight.shape}.")
    K, _, Fk, _ = weight.shape
    if max(H, W) > MAX_SIDE or max(C, K) > MAX_CHANNELS:
        raise ValueError(f"conv_demo: the page draws every number; give at most {MAX_SIDE} pixels a side and "
                         f"{MAX_CHANNELS} channels and filters; received input ({C}, {H}, {W}) and {K} "
                         f"filters.")
    bias = rng.integers(0, 2, K).astype(np.float64) if bias is None else np.asarray(bias, np.float64)
    if bias.shape != (K,):
        raise ShapeError(f"conv_demo: bias must be ({K},), one per filter; received shape {bias.shape}.")

    y4, cache = F.convnd(x[None], weight, bias, stride, padding, name="conv_demo")
    y = y4[0]
    Ho, Wo = y.shape[1:]
    pads = ((padding, padding), (padding, padding))
    cols = im2col(pad(x[None], pads), (Fk, Fk), (stride, stride), (1, 1), (Ho, Wo))
    cols = cols.reshape(C * Fk * Fk, Ho * Wo)  # (C*F*F, L): row c*F*F + a*F + b, column i*W_out + j

    p4, pool_cache = F.max_pool2d(y4, pool_size, pool_stride, name="conv_demo: max pooling of the output")
    pooled = p4[0]
    # The switches, found by cnnkit's own backward: a one-hot gradient lands on the window's winner.
    switches = np.zeros((*pooled.shape, 2), np.int64)
    for k, i, j in np.ndindex(*pooled.shape):
        onehot = np.zeros_like(p4)
        onehot[0, k, i, j] = 1.0
        switches[k, i, j] = np.argwhere(F.max_pool2d_backward(onehot, pool_cache)[0, k])[0]
    # Positive gradients: nothing cancels, so every window the gradient flows through visibly changes.
    grad = rng.integers(1, 4, pooled.shape) if grad is None else grad
    grad = np.asarray(grad, np.float64)
    if grad.shape != pooled.shape:
        raise ShapeError(f"conv_demo: grad must have the pooled output's shape {pooled.shape}; received "
                         f"shape {grad.shape}.")
    dy = F.max_pool2d_backward(grad[None], pool_cache)[0]
    dx, dweight, dbias = F.conv2d_backward(dy[None], cache)

    demo = dict(x=x, weight=weight, bias=bias, stride=stride, padding=padding, pool_size=pool_size,
                pool_stride=pool_stride, y=y, cols=cols, pooled=pooled, switches=switches, grad=grad, dy=dy,
                dx=dx[0], dweight=dweight, dbias=dbias)
    result = ConvDemo(**demo, html=page(demo))
    if save is not None:
        result.save(save)
    return result


def page(demo: dict) -> str:
    """The self-contained HTML page of a demo's numbers (see the module's docstring)."""
    from cnnkit.viz._conv_demo_page import TEMPLATE

    x, weight = demo["x"], demo["weight"]
    C, H, W = x.shape
    K, _, Fk, _ = weight.shape
    P = demo["padding"]
    data = {name: _plain(value) for name, value in demo.items()}
    data["xp"] = _plain(np.pad(x, ((0, 0), (P, P), (P, P))))
    Ho, Wo = demo["y"].shape[1:]
    title = (f"Convolution: {W}x{H}x{C} input, pad {P}, {K} filters {Fk}x{Fk}, stride {demo['stride']} "
             f"-> {Wo}x{Ho}x{K}")
    # "</" cannot end the script element early: JSON escapes it as "<\/".
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return TEMPLATE.replace("{{TITLE}}", html.escape(title)).replace("{{DATA}}", payload)


def _plain(value):
    """Numbers as JSON: integral floats as ints (the page prints 2, not 2.0)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and np.all(np.isfinite(value)) and np.all(value == np.round(value)):
            return value.astype(np.int64).tolist()
        return value.tolist()
    return value
