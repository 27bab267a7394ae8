"""cnnkit.interop.torch: every layer type to torch and back, training parity, loading weights from every
kind of source, and the errors for weights or modules that do not fit."""

from __future__ import annotations

import sys
from collections import OrderedDict

import numpy as np
import pytest
from interop_helpers import case_input, layer_cases, randomize_batch_norms, small_zoo_model

from cnnkit import layers as L
from cnnkit.interop.safetensors import save_file
from cnnkit.interop.torch import StateDictMismatch, from_torch, load_torch_weights, to_torch
from conftest import assert_parity

torch = pytest.importorskip("torch")
nn = torch.nn
CASES = layer_cases()


@pytest.mark.parametrize("model, shape", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_layer_type_converts_both_ways(model, shape, rng):
    x = case_input(shape, rng)
    y = model.forward(x)
    net = to_torch(model).eval()
    assert list(net.state_dict()) == list(model.state_dict())
    with torch.no_grad():
        assert_parity(net(torch.from_numpy(x)).numpy(), y, tol=1e-5)
    back = from_torch(net).eval()
    assert [k for k, _ in back.named_layers()] == [k for k, _ in net.named_modules()]
    np.testing.assert_allclose(back.forward(x), y, rtol=0, atol=1e-6 * np.abs(y).max())


def test_training_moves_to_torch_with_the_same_gradients(rng):
    """Batch statistics in training mode, and every parameter's gradient, agree with cnnkit's backward."""
    # no bias before the batch norm: its gradient is zero in exact arithmetic, so only rounding noise
    model = L.Sequential(L.Conv2d(3, 6, 3, stride=2, padding=1, bias=False, rng=rng), L.BatchNorm2d(6),
                         L.ReLU(), L.MaxPool2d(2, fit="pad"), L.Flatten(),
                         L.Linear(6 * 3 * 3, 4, rng=rng)).train()
    x = case_input((4, 3, 11, 11), rng)
    net = to_torch(model)
    assert net.training
    y = model.forward(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    model.backward(dy)
    yt = net(torch.from_numpy(x))
    (yt * torch.from_numpy(dy)).sum().backward()
    assert_parity(y, yt.detach().numpy())
    grads = dict(net.named_parameters())
    for name, p in model.named_parameters():
        assert_parity(p.grad, grads[name].grad.numpy(), what=name)


def test_to_torch_on_meta_has_structure_but_no_weights(rng):
    net = to_torch(L.Sequential(L.Conv2d(3, 4, 3, rng=rng)), device="meta")
    assert net[0].weight.is_meta and tuple(net[0].weight.shape) == (4, 3, 3, 3)


def test_to_torch_names_every_layer_it_cannot_convert():
    class Gelu(L.Layer):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match=r"no torch counterpart for 1 \(Gelu\), 2\.0 \(Gelu\)"):
        to_torch(L.Sequential(L.ReLU(), Gelu(), L.Sequential(Gelu())))


def test_from_torch_reads_a_hand_written_torch_network(rng):
    net = nn.Sequential(OrderedDict(
        conv=nn.Conv2d(3, 8, 3, padding=1), bn=nn.BatchNorm2d(8), relu=nn.ReLU(inplace=True),
        pool=nn.MaxPool2d(2, ceil_mode=True),
        avg=nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        head=nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Dropout(0.2), nn.Linear(8, 5)),
    ))
    with torch.no_grad():
        net.bn.running_mean.normal_(0, 0.1)
        net.bn.running_var.uniform_(0.5, 1.5)
    net.eval()
    model = from_torch(net)
    assert not model.training
    assert isinstance(model["pool"], L.MaxPool2d) and model["pool"].fit == "pad"
    assert model["conv"].fit == "crop"  # torch rounds down
    assert list(model.state_dict()) == list(net.state_dict())
    x = case_input((2, 3, 11, 11), rng)
    with torch.no_grad():
        assert_parity(model.forward(x), net(torch.from_numpy(x)), tol=1e-5)


