"""cnnkit.interop.onnx.load on the onnx wheel's own node tests of the operators that become cnnkit's public
layers (PRelu, InstanceNormalization, LayerNormalization, HardSwish, HardSigmoid, Selu, Softplus, Clip,
LogSoftmax, Resize, Upsample): each single-node model, run on its stored input, gives its stored output.

The wheel ships the makers of ``onnx/backend/test/data/node`` (``onnx.backend.test.case.node``: each
module builds its models and computes their outputs when imported) rather than the folder; the cases are
the same. Two adaptations, the same for every case: the inputs after the first (a slope, a scale, Resize's
scales or sizes) become initializers with their stored values, since cnnkit builds its layers' weights at
load time; and only the first output is compared (LayerNormalization's Mean and InvStdDev are statistics
cnnkit's LayerNorm does not return).
"""

from __future__ import annotations

import copy
import functools
import importlib

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import numpy_helper  # noqa: E402

from cnnkit.interop.onnx import load  # noqa: E402
from cnnkit.interop.onnx_import import OnnxImportError  # noqa: E402

CASE_MODULES = ("prelu", "instance_normalization", "layernormalization", "hardswish", "hardsigmoid", "selu",
                "softplus", "clip", "logsoftmax", "resize", "upsample")
OPERATORS = {"PRelu", "InstanceNormalization", "LayerNormalization", "HardSwish", "HardSigmoid", "Selu",
             "Softplus", "Clip", "LogSoftmax", "Resize", "Upsample"}

# case -> the layer the node becomes: a public layer wherever one computes the operator
BUILT = {
    "test_prelu_broadcast": "OnnxPRelu",  # a slope per position of the last axis, not per channel
    "test_instancenorm_example": "InstanceNorm2d", "test_instancenorm_epsilon": "InstanceNorm2d",
    **{f"test_layer_normalization_{case}": "LayerNorm" for case in (
        "4d_axis1", "4d_axis_negative_3", "4d_axis2", "4d_axis_negative_2", "4d_axis3", "4d_axis_negative_1",
        "default_axis", "2d_axis1", "2d_axis_negative_1", "3d_axis1_epsilon", "3d_axis_negative_2_epsilon",
        "3d_axis2_epsilon", "3d_axis_negative_1_epsilon")},
    "test_hardswish": "Hardswish",
    # ONNX's default alpha is 0.2 (Keras'), not PyTorch's 1/6: no public layer
    "test_hardsigmoid_example": "OnnxActivation", "test_hardsigmoid": "OnnxActivation",
    "test_hardsigmoid_default": "OnnxActivation",
    "test_selu_default": "SELU", "test_selu_example": "OnnxActivation", "test_selu": "OnnxActivation",
    "test_softplus_example": "Softplus", "test_softplus": "Softplus",
    **{f"test_clip{case}": "Hardtanh" for case in (
        "_example", "", "_inbounds", "_outbounds", "_splitbounds")},
    "test_clip_default_min": "ReLU", "test_clip_min_greater_than_max": "OnnxActivation",
    "test_clip_default_max": "OnnxActivation", "test_clip_default_inbounds": "OnnxActivation",
    **{f"test_logsoftmax_{case}": "LogSoftmax" for case in (
        "example_1", "large_number", "axis_1", "axis_2", "negative_axis", "default_axis")},
    **{f"test_resize_{case}": "Upsample" for case in (
        "upsample_scales_nearest", "downsample_scales_nearest", "upsample_sizes_nearest",
        "upsample_scales_linear", "upsample_scales_linear_align_corners", "downsample_scales_linear",
        "upsample_scales_nearest_axes_2_3", "upsample_scales_nearest_axes_3_2",
        "upsample_sizes_nearest_axes_2_3", "upsample_sizes_nearest_axes_3_2")},
    "test_upsample_nearest": "Upsample",
    # coordinate rules no Upsample mode has (a tie rounded down; align_corners on an unfloored 2.4; ...)
    **{f"test_resize_{case}": "OnnxResize" for case in (
        "downsample_sizes_nearest", "downsample_scales_linear_align_corners",
        "downsample_sizes_linear_pytorch_half_pixel", "upsample_sizes_nearest_floor_align_corners",
        "upsample_sizes_nearest_round_prefer_ceil_asymmetric", "upsample_sizes_nearest_ceil_half_pixel",
        "downsample_scales_linear_half_pixel_symmetric", "upsample_scales_linear_half_pixel_symmetric")},
}

