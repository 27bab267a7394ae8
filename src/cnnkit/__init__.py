"""cnnkit: a convolutional neural network library whose engine is plain NumPy you can read.

Tensors are NumPy arrays in NCHW layout (batch, channels, height, width), float32 by default.
"""

from cnnkit import (
    _openblas,  # noqa: F401 -- first: OpenBLAS's thread timeout, before NumPy loads OpenBLAS
    analysis,
    data,
    functional,
    init,
    interop,
    layers,
    losses,
    models,
    optim,
    reference,
    runtime,
    train,
    transfer,
)
from cnnkit.analysis import output_size, summary
from cnnkit.build import build
from cnnkit.errors import ShapeError
from cnnkit.fast.dispatch import enable_grad, is_grad_enabled, no_grad, reference_mode
from cnnkit.fuse import fuse
from cnnkit.gradcheck import gradcheck
from cnnkit.io import load, save
from cnnkit.layers import *  # noqa: F403 -- the layers are the public API; layers.__all__ lists them
from cnnkit.layers import __all__ as _layer_names

__version__ = "0.1.0"

__all__ = ["ShapeError", "__version__", "analysis", "functional", "gradcheck", "init", "layers", "losses",
           "output_size", *_layer_names]
__all__ += ["load", "optim", "save", "train"]
__all__ += ["data"]
__all__ += ["build", "models", "summary"]
__all__ += ["interop", "transfer"]
__all__ += ["reference", "reference_mode", "runtime"]
__all__ += ["enable_grad", "fuse", "is_grad_enabled", "no_grad"]
