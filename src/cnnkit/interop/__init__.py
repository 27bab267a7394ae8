"""Weights in and out: PyTorch state dicts and modules, ONNX files (both ways), safetensors.

Nothing here imports torch or onnx until a function that needs it is called, so ``import cnnkit.interop``
stays as light as the core; reading and writing ``.safetensors`` needs NumPy only.

>>> import numpy as np
>>> from cnnkit.layers import Linear
>>> model = Linear(3, 2, rng=np.random.default_rng(0))
>>> _ = load_torch_weights(model, {"weight": np.ones((2, 3)), "bias": np.zeros(2)})
>>> model.forward(np.ones((1, 3), np.float32)).tolist()
[[3.0, 3.0]]
"""

from cnnkit.interop.onnx import export as export_onnx
from cnnkit.interop.onnx import load as load_onnx
from cnnkit.interop.onnx import run as run_onnx
from cnnkit.interop.safetensors import SafetensorsError
from cnnkit.interop.safetensors import load_file as load_safetensors
from cnnkit.interop.safetensors import save_file as save_safetensors
from cnnkit.interop.torch import StateDictMismatch, from_torch, load_torch_weights, to_torch

__all__ = ["SafetensorsError", "StateDictMismatch", "export_onnx", "from_torch", "load_onnx",
           "load_safetensors", "load_torch_weights", "run_onnx", "save_safetensors", "to_torch"]
