"""One check that a layer works everywhere a layer must: summary, from_config, save/load, to_torch/from_torch
and ONNX export run in onnxruntime, each giving the layer's own output."""

from __future__ import annotations

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.layers import Sequential, from_config


def check_everywhere(layer, input_shape, tmp_path, *, onnx=True, torch_module=True):
    """``input_shape`` with the batch axis. Returns the layer's float32 output for a random input."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(input_shape).astype(np.float32)
    model = Sequential(layer).eval()
    y = model.forward(x)
    s = ck.summary(model, input_shape[1:])
    assert s.rows[-1].output_shape == y.shape[1:]
    if not layer.parameters():
        assert s.rows[-1].macs == 0  # pooling and padding cost no multiply-adds in the notes' count
    rebuilt = from_config(model.config()).load_state_dict(model.state_dict()).eval()
    np.testing.assert_array_equal(rebuilt.forward(x), y)
    ck.save(model, tmp_path / "model.npz")
    np.testing.assert_array_equal(ck.load(tmp_path / "model.npz").forward(x), y)
    if torch_module:
        torch = pytest.importorskip("torch")
        from cnnkit.interop.torch import from_torch, to_torch

        net = to_torch(model).eval()
        with torch.no_grad():
            np.testing.assert_allclose(net(torch.from_numpy(x)).numpy(), y, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(from_torch(net).forward(x), y)
    if onnx:
        pytest.importorskip("onnxruntime")
        from cnnkit.interop.onnx import export, run

        export(model, tmp_path / "model.onnx", input_shape[1:])
        np.testing.assert_allclose(run(tmp_path / "model.onnx", x), y, rtol=1e-5, atol=1e-6)
    return y