# case -> the error it gets: what a cnnkit network cannot be, said before anything runs
_BATCH_AXIS = "normalizes over the batch axis"
REFUSED = {
    "test_prelu_example": r"PRelu: Received a slope of shape \(3, 4, 5\), one per example",
    "test_logsoftmax_axis_0": _BATCH_AXIS,
    **{f"test_layer_normalization_{case}": _BATCH_AXIS for case in (
        "4d_axis0", "4d_axis_negative_4", "2d_axis0", "2d_axis_negative_2", "3d_axis0_epsilon",
        "3d_axis_negative_3_epsilon")},
    **{f"test_resize_{case}": "Resize with mode='cubic'" for case in (
        "upsample_scales_cubic", "upsample_scales_cubic_align_corners", "downsample_scales_cubic",
        "downsample_scales_cubic_align_corners", "upsample_sizes_cubic", "downsample_sizes_cubic",
        "upsample_scales_cubic_A_n0p5_exclude_outside", "downsample_scales_cubic_A_n0p5_exclude_outside",
        "upsample_scales_cubic_asymmetric", "downsample_scales_cubic_antialias",
        "downsample_sizes_cubic_antialias")},
    **{f"test_resize_{case}": "coordinate_transformation_mode='tf_crop_and_resize'" for case in (
        "tf_crop_and_resize", "tf_crop_and_resize_extrapolation_value", "tf_crop_and_resize_axes_2_3",
        "tf_crop_and_resize_axes_3_2")},
    "test_resize_downsample_scales_linear_antialias": "antialias=1",
    "test_resize_downsample_sizes_linear_antialias": "antialias=1",
    **{f"test_resize_{case}": "keep_aspect_ratio_policy" for case in (
        "upsample_sizes_nearest_not_larger", "upsample_sizes_nearest_not_smaller",
        "downsample_sizes_nearest_not_larger", "downsample_sizes_nearest_not_smaller")},
}
# int8 data: the model loads, and forward asks for floating-point input, as every cnnkit layer does
INTEGER_INPUT = {f"test_clip_default_int8_{case}" for case in ("min", "max", "inbounds")}


@functools.cache
def cases():
    """The single-node cases of OPERATORS, by name: importing a maker module records its cases."""
    from onnx.backend.test.case import node

    for name in CASE_MODULES:
        importlib.import_module(f"onnx.backend.test.case.node.{name}")
    return {c.name: c for c in node._NodeTestCases
            if len(c.model.graph.node) == 1 and c.model.graph.node[0].op_type in OPERATORS}


def as_cnnkit_reads_it(case):
    """The case's model with its inputs after the first as initializers and its first output only."""
    model = copy.deepcopy(case.model)
    inputs = case.data_sets[0][0]
    for value_info, value in list(zip(model.graph.input, inputs, strict=True))[1:]:
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(value), value_info.name))
    del model.graph.input[1:]
    del model.graph.output[1:]
    node = model.graph.node[0]
    node.output[1:] = [""] * (len(node.output) - 1)
    return model.SerializeToString()


def check(case):
    net = load(as_cnnkit_reads_it(case))
    (x, *_), (expected, *_) = case.data_sets[0]
    y = net.forward(x)
    assert y.dtype == expected.dtype
    np.testing.assert_allclose(y, expected, rtol=case.rtol, atol=max(case.atol, 1e-6))
    return net


@pytest.mark.parametrize("name", sorted(BUILT))
def test_node_cases_match_their_stored_outputs(name):
    net = check(cases()[name])
    assert {type(layer).__name__ for layer in net.layers() if not layer.named_children()} == {BUILT[name]}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_node_cases_cnnkit_cannot_build_are_refused_with_one_clear_error(name):
    with pytest.raises(OnnxImportError, match=REFUSED[name]):
        load(as_cnnkit_reads_it(cases()[name]))


@pytest.mark.parametrize("name", sorted(INTEGER_INPUT))
def test_integer_data_is_refused_by_the_first_layer(name):
    case = cases()[name]
    with pytest.raises(TypeError, match="expected a floating-point array, received dtype int8"):
        load(as_cnnkit_reads_it(case)).forward(case.data_sets[0][0][0])


def test_cases_this_file_does_not_list_load_and_match_or_are_refused():
    # a newer onnx wheel may add cases: each must still match its output or be refused by load
    for name, case in cases().items():
        if name in BUILT or name in REFUSED or name in INTEGER_INPUT:
            continue
        try:
            check(case)
        except OnnxImportError:
            pass


