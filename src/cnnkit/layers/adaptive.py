"""Adaptive pooling layers: AdaptiveAvgPool1d/2d/3d and AdaptiveMaxPool1d/2d/3d (kernels in
cnnkit.functional.adaptive).

A pool whose *output* size is fixed: the windows follow the input, ``start = floor(i * S / S_out)``,
``end = ceil((i + 1) * S / S_out)``. torchvision's AlexNet and VGG put one between their features and their
classifier, so that the classifier's first Linear sees the same number of features at any input size.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.fast.dispatch import enable_grad
from cnnkit.functional import adaptive as A
from cnnkit.layers.base import Layer


class _AdaptivePool(Layer):
    """Pool (N, C, *S) to (N, C, *output_size); None in output_size keeps that axis."""

    ndim, layout = 2, "(N, C, H, W)"

    def __init__(self, output_size):
        self.output_size = A.check_output_size(output_size, self.ndim, name=type(self).__name__)

    @property
    def batched_ndim(self):
        return self.ndim + 2

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != self.ndim + 2:
            raise ShapeError(f"{self!r}: expected a {self.ndim + 2}-D input {self.layout}, received shape "
                             f"{shape}.")
        if any(n < 1 for n in shape[2:]):
            raise ShapeError(f"{self!r}: every spatial axis needs at least one position, received shape "
                             f"{shape}.")
        return (*shape[:2], *A.adaptive_output_size(shape[2:], self.output_size, name=repr(self)))

    def receptive_window(self, spatial):
        """For the analysis tools: (widest window, stride, leading padding 0) per axis.

        When S_out divides S this is exactly a pool with kernel = stride = S / S_out. Otherwise the windows
        vary by one position: the widest window and the largest step between neighbours are reported (an
        upper bound of the receptive field); an output larger than the input steps S / S_out < 1.
        """
        out = A.adaptive_output_size(spatial, self.output_size, name=repr(self))
        widths, steps = [], []
        for n, m in zip(spatial, out, strict=True):
            start, end = A.adaptive_windows(n, m)
            widths.append(int((end - start).max()))
            if m > n:
                steps.append(Fraction(n, m))
            else:  # one window (m = 1) steps over the whole axis, like a global pool
                steps.append(int(np.diff(start).max()) if m > 1 else n)
        return tuple(widths), tuple(steps), (0,) * len(spatial)

    def extra_repr(self):
        size = self.output_size
        return f"output_size={size[0] if len(set(size)) == 1 else size!r}"


class AdaptiveAvgPool2d(_AdaptivePool):
    """Average pooling to a fixed output size: each output is the mean of its window of the input.

    Shape:
        (N, C, H, W) -> (N, C, H_out, W_out) = output_size, whatever H and W are; output i along W averages
        the inputs ``floor(i * W / W_out) .. ceil((i + 1) * W / W_out) - 1`` (PyTorch's rule). When
        W_out divides W this is AvgPool2d(W / W_out); ``AdaptiveAvgPool2d(1)`` is GlobalAvgPool2d.
        An unbatched (C, H, W) input gives (C, H_out, W_out).

    Args:
        output_size: an int (square), or (H_out, W_out) with None keeping that axis of the input.

    Raises:
        TypeError/ValueError: an output_size entry that is not a positive int or None.
        ShapeError: an input that is not 4-D (or 3-D), or has an empty spatial axis.
        RuntimeError: backward before forward.

    >>> AdaptiveAvgPool2d((6, 6)).output_shape((2, 256, 13, 13))
    (2, 256, 6, 6)
    >>> AdaptiveAvgPool2d(7).output_shape((1, 8, 2, 2))
    (1, 8, 7, 7)
    >>> AdaptiveAvgPool2d((None, 1)).output_shape((1, 3, 5, 9))
    (1, 3, 5, 1)
    """

    def forward(self, x):
        self.check_input(x, self.ndim + 2, layout=self.layout)
        y, self._cache = A.adaptive_avg_pool(x, self.output_size, name=repr(self))
        return y

    def backward(self, dy):
        return A.adaptive_avg_pool_backward(dy, self._pop_cache())


class AdaptiveAvgPool1d(AdaptiveAvgPool2d):
    """Average pooling of a sequence to a fixed length: (N, C, W) -> (N, C, output_size).

    Shape: (N, C, W) -> (N, C, W_out), window i = ``floor(i * W / W_out) .. ceil((i + 1) * W / W_out) - 1``.

    Args:
        output_size: an int (or a 1-tuple; None keeps W).

    Raises:
        TypeError/ValueError: a bad output_size. ShapeError: an input that is not 3-D (or 2-D).

    >>> AdaptiveAvgPool1d(4).output_shape((2, 16, 10))
    (2, 16, 4)
    """

    ndim, layout = 1, "(N, C, W)"


class AdaptiveAvgPool3d(AdaptiveAvgPool2d):
    """Average pooling of a volume to a fixed size: (N, C, D, H, W) -> (N, C, *output_size).

    Shape: (N, C, D, H, W) -> (N, C, D_out, H_out, W_out), each axis as in AdaptiveAvgPool2d.

    Args:
        output_size: an int (cube), or (D_out, H_out, W_out) with None keeping that axis.

    Raises:
        TypeError/ValueError: a bad output_size. ShapeError: an input that is not 5-D (or 4-D).

    >>> AdaptiveAvgPool3d((1, None, 2)).output_shape((1, 4, 8, 9, 10))
    (1, 4, 1, 9, 2)
    """

    ndim, layout = 3, "(N, C, D, H, W)"


class AdaptiveMaxPool2d(_AdaptivePool):
    """Max pooling to a fixed output size: each output is the max of its window of the input.

    Shape:
        (N, C, H, W) -> (N, C, H_out, W_out) = output_size, with the windows of AdaptiveAvgPool2d. Ties go to
        the first max in row-major window order, as in PyTorch; backward routes each gradient to that input
        (summed where overlapping windows share a max). An unbatched (C, H, W) input gives (C, H_out, W_out).

    Args:
        output_size: an int (square), or (H_out, W_out) with None keeping that axis of the input.
        return_indices: False (default). True makes forward return ``(y, indices)``, the flat position of
            each max inside its (H, W) plane, as PyTorch does (for MaxUnpool2d); backward still takes dy.

    Raises:
        TypeError/ValueError: a bad output_size, or a return_indices that is not a bool.
        ShapeError: an input that is not 4-D (or 3-D), or has an empty spatial axis.
        RuntimeError: backward before forward.

    >>> AdaptiveMaxPool2d(3).output_shape((2, 8, 10, 10))
    (2, 8, 3, 3)
    """

    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        if not isinstance(return_indices, bool):
            raise TypeError(f"{type(self).__name__}: Received return_indices={return_indices!r}; expected a "
                            f"bool.")
        self.return_indices = return_indices

    def forward(self, x):
        self.check_input(x, self.ndim + 2, layout=self.layout)
        with enable_grad():  # return_indices reads the cache (which no layer keeps under no_grad)
            y, cache = A.adaptive_max_pool(x, self.output_size, name=repr(self))
        self._cache = cache
        return (y, cache["indices"]) if self.return_indices else y

    def backward(self, dy):
        return A.adaptive_max_pool_backward(dy, self._pop_cache())

    def extra_repr(self):
        return super().extra_repr() + (", return_indices=True" if self.return_indices else "")


class AdaptiveMaxPool1d(AdaptiveMaxPool2d):
    """Max pooling of a sequence to a fixed length: (N, C, W) -> (N, C, output_size).

    Shape: (N, C, W) -> (N, C, W_out), windows as AdaptiveAvgPool1d; ties to the first max.

    Args:
        output_size: an int (or a 1-tuple; None keeps W). return_indices=False: as AdaptiveMaxPool2d.

    Raises:
        TypeError/ValueError: a bad output_size or return_indices. ShapeError: an input not 3-D (or 2-D).

    >>> AdaptiveMaxPool1d(2).output_shape((1, 3, 7))
    (1, 3, 2)
    """

    ndim, layout = 1, "(N, C, W)"


class AdaptiveMaxPool3d(AdaptiveMaxPool2d):
    """Max pooling of a volume to a fixed size: (N, C, D, H, W) -> (N, C, *output_size).

    Shape: (N, C, D, H, W) -> (N, C, D_out, H_out, W_out), windows as AdaptiveAvgPool3d.

    Args:
        output_size: an int (cube), or per-axis ints or None. return_indices=False: as AdaptiveMaxPool2d.

    Raises:
        TypeError/ValueError: a bad output_size or return_indices. ShapeError: an input not 5-D (or 4-D).

    >>> AdaptiveMaxPool3d(2).output_shape((1, 2, 4, 5, 6))
    (1, 2, 2, 2, 2)
    """

    ndim, layout = 3, "(N, C, D, H, W)"
