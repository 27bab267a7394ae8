"""cnnkit.interop.onnx: every layer type exported and run in onnxruntime, the file's structure (dynamic batch,
initializers named by state-dict keys, opset), and the errors."""

from __future__ import annotations

import sys

import pytest
from interop_helpers import case_input, layer_cases

from cnnkit import layers as L
from cnnkit.interop.onnx import export, run, to_onnx
from conftest import assert_parity

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
CASES = layer_cases()


@pytest.mark.parametrize("model, shape", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_layer_type_runs_in_onnxruntime(model, shape, tmp_path, rng):
    x = case_input(shape, rng)
    path = tmp_path / "model.onnx"
    export(model, path, shape[1:])
    assert_parity(run(path, x), model.forward(x), tol=1e-5)


def test_batch_is_dynamic_and_weights_are_named_by_state_dict_keys(tmp_path, rng):
    model = L.Sequential(L.Conv2d(1, 4, 3, padding=1, rng=rng), L.BatchNorm2d(4), L.ReLU(),
                         L.MaxPool2d(2), L.Flatten(), L.Linear(4 * 4 * 4, 3, rng=rng)).eval()
    proto = export(model, tmp_path / "net.onnx", (1, 8, 8))
    graph = onnx.load(tmp_path / "net.onnx").graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[1:]] == [1, 8, 8]
    assert [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim[1:]] == [3]
    names = {init.name for init in graph.initializer}
    assert {k for k in model.state_dict() if not k.endswith("num_batches_tracked")} <= names
    assert proto.opset_import[0].version == 17 and proto.producer_name == "cnnkit"
    assert [n.op_type for n in graph.node] == ["Conv", "BatchNormalization", "Relu", "MaxPool", "Flatten",
                                               "Gemm", "Identity"]
    for batch in (1, 5):
        x = case_input((batch, 1, 8, 8), rng)
        assert_parity(run(tmp_path / "net.onnx", x), model.forward(x))


def test_export_uses_inference_mode_even_for_a_model_in_training(tmp_path, rng):
    model = L.Sequential(L.Dropout(0.5, rng=rng), L.BatchNorm2d(2)).train()
    export(model, tmp_path / "m.onnx", (2, 3, 3))
    x = case_input((4, 2, 3, 3), rng)
    assert_parity(run(tmp_path / "m.onnx", x), model.eval().forward(x))


def test_other_opsets_check_too(rng):
    model = L.Sequential(L.Conv2d(1, 2, 3, rng=rng), L.ReLU6(), L.GlobalAvgPool2d())
    for opset in (13, 18):
        assert to_onnx(model, (1, 5, 5), opset).opset_import[0].version == opset


def test_unsupported_layers_are_all_named(tmp_path):
    class Swish(L.Layer):
        def output_shape(self, shape):
            return shape

    with pytest.raises(TypeError, match=r"no ONNX translation for 1 \(Swish\), 2.0 \(Swish\)"):
        export(L.Sequential(L.ReLU(), Swish(), L.Sequential(Swish())), tmp_path / "x.onnx", (1, 4, 4))
    assert not (tmp_path / "x.onnx").exists()


def test_layers_that_cannot_be_exported_say_why(rng):
    with pytest.raises(TypeError, match="track_running_stats=False"):
        to_onnx(L.Sequential(L.BatchNorm2d(2, track_running_stats=False)), (2, 3, 3))
    with pytest.raises(TypeError, match="receives a 4-D input; add a Flatten"):
        to_onnx(_linear_on_volume(rng), (1, 3, 3))
    with pytest.raises(TypeError, match="flattens the batch axis"):
        to_onnx(L.Sequential(L.Flatten(start_dim=0)), (2, 3))


def _linear_on_volume(rng):
    class Anything(L.Linear):  # a Linear whose own shape check would accept a 4-D input
        def output_shape(self, shape):
            return (*shape[:-1], self.out_features)

    return L.Sequential(Anything(3, 2, rng=rng))


def test_an_input_shape_the_model_cannot_take_is_a_shape_error(rng):
    from cnnkit import ShapeError

    with pytest.raises(ShapeError, match="not an integer"):
        to_onnx(L.Sequential(L.Conv2d(1, 2, 3, stride=2, rng=rng)), (1, 8, 8))


def test_missing_onnx_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r'pip install "cnnkit\[onnx\]"'):
        export(L.Sequential(L.ReLU()), tmp_path / "x.onnx", (1, 2, 2))
