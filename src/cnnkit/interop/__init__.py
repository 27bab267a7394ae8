"""Weights in and out: PyTorch state dicts and modules, ONNX files, safetensors.

Nothing here imports torch or onnx until a function that needs it is called, so ``import cnnkit.interop``
stays as light as the core; reading and writing ``.safetensors`` needs NumPy only.
"""
