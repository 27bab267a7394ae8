"""The importer's choice of layer for activations, PRelu and Resize (a public layer wherever one computes
the operator), and its ONNX-semantics stand-ins for the rest: float64 numeric gradients, PyTorch parity,
and their errors."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit import layers as L
from cnnkit.errors import ShapeError
from cnnkit.gradcheck import gradcheck
from cnnkit.interop import _onnx_layers as O
from cnnkit.interop._onnx_layers import OnnxActivation, OnnxPRelu, OnnxResize
from conftest import assert_parity

LAYERS = [
    ("selu", lambda: OnnxActivation("Selu", 2.0, 3.0), (2, 3, 4, 4)),
    ("hardsigmoid", lambda: OnnxActivation("HardSigmoid", 0.2, 0.5), (2, 3, 4, 4)),
    ("clip", lambda: OnnxActivation("Clip", -0.5, 0.7), (2, 3, 4, 4)),
    ("prelu", lambda: OnnxPRelu((3, 1, 1), value=[[[0.1]], [[0.2]], [[-0.3]]]), (2, 3, 4, 4)),
    ("nearest", lambda: OnnxResize(scales=(2.0, 1.5), mode="nearest"), (2, 3, 3, 4)),
    ("linear_half_pixel", lambda: OnnxResize(scales=(2.0, 2.0), mode="linear", transform="half_pixel"),
     (1, 2, 3, 4)),
    ("linear_align_corners", lambda: OnnxResize(sizes=(5, 7), mode="linear", transform="align_corners"),
     (1, 2, 3, 4)),
]


@pytest.mark.parametrize("name, make, shape", LAYERS, ids=[case[0] for case in LAYERS])
def test_numeric_gradients(name, make, shape, rng):
    x = rng.standard_normal(shape) * 2
    if name in ("hardsigmoid", "clip"):  # keep away from the kinks, where f' jumps
        x = np.where(np.abs(x - np.round(x * 2) / 2) < 0.05, x + 0.1, x)
    assert max(gradcheck(make(), x, seed=7).values()) < 1e-6


@pytest.mark.parametrize("name, make, shape", LAYERS, ids=[case[0] for case in LAYERS])
def test_parity_with_pytorch(name, make, shape, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal(shape).astype(np.float32)
    layer = make()
    reference = {
        "selu": lambda t: 3.0 * torch.where(t > 0, t, 2.0 * torch.expm1(t)),
        "hardsigmoid": lambda t: torch.clamp(0.2 * t + 0.5, 0, 1),
        "clip": lambda t: torch.clamp(t, -0.5, 0.7),
        "prelu": lambda t: F.prelu(t, torch.tensor([0.1, 0.2, -0.3])),
        "nearest": lambda t: F.interpolate(t, scale_factor=(2.0, 1.5), mode="nearest"),
        "linear_half_pixel": lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False),
        "linear_align_corners": lambda t: F.interpolate(t, size=(5, 7), mode="bilinear", align_corners=True),
    }[name]
    xt = torch.from_numpy(x).requires_grad_()
    yt = reference(xt)
    dy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.from_numpy(dy))
    assert_parity(layer.forward(x), yt, what=f"{name} forward")
    assert_parity(layer.backward(dy), xt.grad, what=f"{name} backward")


# -- which layer an ONNX node becomes ---------------------------------------------------------------------

@pytest.mark.parametrize("op, alpha, beta, expected", [
    ("Selu", None, None, L.SELU()), ("Selu", np.float32(1.6732632), np.float32(1.0507010), L.SELU()),
    ("Selu", 2.0, 3.0, None),
    ("HardSigmoid", np.float32(1 / 6), 0.5, L.Hardsigmoid()), ("HardSigmoid", None, None, None),  # 0.2
    ("Clip", 0.0, 6.0, L.ReLU6()), ("Clip", 0.0, np.inf, L.ReLU()),
    ("Clip", -1.0, 2.0, L.Hardtanh(-1.0, 2.0)),
    ("Clip", -np.inf, 2.0, None), ("Clip", 1.0, 0.0, None),  # min > max: every value becomes max
])
def test_activations_become_public_layers_where_one_computes_them(op, alpha, beta, expected, rng):
    layer = O.activation(op, alpha, beta)
    x = rng.standard_normal((2, 3, 5)).astype(np.float32) * 4
    if expected is None:
        assert isinstance(layer, OnnxActivation)
        return
    assert repr(layer) == repr(expected) and layer.config() == expected.config()
    a = {"Selu": 1.6732632423543772, "HardSigmoid": 1 / 6}.get(op, alpha)
    b = {"Selu": 1.0507009873554805, "HardSigmoid": 0.5}.get(op, beta)
    np.testing.assert_allclose(layer.forward(x), OnnxActivation(op, a, b).forward(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("slope_shape, input_shape, expected", [
    ((1,), (2, 3, 4, 4), "PReLU()"), ((), (2, 3), "PReLU()"), ((1, 1, 1), (2, 3, 4, 4), "PReLU()"),
    ((3, 1, 1), (2, 3, 4, 4), "PReLU(num_parameters=3)"),
    ((1, 3, 1, 1), (2, 3, 4, 4), "PReLU(num_parameters=3)"),
    ((3,), (2, 3), "PReLU(num_parameters=3)"), ((3, 1), (2, 3, 5), "PReLU(num_parameters=3)"),
    ((5,), (2, 4, 5), "OnnxPRelu(slope_shape=(5,))"),  # a slope per position of the last axis
    ((3, 4, 4), (2, 3, 4, 4), "OnnxPRelu(slope_shape=(3, 4, 4))"),  # Keras' default: one per position
])
def test_prelu_is_the_public_layer_for_one_slope_or_one_per_channel(slope_shape, input_shape, expected, rng):
    slope = rng.standard_normal(slope_shape).astype(np.float32)
    layer = O.prelu(slope, input_shape)
    assert repr(layer) == expected
    x = rng.standard_normal(input_shape).astype(np.float32)
    np.testing.assert_array_equal(layer.forward(x), np.where(x > 0, x, slope * x))


@pytest.mark.parametrize("spatial, given, mode, transform, nearest_mode, expected", [
    ((3, 4), {"scales": (1.5, 2.0)}, "nearest", "asymmetric", "floor", "nearest"),
    ((3, 4), {"scales": (1.5, 2.5)}, "nearest", "half_pixel", "round_prefer_ceil", "nearest-exact"),
    ((3, 3), {"sizes": (4, 4)}, "nearest", "half_pixel", "round_prefer_floor", "nearest-exact"),  # no tie
    ((3, 4), {"scales": (1.5, 2.5)}, "nearest", "tf_half_pixel_for_nn", "floor", "nearest-exact"),
    ((3, 4), {"sizes": (5, 7)}, "linear", "half_pixel", "round_prefer_floor", "bilinear"),
    ((3, 4), {"sizes": (5, 7)}, "linear", "align_corners", "round_prefer_floor", "bilinear, align"),
    ((6,), {"scales": (0.5,)}, "linear", "pytorch_half_pixel", "floor", "linear"),
    ((2, 2, 2), {"scales": (2.0, 2.0, 2.0)}, "linear", "half_pixel", "floor", "trilinear"),
    ((4,), {"sizes": (1,)}, "linear", "pytorch_half_pixel", "floor", "linear, align"),  # the first input
    # no Upsample mode samples these positions: ONNX's rule, exactly
    ((3, 4), {"sizes": (2, 3)}, "nearest", "half_pixel", "round_prefer_floor", None),  # a tie, rounded down
    ((3, 4), {"scales": (2.0, 2.0)}, "nearest", "asymmetric", "round_prefer_ceil", None),
    ((3, 4), {"scales": (2.0, 2.0)}, "linear", "asymmetric", "floor", None),
    ((2, 4), {"scales": (0.6, 0.6)}, "linear", "align_corners", "floor", None),  # ONNX divides by 2.4 - 1
])
def test_resize_is_upsample_where_one_of_its_modes_samples_onnxs_positions(spatial, given, mode, transform,
                                                                             nearest_mode, expected, rng):
    layer = O.resize(spatial, **given, mode=mode, transform=transform, nearest_mode=nearest_mode)
    exact = OnnxResize(**given, mode=mode, transform=transform, nearest_mode=nearest_mode)
    if expected is None:
        assert type(layer) is OnnxResize
        return
    assert isinstance(layer, L.Upsample) and layer.mode == expected.split(",")[0]
    assert layer.align_corners == (True if "align" in expected else None if "nearest" in expected else False)
    x = rng.standard_normal((2, 3, *spatial)).astype(np.float32)
    np.testing.assert_allclose(layer.forward(x), exact.forward(x), rtol=1e-6, atol=1e-6)
    dy = rng.standard_normal(layer.output_shape(x.shape)).astype(np.float32)
    np.testing.assert_allclose(layer.backward(dy), exact.backward(dy), rtol=1e-5, atol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="Received op='Softplus'; expected one of"):
        OnnxActivation("Softplus")  # the public Softplus computes ONNX's
    with pytest.raises(ValueError, match="give exactly one of scales and sizes"):
        OnnxResize()
    with pytest.raises(ValueError, match="Received mode='cubic'"):
        OnnxResize(scales=(2, 2), mode="cubic")
    with pytest.raises(ValueError, match="Received transform='tf_crop_and_resize'; expected one of half_"):
        OnnxResize(scales=(2, 2), transform="tf_crop_and_resize")
    with pytest.raises(ValueError, match="Received nearest_mode='round'; expected one of round_prefer_floor"):
        OnnxResize(scales=(2, 2), nearest_mode="round")
    with pytest.raises(ShapeError, match="expected 2 spatial axes"):
        OnnxResize(scales=(2, 2)).output_shape((1, 3, 4))
    with pytest.raises(ShapeError, match="does not broadcast"):
        OnnxPRelu((4, 1, 1)).output_shape((1, 3, 2, 2))
    with pytest.raises(ValueError, match=r"PRelu: Received a slope of shape \(3, 4, 5\), one per example"):
        O.prelu(np.ones((3, 4, 5)), (2, 4, 5))
    with pytest.raises(RuntimeError, match="backward was called before forward"):
        OnnxActivation("Clip", 0, 1).backward(np.zeros((1, 2)))
