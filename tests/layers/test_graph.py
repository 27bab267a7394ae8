"""Graph and its merge nodes: numeric gradients (fan-out sums), PyTorch parity of a dense block, an SE gate
and a channel shuffle, config and state-dict round trips, repr, errors, and every tool that must accept a
Graph (summary, receptive field, check, viz.activations, transfer, save/load, to_torch, ONNX export)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.gradcheck import gradcheck
from cnnkit.layers import (
    Add,
    Concatenate,
    Constant,
    Divide,
    Graph,
    MatMul,
    Multiply,
    Permute,
    Reshape,
    Slice,
    Split,
    Subtract,
    from_config,
)
from conftest import assert_parity


def dense_se_graph(rng, growth=2):
    """A two-layer dense block (each layer reads the concatenation of all before it), a squeeze-and-
    excitation gate, a channel shuffle through Split/Reshape/Permute, and a classifier head."""
    g = Graph(inputs="x")
    # no bias before batch norm: in training its gradient is exactly 0, leaving only noise to compare
    g.add("stem", ck.Conv2d(2, 4, 3, padding=1, bias=False, rng=rng), "x")
    g.add("bn", ck.BatchNorm2d(4), "stem")
    g.add("relu", ck.ReLU(), "bn")
    g.add("dense1", ck.Conv2d(4, growth, 3, padding=1, rng=rng), "relu")
    g.add("cat1", Concatenate(), ["relu", "dense1"])
    g.add("dense2", ck.Conv2d(4 + growth, growth, 3, padding=1, rng=rng), "cat1")
    g.add("cat2", Concatenate(), ["cat1", "dense2"])          # relu fans out to dense1, cat1 (via cat2)
    c = 4 + 2 * growth
    g.add("squeeze", ck.GlobalAvgPool2d(), "cat2")
    g.add("excite", ck.Conv2d(c, c, 1, rng=rng), "squeeze")
    g.add("gate", ck.Sigmoid(), "excite")
    g.add("scaled", Multiply(), ["cat2", "gate"])             # (N, C, H, W) * (N, C, 1, 1)
    g.add("halves", Split([c // 2, c - c // 2]), "scaled")
    g.add("groups", Reshape((2, c // 4, 8, 8)), "halves:1")
    g.add("swap", Permute((0, 2, 1, 3, 4)), "groups")
    g.add("shuffled", Reshape((c // 2, 8, 8)), "swap")
    g.add("join", Concatenate(), ["halves:0", "shuffled"])
    g.add("skip", Add(), ["join", "scaled"])
    g.add("pool", ck.MaxPool2d(2), "skip")
    g.add("flat", ck.Flatten(), "pool")
    g.add("fc", ck.Linear(c * 16, 3, rng=rng), "flat")
    return g


def torch_dense_se(torch):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self, growth=2):
            super().__init__()
            c = 4 + 2 * growth
            self.c = c
            self.stem, self.bn = nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
            self.dense1 = nn.Conv2d(4, growth, 3, padding=1)
            self.dense2 = nn.Conv2d(4 + growth, growth, 3, padding=1)
            self.excite = nn.Conv2d(c, c, 1)
            self.fc = nn.Linear(c * 16, 3)

        def forward(self, x):
            r = torch.relu(self.bn(self.stem(x)))
            cat1 = torch.cat([r, self.dense1(r)], 1)
            cat2 = torch.cat([cat1, self.dense2(cat1)], 1)
            scaled = cat2 * torch.sigmoid(self.excite(cat2.mean((2, 3), keepdim=True)))
            a, b = torch.split(scaled, [self.c // 2, self.c - self.c // 2], 1)
            n = b.shape[0]
            b = b.reshape(n, 2, self.c // 4, 8, 8).permute(0, 2, 1, 3, 4).reshape(n, self.c // 2, 8, 8)
            y = torch.max_pool2d(torch.cat([a, b], 1) + scaled, 2)
            return self.fc(y.flatten(1))

    return Net()


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_numeric_gradients_through_a_graph_with_fan_out(rng, mode):
    g = dense_se_graph(rng).train(mode == "train")
    errors = gradcheck(g, rng.standard_normal((2, 2, 8, 8)))
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_parity_with_pytorch_outputs_and_every_gradient(rng, mode):
    torch = pytest.importorskip("torch")
    g = dense_se_graph(rng).train(mode == "train")
    net = torch_dense_se(torch).train(mode == "train")
    assert list(net.state_dict()) == list(g.state_dict())
    with torch.no_grad():
        for key, value in g.state_dict().items():
            net.state_dict()[key].copy_(torch.from_numpy(np.asarray(value)))
    x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    dy = rng.standard_normal((3, 3)).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_()
    yt = net(xt)
    yt.backward(torch.from_numpy(dy))
    assert_parity(g.forward(x), yt, what="output")
    assert_parity(g.backward(dy), xt.grad, what="input gradient")
    theirs = dict(net.named_parameters())
    for name, p in g.named_parameters():
        assert_parity(p.grad, theirs[name].grad, what=name)


def test_backward_params_gives_the_same_parameter_gradients(rng):
    g = dense_se_graph(rng)
    x = rng.standard_normal((2, 2, 8, 8)).astype(np.float32)
    dy = rng.standard_normal((2, 3)).astype(np.float32)
    g.forward(x)
    g.backward(dy)
    full = {n: p.grad.copy() for n, p in g.named_parameters()}
    g.zero_grad()
    g.forward(x)
    assert g.backward_params(dy) is None
    for name, p in g.named_parameters():
        np.testing.assert_allclose(p.grad, full[name], rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("merge, shapes", [
    (Add(), [(2, 3, 4, 4), (2, 3, 1, 1), (3, 1, 4)]),
    (Multiply(), [(2, 3, 4, 4), (2, 3, 1, 1)]),
    (Multiply(), [(1, 3, 1, 4), (2, 1, 5, 1)]),
    (Subtract(), [(2, 3, 4), (4,)]),
    (Divide(), [(2, 3, 4), (1, 3, 1)]),
    (MatMul(), [(2, 3, 4), (4, 5)]),
    (MatMul(), [(2, 1, 3, 4), (3, 4, 2)]),
    (Concatenate(dim=-1), [(2, 3, 2), (2, 3, 5)]),
])
def test_merge_gradients_with_broadcasting(rng, merge, shapes):
    # A graph with one input per operand, checked numerically against every input at once.
    g = Graph(inputs=[f"in{i}" for i in range(len(shapes))])
    g.add("merge", merge, g.inputs)
    xs = [rng.standard_normal(s) + (3.0 if isinstance(merge, Divide) and i else 0.0)
          for i, s in enumerate(shapes)]
    g.astype(np.float64)
    y = g.forward(xs)
    r = rng.standard_normal(y.shape)
    grads = g.backward(r)
    for i, x in enumerate(xs):
        numeric = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            old = x[index]
            x[index] = old + 1e-6
            plus = np.sum(g.forward(xs) * r)
            x[index] = old - 1e-6
            minus = np.sum(g.forward(xs) * r)
            x[index] = old
            numeric[index] = (plus - minus) / 2e-6
        assert grads[i].shape == x.shape
        np.testing.assert_allclose(grads[i], numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("layer, shape", [
    (Slice(1, None, 2, dim=1), (2, 6, 3)),
    (Slice(-1, 0, -2, dim=-1), (2, 3, 7)),
    (Reshape((3, -1)), (2, 6, 2)),
    (Permute((0, 3, 1, 2)), (2, 3, 4, 5)),
])
def test_tensor_node_gradients(rng, layer, shape):
    assert max(gradcheck(layer, rng.standard_normal(shape)).values()) < 1e-7


def test_a_trainable_constant_receives_the_summed_gradient(rng):
    g = Graph()
    g.add("scale", Constant((1, 3, 1, 1), trainable=True, value=rng.standard_normal((1, 3, 1, 1))), [])
    g.add("y", Multiply(), ["x", "scale"])
    errors = gradcheck(g, rng.standard_normal((2, 3, 4, 4)))
    assert set(errors) == {"input", "scale.value"} and max(errors.values()) < 1e-7
    frozen = Constant((2,), value=[1.0, 2.0])
    assert frozen.parameters() == [] and list(frozen.state_dict()) == ["value"]


def test_unused_branches_and_inputs_get_zero_gradients(rng):
    g = Graph(inputs=["a", "b"])
    g.add("dead", ck.Conv2d(1, 1, 1, rng=rng), "b")
    g.add("live", ck.ReLU(), "a")
    g.set_outputs("live")
    a, b = rng.standard_normal((1, 1, 2, 2)), rng.standard_normal((1, 1, 2, 2))
    g.forward([a, b])
    da, db = g.backward(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(da, (a > 0).astype(float))
    assert db.shape == b.shape and not db.any()


def test_several_outputs_and_a_graph_inside_a_graph(rng):
    inner = Graph(inputs=["p", "q"], outputs=None)
    inner.add("sum", Add(), ["p", "q"])
    inner.add("diff", Subtract(), ["p", "q"])
    inner.set_outputs(["sum", "diff"])
    g = Graph()
    g.add("half", Split([1, 1]), "x")
    g.add("pair", inner, ["half:0", "half:1"])
    g.add("out", Multiply(), ["pair:0", "pair:1"])          # (p + q)(p - q) = p^2 - q^2
    x = rng.standard_normal((2, 2, 3))
    np.testing.assert_allclose(g.forward(x), x[:, :1] ** 2 - x[:, 1:] ** 2)
    assert g.output_shape((2, 2, 3)) == (2, 1, 3)
    assert max(gradcheck(g, x).values()) < 1e-7
    assert ("pair.sum", inner["sum"]) in list(g.named_layers())


def test_config_round_trip_and_stable_state_dict_keys(rng, tmp_path):
    g = dense_se_graph(rng)
    config = json.loads(json.dumps(g.config()))
    again = from_config(config)
    assert again.config() == g.config()
    assert list(again.state_dict()) == list(g.state_dict())
    assert list(g.state_dict())[:4] == ["stem.weight", "bn.weight", "bn.bias", "bn.running_mean"]
    again.load_state_dict(g.state_dict())
    x = rng.standard_normal((2, 2, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(again.eval().forward(x), g.eval().forward(x))
    path = ck.save(g, tmp_path / "graph.npz")
    loaded = ck.load(path)
    assert isinstance(loaded, Graph) and loaded.inputs_of("skip") == ("join", "scaled")
    np.testing.assert_array_equal(loaded.eval().forward(x), g.forward(x))


def test_repr_shows_nodes_and_edges(rng):
    text = repr(dense_se_graph(rng))
    assert text.startswith("Graph(inputs=x; outputs=fc)[")
    assert "(cat2): Concatenate()  <- cat1, dense2" in text
    assert "(groups): Reshape(shape=(2, 2, 8, 8))  <- halves:1" in text


@pytest.mark.parametrize("build, error, pattern", [
    (lambda g: g.add("stem", ck.ReLU(), "x"), ValueError, "already used"),
    (lambda g: g.add("a.b", ck.ReLU(), "x"), ValueError, r"Received name 'a\.b'"),
    (lambda g: g.add("r", ck.ReLU(), "nowhere"), KeyError, "no value named 'nowhere'"),
    (lambda g: g.add("r", ck.ReLU(), ["x", "stem"]), ValueError, "takes one input, received 2"),
    (lambda g: g.add("m", Multiply(), ["x"]), ValueError, r"takes 2 input\(s\), received 1"),
    (lambda g: g.add("r", np.tanh, "x"), TypeError, "not a cnnkit Layer"),
    (lambda g: g.set_outputs("missing"), KeyError, "no value named 'missing'"),
    (lambda g: Graph(inputs=[]), ValueError, "at least one input"),
])
def test_building_errors(build, error, pattern):
    g = Graph()
    g.add("stem", ck.Conv2d(1, 2, 3), "x")
    with pytest.raises(error, match=pattern):
        build(g)


def test_shape_errors_name_the_node(rng):
    g = Graph()
    g.add("a", ck.Conv2d(1, 2, 3, rng=rng), "x")
    g.add("b", ck.Conv2d(1, 2, 1, rng=rng), "x")
    g.add("sum", Add(), ["a", "b"])
    with pytest.raises(ck.ShapeError, match=r"Graph node 'sum': Add\(\): input shapes .* do not broadcast"):
        g.output_shape((1, 1, 5, 5))
    with pytest.raises(ck.ShapeError, match="Graph node 'sum'"):
        g.forward(np.zeros((1, 1, 5, 5), np.float32))
    with pytest.raises(RuntimeError, match="backward was called before forward"):
        Graph().backward(np.zeros(1))
    two = Graph(inputs=["p", "q"])
    two.add("sum", Add(), ["p", "q"])
    with pytest.raises(TypeError, match="takes a list of 2 arrays"):
        two.forward(np.zeros(1))


# -- the tools that must accept a Graph ------------------------------------------------------------------

def test_summary_receptive_field_and_check(rng):
    g = dense_se_graph(rng)
    s = ck.summary(g, (2, 8, 8))
    names = [r.name for r in s.rows]
    assert names[:4] == ["input", "stem", "bn", "relu"] and "halves:0" in names and "halves:1" in names
    rows = {r.name: r for r in s.rows}
    assert rows["cat2"].output_shape == (8, 8, 8) and rows["fc"].output_shape == (3,)
    assert s.total_params == g.num_parameters()
    assert s.total_macs == sum(ck.analysis.macs(layer, (1, *i), layer.output_shape((1, *i)))
                               for layer, i in [(g["stem"], (2, 8, 8)), (g["dense1"], (4, 8, 8)),
                                                (g["dense2"], (6, 8, 8)), (g["excite"], (8, 1, 1)),
                                                (g["fc"], (128,))])
    field = ck.analysis.receptive_field(g, (2, 8, 8))
    assert field["dense1"].size == (5, 5) and field["dense2"].size == (7, 7)
    assert field["cat2"].size == (7, 7)  # the widest path into the concatenation
    bad = Graph()
    bad.add("a", ck.Conv2d(1, 1, 3, stride=2, rng=rng), "x")
    bad.add("b", ck.Conv2d(1, 1, 2, stride=2, rng=rng), "a")
    report = ck.analysis.check(bad, (1, 8, 8))
    assert report.names() == ["a", "b"]


def test_viz_activations_of_any_node(rng):
    from cnnkit.viz import activations

    g = dense_se_graph(rng)
    x = rng.standard_normal((2, 8, 8)).astype(np.float32)
    out = activations(g, x, "dense2")
    cut = ck.transfer.feature_extractor(g, "dense2").eval()
    np.testing.assert_allclose(out, cut.forward(x[None])[0], rtol=1e-6)
    assert activations(g, x, "gate").shape == (8, 1, 1)


def test_transfer_feature_extractor_freeze_and_replace_head(rng):
    from cnnkit.transfer import feature_extractor, freeze, head_name, replace_head

    g = dense_se_graph(rng).eval()
    cut = feature_extractor(g, "cat1")
    assert isinstance(cut, Graph) and [n for n, _ in cut.named_children()] == \
        ["stem", "bn", "relu", "dense1", "cat1"]
    assert cut["stem"] is g["stem"]  # shared, not copied
    assert cut.output_shape((1, 2, 8, 8)) == (1, 6, 8, 8)
    frozen = freeze(g, until="dense2")
    assert frozen[-1] == "dense2.bias" and g["excite"].weight.trainable and not g["stem"].weight.trainable
    assert head_name(g) == "fc"
    replace_head(g, 5, rng=rng)
    assert g.output_shape((1, 2, 8, 8)) == (1, 5) and g.inputs_of("fc") == ("flat",)


def test_to_torch_and_back(rng):
    torch = pytest.importorskip("torch")
    from cnnkit.interop import from_torch, to_torch

    g = dense_se_graph(rng).eval()
    g.add("bias", Constant((3,), trainable=True, value=[1.0, 2.0, 3.0]), [])
    g.add("out", Add(), ["fc", "bias"])
    x = rng.standard_normal((2, 2, 8, 8)).astype(np.float32)
    net = to_torch(g)
    assert list(net.state_dict()) == list(g.state_dict())
    with torch.no_grad():
        assert_parity(net(torch.from_numpy(x)).numpy(), g.forward(x))
    back = from_torch(net).eval()
    assert [(n, back.inputs_of(n)) for n, _ in back.named_children()] == \
        [(n, g.inputs_of(n)) for n, _ in g.named_children()]
    np.testing.assert_array_equal(back.forward(x), g.forward(x))


def test_onnx_export(rng, tmp_path):
    pytest.importorskip("onnxruntime")
    from cnnkit.interop.onnx import export, run

    g = dense_se_graph(rng).eval()
    g.add("tail", Slice(0, 2, dim=1), "fc")
    x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    for opset in (11, 17):
        export(g, tmp_path / "g.onnx", (2, 8, 8), opset=opset)
        assert_parity(run(tmp_path / "g.onnx", x), g.forward(x), tol=1e-5)
