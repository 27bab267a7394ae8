"""cnnkit.fuse: batch norm folded into the convolution before it computes what the eval-mode model does."""

from __future__ import annotations

import numpy as np
import pytest

import cnnkit as ck
from cnnkit import layers as L
from cnnkit.fuse import fold_batch_norm, foldable
from cnnkit.layers import Graph, from_config
from cnnkit.layers.norm import _BatchNorm
from cnnkit.models import registry


def rng():
    return np.random.default_rng(0)


def randomize_batch_norms(model, seed=1):
    """Running statistics and affine parameters away from their identity defaults, as after training."""
    r = np.random.default_rng(seed)
    for layer in model.layers():
        if isinstance(layer, _BatchNorm) and layer.track_running_stats:
            C = layer.num_features
            layer.running_mean[...] = r.normal(0, 0.5, C)
            layer.running_var[...] = r.uniform(0.5, 2.0, C)
            if layer.weight is not None:
                layer.weight.data[...] = r.uniform(0.5, 1.5, C)
                layer.bias.data[...] = r.normal(0, 0.2, C)
    return model


def batch_norms(model):
    return [name for name, layer in model.named_layers() if isinstance(layer, _BatchNorm)]


def assert_same_function(model, fused, x):
    expected = model.eval().forward(x)
    y = fused.forward(x)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5 * scale)
    return y


ZOO = {  # the zoo's models with batch norm, small enough to run at 32 x 32
    "resnet18": {}, "resnet50": {}, "mobilenet_v1": {}, "mobilenet_v2": {}, "googlenet": {},
    "preact_resnet18": {}, "vgg11_bn": {"avgpool_size": None},
}


@pytest.mark.parametrize("name", ZOO)
def test_zoo_models_fused_equal_eval_mode(name):
    model = randomize_batch_norms(registry.get(name, num_classes=10, input_shape=(3, 32, 32), rng=rng(),
                                               **ZOO[name]))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    fused = ck.fuse(model)
    x = rng().standard_normal((2, 3, 32, 32)).astype(np.float32)
    assert_same_function(model, fused, x)
    left = batch_norms(fused)
    if name == "preact_resnet18":  # batch norm before its convolution (after a ReLU): nothing to fold into
        assert 0 < len(left) < len(batch_norms(model))
    else:
        assert left == [], left
    for key, value in model.state_dict().items():  # the model itself is untouched
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    assert not fused.training and fused.num_parameters() < model.num_parameters()


def test_fused_model_rebuilds_from_its_config_and_runs_under_no_grad():
    model = randomize_batch_norms(L.Sequential(L.Conv2d(3, 4, 3, bias=False, rng=rng()), L.BatchNorm2d(4),
                                               L.ReLU(), L.Conv2d(4, 2, 1, rng=rng()),
                                               L.BatchNorm2d(2, affine=False)))
    fused = ck.fuse(model)
    assert [type(layer).__name__ for layer in fused] == ["Conv2d", "ReLU", "Conv2d"]
    rebuilt = from_config(fused.config())
    rebuilt.load_state_dict(fused.state_dict())
    x = rng().standard_normal((2, 3, 6, 6)).astype(np.float32)
    y = assert_same_function(model, fused, x)
    with ck.no_grad():
        np.testing.assert_array_equal(rebuilt.forward(x), y)


@pytest.mark.parametrize("conv, norm, shape", [
    (lambda: L.Conv1d(3, 4, 3, rng=rng()), lambda: L.BatchNorm1d(4), (2, 3, 9)),
    (lambda: L.Conv2d(4, 4, 3, groups=4, padding=1, rng=rng()), lambda: L.BatchNorm2d(4), (2, 4, 6, 6)),
    (lambda: L.Conv2d(3, 4, 3, stride=2, dilation=2, rng=rng()), lambda: L.BatchNorm2d(4), (2, 3, 11, 11)),
    (lambda: L.Conv3d(2, 3, 2, rng=rng()), lambda: getattr(L, "BatchNorm3d", lambda channels: None)(3),
     (2, 2, 4, 4, 4)),
])
def test_fold_each_convolution(conv, norm, shape):
    if norm() is None:
        pytest.skip("no BatchNorm3d")
    model = randomize_batch_norms(L.Sequential(conv(), norm()))
    fused = ck.fuse(model)
    assert len(fused) == 1
    assert_same_function(model, fused, rng().standard_normal(shape).astype(np.float32))


def test_float64_model_folds_exactly():
    model = randomize_batch_norms(L.Sequential(L.Conv2d(3, 4, 3, rng=rng()), L.BatchNorm2d(4)))
    model.astype(np.float64)
    fused = ck.fuse(model)
    assert fused[0].weight.data.dtype == np.float64
    x = rng().standard_normal((2, 3, 5, 5))
    np.testing.assert_allclose(fused.forward(x), model.eval().forward(x), rtol=1e-12, atol=1e-12)


def test_what_is_not_folded():
    conv = L.Conv2d(3, 4, 3, rng=rng())
    assert not foldable(conv, L.BatchNorm2d(4, track_running_stats=False))  # batch statistics in eval too
    assert not foldable(conv, L.BatchNorm2d(5))
    assert not foldable(conv, L.BatchNorm1d(4))
    assert not foldable(L.Linear(3, 4), L.BatchNorm1d(4))
    model = L.Sequential(L.BatchNorm2d(3), conv, L.ReLU(), L.BatchNorm2d(4), L.Concat(L.Conv2d(4, 2, 1),
                                                                                      L.BatchNorm2d(4)))
    assert batch_norms(ck.fuse(model)) == batch_norms(model)  # Concat's branches are parallel, not a chain


def test_graph_folds_only_a_convolution_read_by_its_batch_norm_alone():
    g = Graph(inputs="x")
    g.add("conv1", L.Conv2d(3, 4, 3, padding=1, rng=rng()), "x")
    g.add("bn1", L.BatchNorm2d(4), "conv1")
    g.add("conv2", L.Conv2d(4, 4, 3, padding=1, rng=rng()), "bn1")
    g.add("bn2", L.BatchNorm2d(4), "conv2")
    g.add("sum", L.Add(), ["conv2", "bn2"])  # conv2's output is read twice: bn2 cannot go
    randomize_batch_norms(g)
    fused = ck.fuse(g)
    assert type(fused.get("bn1")).__name__ == "Identity" and type(fused.get("bn2")).__name__ == "BatchNorm2d"
    assert_same_function(g, fused, rng().standard_normal((2, 3, 5, 5)).astype(np.float32))


def test_fold_batch_norm_adds_a_bias():
    conv, norm = L.Conv2d(2, 3, 1, bias=False, rng=rng()), randomize_batch_norms(L.BatchNorm2d(3))
    fold_batch_norm(conv, norm)
    assert conv.bias.shape == (3,) and conv.config()["bias"] is True


def test_fuse_refuses_what_is_not_a_layer():
    with pytest.raises(TypeError, match="fuse: expected a cnnkit Layer, received list"):
        ck.fuse([L.Conv2d(1, 1, 1)])