# -- a network of these operators: import, train a step, export, run in onnxruntime ------------------------

def _network_of_these_operators(rng):
    """Conv, InstanceNormalization, PRelu per channel, nearest Resize x2, HardSwish, strided Conv,
    HardSigmoid (PyTorch's 1/6), linear Resize / 2, Selu, LayerNormalization over (C, H, W), HardSigmoid
    (Keras' 0.2: the one stand-in), Softplus, Clip, global pooling, Gemm, LogSoftmax; opset 17."""
    from onnx import TensorProto, helper

    def weight(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.5, name)

    def ints(name, values, dtype=np.float32):
        return numpy_helper.from_array(np.asarray(values, dtype), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),  # (a bias would be normalized away)
        helper.make_node("InstanceNormalization", ["c1", "in_scale", "in_bias"], ["n1"], epsilon=1e-3),
        helper.make_node("PRelu", ["n1", "slope"], ["p1"]),
        helper.make_node("Resize", ["p1", "", "up"], ["r1"], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("HardSwish", ["r1"], ["h1"]),
        helper.make_node("Conv", ["h1", "w2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("HardSigmoid", ["c2"], ["s1"], alpha=1 / 6, beta=0.5),
        helper.make_node("Resize", ["s1", "", "down"], ["r2"], mode="linear",
                         coordinate_transformation_mode="half_pixel"),
        helper.make_node("Selu", ["r2"], ["e1"]),
        helper.make_node("LayerNormalization", ["e1", "ln_scale", "ln_bias"], ["l1"], axis=1),
        helper.make_node("HardSigmoid", ["l1"], ["s2"], alpha=0.2, beta=0.5),
        helper.make_node("Softplus", ["s2"], ["t1"]),
        helper.make_node("Clip", ["t1", "low", "high"], ["k1"]),
        helper.make_node("GlobalAveragePool", ["k1"], ["g1"]),
        helper.make_node("Flatten", ["g1"], ["f1"]),
        helper.make_node("Gemm", ["f1", "fc", "fc_bias"], ["z"], transB=1),
        helper.make_node("LogSoftmax", ["z"], ["y"], axis=1),
    ]
    initializers = [weight("w1", 4, 3, 3, 3), weight("in_scale", 4), weight("in_bias", 4),
                    weight("slope", 4, 1, 1), ints("up", [1, 1, 2, 2]), weight("w2", 4, 4, 3, 3),
                    ints("down", [1, 1, 0.5, 0.5]), weight("ln_scale", 4, 4, 4), weight("ln_bias", 4, 4, 4),
                    ints("low", -1.0), ints("high", 1.0), weight("fc", 5, 4), weight("fc_bias", 5)]
    graph = helper.make_graph(nodes, "these_operators",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_network_of_these_operators_trains_saves_and_exports_as_public_layers(tmp_path, rng):
    ort = pytest.importorskip("onnxruntime")
    import cnnkit as ck
    from cnnkit.interop.onnx import export, run
    from cnnkit.optim import SGD

    model = _network_of_these_operators(rng)
    x = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    net = load(model.SerializeToString())
    np.testing.assert_allclose(net.forward(x), session.run(None, {"x": x})[0], rtol=1e-4, atol=1e-5)
    leaves = [type(layer) for layer in net.layers() if not layer.named_children()]
    assert [cls.__name__ for cls in leaves if not cls.__module__.startswith("cnnkit.layers.")] == \
        ["OnnxActivation"]  # HardSigmoid with alpha=0.2; every other node is a layer users know
    assert {"InstanceNorm2d", "PReLU", "Upsample", "Hardswish", "Hardsigmoid", "SELU", "LayerNorm",
            "Softplus", "Hardtanh", "LogSoftmax"} <= {cls.__name__ for cls in leaves}

    net.train()  # one step of SGD on every parameter
    before = {name: p.data.copy() for name, p in net.named_parameters()}
    net.backward(rng.standard_normal(net.forward(x).shape).astype(np.float32))
    SGD(net.parameters(), lr=0.1).step()
    assert all(not np.array_equal(p.data, before[name]) for name, p in net.named_parameters())

    net.eval()
    y = net.forward(x)
    export(net, tmp_path / "trained.onnx", (3, 8, 8))
    np.testing.assert_allclose(run(tmp_path / "trained.onnx", x), y, rtol=1e-4, atol=1e-5)
    ck.save(net, tmp_path / "trained.npz")
    np.testing.assert_array_equal(ck.load(tmp_path / "trained.npz").forward(x), y)