def test_from_torch_accepts_sequential_subclasses_that_keep_its_forward(rng):
    class ConvNormActivation(nn.Sequential):  # like torchvision.ops.Conv2dNormActivation
        def __init__(self):
            super().__init__(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU6())

    class Shortcut(nn.Sequential):  # overrides forward: cnnkit cannot know what it does
        def forward(self, x):
            return x + super().forward(x)

    net = nn.Sequential(ConvNormActivation(), nn.Flatten()).eval()
    x = case_input((2, 3, 5, 5), rng)
    with torch.no_grad():
        assert_parity(from_torch(net).forward(x), net(torch.from_numpy(x)), tol=1e-5)
    with pytest.raises(TypeError, match=r"cannot convert 0 \(.*Shortcut\)"):
        from_torch(nn.Sequential(Shortcut(nn.ReLU())))


def test_from_torch_lists_every_module_it_cannot_convert():
    class Custom(nn.Module):
        def forward(self, x):
            return x

    # (adaptive pools, return_indices, conv padding modes and GELU and its kin convert since issue 14)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanhshrink(), nn.Sequential(nn.Dropout2d(0.5)),
                        nn.FractionalMaxPool2d(2, output_size=3), Custom())
    with pytest.raises(TypeError) as info:
        from_torch(net)
    message = str(info.value)
    for expected in ["1 (torch.nn.modules.activation.Tanhshrink)",
                     "2.0 (torch.nn.modules.dropout.Dropout2d)",
                     "3 (torch.nn.modules.pooling.FractionalMaxPool2d)", "test_torch.Custom)",
                     "custom module's forward cannot be read"]:
        assert expected in message


# -- load_torch_weights ----------------------------------------------------------------------------------

@pytest.fixture
def resnet(rng):
    model, shape = small_zoo_model("resnet18", rng)
    return model, shape, to_torch(model).state_dict()


def _fresh_resnet(shape):
    from cnnkit import models

    return models.get("resnet18", num_classes=10, input_shape=shape, rng=np.random.default_rng(5)).eval()


def _assert_same_weights(a, b):
    sb = b.state_dict()
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(sb[key], value, err_msg=key)


def test_loads_a_pt_file_written_by_torch_save(resnet, tmp_path):
    model, shape, state = resnet
    torch.save(state, tmp_path / "resnet18.pth")
    loaded = load_torch_weights(_fresh_resnet(shape), tmp_path / "resnet18.pth")
    _assert_same_weights(model, loaded)
    assert loaded.get("bn1").num_batches_tracked.dtype == np.int64


def test_loads_a_checkpoint_wrapper_and_data_parallel_prefixes(resnet, tmp_path):
    model, shape, state = resnet
    wrapped = {"epoch": 3, "state_dict": OrderedDict((f"module.{k}", v) for k, v in state.items())}
    torch.save(wrapped, tmp_path / "checkpoint.pt")
    _assert_same_weights(model, load_torch_weights(_fresh_resnet(shape), str(tmp_path / "checkpoint.pt")))


def test_loads_safetensors_without_torch(resnet, tmp_path, monkeypatch):
    model, shape, state = resnet
    st_torch = pytest.importorskip("safetensors.torch")
    st_torch.save_file(dict(state), tmp_path / "reference.safetensors")  # written by the reference library
    save_file({k: v.numpy() for k, v in state.items()}, tmp_path / "ours.safetensors")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    for name in ["reference.safetensors", "ours.safetensors"]:
        _assert_same_weights(model, load_torch_weights(_fresh_resnet(shape), tmp_path / name))


def test_a_pt_file_without_torch_names_the_extra(resnet, tmp_path, monkeypatch):
    _, shape, state = resnet
    torch.save(state, tmp_path / "w.pt")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r'pip install "cnnkit\[torch\]"'):
        load_torch_weights(_fresh_resnet(shape), tmp_path / "w.pt")


