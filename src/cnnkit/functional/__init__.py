"""Pure kernels on NumPy arrays: ``f(x, params, hyper) -> (y, cache)`` and ``f_backward(dy, cache)``.

No state and no parameters objects: easy to test and to replace with a faster kernel behind the same
signature.
"""

from cnnkit.functional.conv import (
    col2im,
    conv1d,
    conv1d_backward,
    conv2d,
    conv2d_backward,
    conv3d,
    conv3d_backward,
    convnd,
    convnd_backward,
    im2col,
)

__all__ = [
    "col2im", "conv1d", "conv1d_backward", "conv2d", "conv2d_backward", "conv3d", "conv3d_backward",
    "convnd", "convnd_backward", "im2col",
]
