"""Every zoo model: cnnkit -> torch -> cnnkit and cnnkit -> ONNX (onnxruntime) give the same outputs, and
the torch module's state-dict keys and shapes are torchvision's for every model that has a fixture."""

from __future__ import annotations

import json

import numpy as np
import pytest
from interop_helpers import small_zoo_model

from cnnkit import models
from cnnkit.interop.onnx import export, run
from cnnkit.interop.torch import from_torch, load_torch_weights, to_torch
from conftest import TORCHVISION_FIXTURES, assert_parity, rel_err

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

ZOO = models.names()
FIXTURES = sorted(p.stem for p in TORCHVISION_FIXTURES.glob("*.json"))


def test_the_zoo_and_the_fixtures_are_there():
    assert len(ZOO) >= 19 and len(FIXTURES) == 16
    assert set(FIXTURES) <= set(ZOO), "every torchvision fixture names a zoo model"


@pytest.mark.parametrize("name", ZOO)
def test_round_trips_through_torch_and_onnx(name, tmp_path, rng):
    model, shape = small_zoo_model(name, rng)
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    y = model.forward(x)

    net = to_torch(model).eval()
    assert list(net.state_dict()) == list(model.state_dict())
    with torch.no_grad():
        assert_parity(net(torch.from_numpy(x)).numpy(), y, what=f"{name} torch")

    back = from_torch(net).eval()
    assert list(back.state_dict()) == list(model.state_dict())
    np.testing.assert_array_equal(back.forward(x), y)  # the same layers and the same weights

    path = tmp_path / f"{name}.onnx"
    export(model, path, shape)
    out = run(path, x)
    assert out.shape == y.shape
    assert rel_err(out, y) <= 1e-4, f"{name} onnx: relative error {rel_err(out, y):.1e}"

    # torchvision-style loading into the zoo model: every array arrives. The model's own arrays are zeroed
    # first (building a second copy of resnet152 only to compare with cost a second, for the same proof).
    expected = {key: np.array(value, copy=True) for key, value in model.state_dict().items()}
    for value in model.state_dict().values():
        value[...] = 0
    assert not any(value.any() for value in model.state_dict().values())  # the zeroing reached the model
    load_torch_weights(model, net.state_dict())
    loaded = model.state_dict()
    for key, value in expected.items():
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)


@pytest.mark.parametrize("name", FIXTURES)
def test_torch_state_dict_matches_torchvision(name):
    fixture = json.loads((TORCHVISION_FIXTURES / f"{name}.json").read_text())
    model = models.get(name)  # torchvision's defaults: 1000 classes, 224 x 224
    net = to_torch(model, device="meta")  # the structure only: no memory for the weights
    ours = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in net.state_dict().items()]
    theirs = [(e["key"], e["shape"], e["dtype"]) for e in fixture["state_dict"]]
    assert ours == theirs
    assert sum(p.numel() for p in net.parameters()) == fixture["num_parameters"]
    # a state dict shaped like torchvision's file loads with every key checked (np.zeros costs no time)
    weights = {e["key"]: np.zeros(e["shape"], dtype=e["dtype"]) for e in fixture["state_dict"]}
    load_torch_weights(model, weights)
    assert not model.get(fixture["state_dict"][0]["key"].rsplit(".", 1)[0]).weight.data.any()
