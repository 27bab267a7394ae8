"""Transposed convolution, the public face of one kernel: :mod:`cnnkit.reference.conv_transpose`.

Its forward is a convolution's backward-data (col2im of W^T @ x) and its backward a plain convolution.
Under ``cnnkit.no_grad()`` the forward returns ``None`` as its cache.
"""

from cnnkit.fast.dispatch import without_cache
from cnnkit.geometry import transpose_geometry
from cnnkit.reference.conv_transpose import conv_transpose2d as _conv_transpose2d
from cnnkit.reference.conv_transpose import conv_transpose2d_backward, conv_transposend_backward
from cnnkit.reference.conv_transpose import conv_transposend as _conv_transposend

__all__ = ["conv_transpose2d", "conv_transpose2d_backward", "conv_transposend", "conv_transposend_backward",
           "transpose_geometry"]

conv_transposend, conv_transpose2d = without_cache(_conv_transposend), without_cache(_conv_transpose2d)
