"""BatchNorm1d, BatchNorm2d, BatchNorm3d and LocalResponseNorm; kernels in ``cnnkit.functional.norm``."""

from __future__ import annotations

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.fast.dispatch import ALGORITHMS, check_algorithm, enable_grad
from cnnkit.functional.norm import (
    batch_norm,
    batch_norm_backward,
    local_response_norm,
    local_response_norm_backward,
)
from cnnkit.layers.activation import check_float_array, finite_real
from cnnkit.layers.base import Layer, Parameter
from cnnkit.layers.conv import positive_int


class _BatchNorm(Layer):
    buffer_names = ("running_mean", "running_var", "num_batches_tracked")
    mixes_examples = True  # training normalizes with the statistics of the whole batch
    layouts: dict[int, str] = {}
    algorithm = "auto"  # the kernel: "auto" (the fast one), "reference" (the textbook's) or "fast"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *,
                 algorithm="auto"):
        owner = type(self).__name__
        self.algorithm = check_algorithm(algorithm, ALGORITHMS, name=owner)
        self.num_features = positive_int(num_features, "num_features", owner)
        self.eps = finite_real(eps, "eps", owner)
        if self.eps <= 0:
            raise ValueError(f"{owner}: Received eps={eps!r}; expected a small positive number such as 1e-5.")
        if momentum is not None:
            momentum = finite_real(momentum, "momentum", owner)
            if not 0 <= momentum <= 1:
                raise ValueError(f"{owner}: Received momentum={momentum!r}; expected a number in [0, 1] "
                                 f"(or None for a cumulative average).")
        self.momentum, self.affine = momentum, bool(affine)
        self.track_running_stats = bool(track_running_stats)
        C = self.num_features
        self.weight = Parameter(np.ones(C, np.float32)) if affine else None
        self.bias = Parameter(np.zeros(C, np.float32)) if affine else None
        if track_running_stats:
            self.running_mean = np.zeros(C, np.float32)
            self.running_var = np.ones(C, np.float32)
            self.num_batches_tracked = np.array(0, dtype=np.int64)
        else:
            # As in PyTorch: no buffers at all, batch statistics in train and eval mode alike.
            self.running_mean = self.running_var = self.num_batches_tracked = None
            self.buffer_names = ()

    def extra_repr(self):
        text = f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
        if not self.affine:
            text += ", affine=False"
        if not self.track_running_stats:
            text += ", track_running_stats=False"
        if self.algorithm != "auto":
            text += f", algorithm={self.algorithm!r}"
        return text

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) not in self.layouts or shape[1] != self.num_features:
            expected = " or ".join(f"{n}-D {lay}" for n, lay in self.layouts.items())
            raise ShapeError(f"{self!r}: expected a {expected} input with C={self.num_features}, received "
                             f"shape {shape}.")
        return shape

    def forward(self, x):
        check_float_array(self, x)
        self.output_shape(x.shape)
        use_batch = self.training or not self.track_running_stats
        if use_batch and x.size // x.shape[1] < 2:
            raise ShapeError(f"{self!r}: expected more than 1 value per channel when training, received "
                             f"shape {x.shape}; use a batch of 2 or more, or .eval() for running statistics.")
        weight = None if self.weight is None else self.weight.data
        bias = None if self.bias is None else self.bias.data
        if use_batch:
            with enable_grad():  # the batch statistics come in the cache (kept by no layer under no_grad)
                y, cache = batch_norm(x, weight, bias, eps=self.eps, algorithm=self.algorithm)
        else:
            y, cache = batch_norm(x, weight, bias, self.running_mean, self.running_var, self.eps,
                                  algorithm=self.algorithm)
        if self.training and self.track_running_stats:
            stats = cache.data  # the kernel's own cache: the batch statistics
            self._update_running_stats(stats["batch_mean"], stats["batch_var"], x.size // x.shape[1])
        self._cache = cache
        return y

    def _update_running_stats(self, mean, var, m):
        """PyTorch's rule, in place: running = (1 - momentum) * running + momentum * batch statistic.

        The running variance uses the unbiased batch variance (times m / (m - 1)), while normalisation
        uses the biased one; momentum None gives the cumulative average over all batches so far.
        """
        self.num_batches_tracked += 1
        factor = 1.0 / int(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean *= 1 - factor
        self.running_mean += factor * mean
        self.running_var *= 1 - factor
        self.running_var += factor * var * (m / (m - 1))

    def backward(self, dy):
        dx, dweight, dbias = batch_norm_backward(dy, self._pop_cache())
        if self.weight is not None:
            self.weight.grad += dweight
            self.bias.grad += dbias
        return dx


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) features or (N, C, L) sequences, per channel C.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``. In training mode the mean and (biased) variance
    are the batch's, over N (and L), and running averages are updated; in eval mode the running averages
    are used. Parameters and buffers carry PyTorch's names: weight, bias, running_mean, running_var,
    num_batches_tracked.

    Shape: (N, C) -> (N, C); (N, C, L) -> (N, C, L).

    Args:
        num_features (C); eps=1e-5; momentum=0.1 (``running = (1 - momentum) * running + momentum *
        batch``; None for a cumulative average); affine=True (learn weight and bias);
        track_running_stats=True (False: always use batch statistics, keep no buffers).

    Raises:
        ValueError/TypeError for bad arguments; ShapeError for a wrong rank or channel count, or a single
        value per channel in training mode.

    >>> BatchNorm1d(10).output_shape((4, 10))
    (4, 10)
    """

    layouts = {2: "(N, C)", 3: "(N, C, L)"}


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) volumes: one mean and variance per channel over N, H and W.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``; buffers and modes as :class:`BatchNorm1d`.

    Shape: (N, C, H, W) -> (N, C, H, W).

    Args:
        num_features (C); eps=1e-5 (> 0); momentum=0.1 (in [0, 1]; ``running = (1 - momentum) * running
        + momentum * batch``; None for a cumulative average); affine=True (learn weight and bias);
        track_running_stats=True (False: always use batch statistics, keep no buffers).

    Raises:
        ValueError: num_features not a positive int; eps not finite or <= 0; momentum not finite or
            outside [0, 1]. TypeError: eps or momentum not a real number; x not a floating-point ndarray.
        ShapeError: x not 4-D or x.shape[1] != C; N * H * W < 2 when batch statistics are used.
        RuntimeError: backward before forward.

    >>> BatchNorm2d(64).output_shape((8, 64, 56, 56))
    (8, 64, 56, 56)
    """

    layouts = {4: "(N, C, H, W)"}
    batched_ndim = 4  # one example (C, H, W) normalizes as a batch of one (PyTorch refuses it)


class BatchNorm3d(_BatchNorm):
    """Batch normalization of (N, C, D, H, W) volumes: one mean and variance per channel over N, D, H and W.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``; buffers and modes as :class:`BatchNorm1d`.

    Shape: (N, C, D, H, W) -> (N, C, D, H, W); one example (C, D, H, W) is normalized as a batch of one.

    Args:
        num_features (C); eps=1e-5 (> 0); momentum=0.1 (in [0, 1], or None for a cumulative average);
        affine=True; track_running_stats=True: as in BatchNorm2d.

    Raises:
        ValueError/TypeError for bad arguments (as BatchNorm2d); ShapeError: x not 5-D (or 4-D) or
        x.shape[1] != C; a single value per channel when batch statistics are used.
        RuntimeError: backward before forward.

    >>> BatchNorm3d(16).output_shape((2, 16, 4, 8, 8))
    (2, 16, 4, 8, 8)
    """

    layouts = {5: "(N, C, D, H, W)"}
    batched_ndim = 5  # one example (C, D, H, W) normalizes as a batch of one (see Layer)


class LocalResponseNorm(Layer):
    """Local response normalization across neighbouring channels, as in AlexNet and GoogLeNet (v1).

    ``y_c = x_c / (k + alpha / size * sum_{c'} x_{c'}^2) ** beta`` over the ``size`` channels
    ``c - size//2 .. c + (size-1)//2``, zero-padded at the ends: exactly ``torch.nn.LocalResponseNorm``.
    (The notes mention that such layers have fallen out of favour; they are here for the historical nets.)

    Shape: (N, C, *S) -> (N, C, *S), at least 3-D.

    Args:
        size: number of neighbouring channels in the window; alpha=1e-4, beta=0.75, k=1.0.

    Raises:
        ValueError/TypeError for bad arguments (k must be > 0 and alpha >= 0); ShapeError for input with
        fewer than 3 axes.

    >>> LocalResponseNorm(5).output_shape((1, 96, 55, 55))
    (1, 96, 55, 55)
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        self.size = positive_int(size, "size", "LocalResponseNorm")
        self.alpha = finite_real(alpha, "alpha", "LocalResponseNorm")
        self.beta = finite_real(beta, "beta", "LocalResponseNorm")
        self.k = finite_real(k, "k", "LocalResponseNorm")
        if self.k <= 0 or self.alpha < 0:
            # Inputs of zero (common after a ReLU) would then divide by 0 ** beta.
            raise ValueError(f"LocalResponseNorm: Received k={k!r}, alpha={alpha!r}; expected k > 0 and "
                             f"alpha >= 0 so that the denominator k + alpha/size * sum(x^2) stays positive.")

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) < 3:
            raise ShapeError(f"{self!r}: expected an input (N, C, *S) with at least 3 axes, received shape "
                             f"{shape}.")
        return shape

    def forward(self, x):
        check_float_array(self, x)
        self.output_shape(x.shape)
        y, self._cache = local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        return y

    def backward(self, dy):
        return local_response_norm_backward(dy, self._pop_cache())
