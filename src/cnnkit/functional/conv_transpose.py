"""Transposed convolution, the public face of one kernel: :mod:`cnnkit.reference.conv_transpose`.

Its forward is a convolution's backward-data (col2im of W^T @ x) and its backward a plain convolution.
"""

from cnnkit.geometry import transpose_geometry
from cnnkit.reference.conv_transpose import (
    conv_transpose2d,
    conv_transpose2d_backward,
    conv_transposend,
    conv_transposend_backward,
)

__all__ = ["conv_transpose2d", "conv_transpose2d_backward", "conv_transposend", "conv_transposend_backward",
           "transpose_geometry"]