class Payload:
    """Any class: unpickling it would run code chosen by the file's author."""


def test_pickled_objects_that_are_not_tensors_are_refused(tmp_path):
    torch.save({"weight": torch.zeros(2), "payload": Payload()}, tmp_path / "payload.pt")
    torch.save(nn.Linear(2, 2), tmp_path / "module.pt")  # a whole module, not a state dict
    for name in ["payload.pt", "module.pt"]:
        with pytest.raises(ValueError, match=r"weights_only=True.*pickled objects other than tensors"):
            load_torch_weights(L.Linear(2, 2), tmp_path / name)


def test_every_problem_is_listed_in_one_error_and_nothing_is_loaded(resnet):
    _, shape, state = resnet
    state = OrderedDict(state)
    del state["layer1.0.conv1.weight"], state["bn1.running_var"]
    state["fc.weight"] = torch.zeros(1000, 512)
    state["fc.extra"] = torch.zeros(1)
    state["aux.weight"] = torch.zeros(1)
    model = _fresh_resnet(shape)
    before = model.get("fc").weight.data.copy()
    with pytest.raises(StateDictMismatch, match="5 problems; nothing was loaded") as info:
        load_torch_weights(model, state)
    error = info.value
    assert error.missing == ["bn1.running_var", "layer1.0.conv1.weight"]
    assert error.unexpected == ["fc.extra", "aux.weight"]
    assert error.mismatched == [("fc.weight", (10, 512), (1000, 512))]
    assert "shape of fc.weight: model (10, 512), weights (1000, 512)" in str(error)
    np.testing.assert_array_equal(model.get("fc").weight.data, before)


def test_a_wrong_head_alone_suggests_replace_head(resnet):
    _, shape, state = resnet
    state = OrderedDict(state)
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    with pytest.raises(StateDictMismatch, match="replace_head"):
        load_torch_weights(_fresh_resnet(shape), state)


def test_non_strict_loading_skips_absent_keys_but_still_checks_shapes(rng):
    model = L.Sequential(L.Conv2d(1, 2, 3, rng=rng), L.BatchNorm2d(2))
    state = {"0.weight": np.ones((2, 1, 3, 3)), "other": np.zeros(3)}
    loaded = load_torch_weights(model, state, strict=False)
    assert loaded[0].weight.data.sum() == 18 and loaded[0].weight.data.dtype == np.float32
    with pytest.raises(StateDictMismatch, match=r"shape of 0.bias: model \(2,\), weights \(3,\)"):
        load_torch_weights(model, {"0.bias": np.zeros(3)}, strict=False)


def test_bfloat16_and_float64_tensors_are_cast_to_the_model_dtype(rng):
    model = L.Linear(3, 2, rng=rng)
    weight = torch.arange(6, dtype=torch.bfloat16).reshape(2, 3)
    load_torch_weights(model, {"weight": weight, "bias": torch.ones(2, dtype=torch.float64)})
    assert model.weight.data.dtype == np.float32
    np.testing.assert_array_equal(model.weight.data, np.arange(6).reshape(2, 3))


def test_bad_sources_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_torch_weights(L.Linear(2, 2), tmp_path / "missing.pt")
    with pytest.raises(TypeError, match="expected a state dict or a file path, received list"):
        load_torch_weights(L.Linear(2, 2), [1, 2])
    with pytest.raises(TypeError, match="entry 'weight' is a str"):
        load_torch_weights(L.Linear(2, 2), {"weight": "zeros"})


def test_batch_norm_randomization_is_visible_to_the_comparison(rng):
    # guard for the helpers above: a model whose batch norms are still identity would hide mistakes
    model = randomize_batch_norms(L.Sequential(L.BatchNorm2d(3)), rng)
    assert not np.allclose(model[0].running_var, 1.0)
