"""Sequential, Residual, Concat: numeric gradients through whole networks, PyTorch parity, state-dict keys
and order (torchvision's names), load_state_dict errors, config round trips, dotted names, train/eval."""

import json
from collections import OrderedDict

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.layers import from_config
from conftest import TORCHVISION_FIXTURES, assert_parity, import_torch


def small_net(rng=None):
    # No conv bias before batch norm: in training mode its gradient is exactly 0 (the mean is subtracted),
    # which leaves only rounding noise to compare.
    rng = rng or np.random.default_rng(0)
    return ck.Sequential(ck.Conv2d(2, 3, 3, padding=1, bias=False, rng=rng), ck.BatchNorm2d(3), ck.ReLU(),
                         ck.Flatten(), ck.Dropout(0.0), ck.Linear(3 * 4 * 4, 2, rng=rng))


def torch_small_net():
    torch = import_torch()
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.Flatten(), nn.Dropout(0.0), nn.Linear(48, 2))


def basic_block(c_in, c_out, stride, rng=None):
    """torchvision's BasicBlock, with its attribute names (and PyTorch's floor rule for strided convs)."""
    body = ck.Sequential(conv1=ck.Conv2d(c_in, c_out, 3, stride, 1, bias=False, fit="crop", rng=rng),
                         bn1=ck.BatchNorm2d(c_out),
                         relu=ck.ReLU(), conv2=ck.Conv2d(c_out, c_out, 3, 1, 1, bias=False, rng=rng),
                         bn2=ck.BatchNorm2d(c_out))
    shortcut = None
    if stride != 1 or c_in != c_out:
        shortcut = ck.Sequential(ck.Conv2d(c_in, c_out, 1, stride, bias=False, fit="crop", rng=rng),
                                 ck.BatchNorm2d(c_out))
    return ck.Residual(body, shortcut, activation=ck.ReLU(), shortcut_name="downsample")


def inception_like(rng=None):
    branch2 = ck.Sequential(ck.Conv2d(2, 2, 1, rng=rng), ck.ReLU(), ck.Conv2d(2, 4, 3, padding=1, rng=rng))
    return ck.Concat(branch1=ck.Conv2d(2, 3, 1, rng=rng), branch2=branch2)


def _randomize_bn(net, rng):
    for _, layer in net.named_layers():
        if isinstance(layer, ck.BatchNorm2d):
            layer.weight.data[...] = rng.uniform(0.5, 1.5, layer.num_features)
            layer.bias.data[...] = rng.standard_normal(layer.num_features)
            layer.running_mean[...] = rng.standard_normal(layer.num_features)
            layer.running_var[...] = rng.uniform(0.5, 2, layer.num_features)
    return net


@pytest.mark.parametrize("make, shape, mode", [
    (small_net, (2, 2, 4, 4), "train"),
    (small_net, (2, 2, 4, 4), "eval"),
    (lambda: basic_block(2, 2, 1), (2, 2, 4, 4), "train"),
    (lambda: basic_block(2, 3, 2), (2, 2, 4, 4), "train"),
    (lambda: basic_block(2, 3, 2), (1, 2, 4, 4), "eval"),
    (lambda: ck.Residual(ck.Conv2d(2, 2, 3, padding=1)), (1, 2, 3, 3), "train"),  # identity shortcut
    (inception_like, (2, 2, 3, 3), "train"),
])
def test_numeric_gradients_through_containers(make, shape, mode):
    rng = np.random.default_rng(3)
    net = _randomize_bn(make(), rng).train(mode == "train")
    errors = ck.gradcheck(net, rng.standard_normal(shape))
    assert set(errors) == {"input", *dict(net.named_parameters())}
    assert max(errors.values()) < 1e-6, errors


def torch_basic_block(c_in, c_out, stride):
    """torchvision's BasicBlock in PyTorch (a class made here: only parity tests import torch)."""
    nn = import_torch().nn

    class BasicBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.downsample = None
            if stride != 1 or c_in != c_out:
                self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                                nn.BatchNorm2d(c_out))

        def forward(self, x):
            y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            return self.relu(y + (x if self.downsample is None else self.downsample(x)))

    return BasicBlock()


def _parity(ours, theirs, x, mode):
    """Load torch's weights by key, then compare the forward, dx and every parameter gradient by name."""
    torch = import_torch()
    theirs.train(mode == "train")
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()}).train(mode == "train")
    y = ours(x)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    dx = ours.backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    ty.backward(torch.tensor(dy))
    assert_parity(y, ty, what="forward")
    assert_parity(dx, tx.grad, what="dx")
    torch_params = dict(theirs.named_parameters())
    assert list(torch_params) == [name for name, _ in ours.named_parameters()]
    for name, p in ours.named_parameters():
        assert_parity(p.grad, torch_params[name].grad, what=name)
    for name, value in theirs.state_dict().items():  # running statistics updated alike
        assert_parity(np.asarray(ours.state_dict()[name], np.float64), value.double().numpy(), what=name)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("c_in, c_out, stride", [(4, 4, 1), (3, 6, 2)])
def test_residual_block_parity_with_pytorch(c_in, c_out, stride, mode, torch):
    torch.manual_seed(0)
    theirs = torch_basic_block(c_in, c_out, stride)
    with torch.no_grad():  # non-trivial batch-norm state, so eval mode is a real test
        for m in theirs.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.normal_(), m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2)
    x = np.random.default_rng(0).standard_normal((2, c_in, 6, 6)).astype(np.float32)
    _parity(basic_block(c_in, c_out, stride), theirs, x, mode)


def test_sequential_parity_with_pytorch(torch):
    torch.manual_seed(1)
    theirs = torch_small_net()
    x = np.random.default_rng(2).standard_normal((4, 2, 4, 4)).astype(np.float32)
    _parity(small_net(), theirs, x, "train")


def test_state_dict_keys_and_order_match_torch():
    ours, theirs = small_net(), torch_small_net()
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
           [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    assert list(ours.state_dict())[:6] == ["0.weight", "1.weight", "1.bias", "1.running_mean",
                                           "1.running_var", "1.num_batches_tracked"]


def test_residual_names_match_torchvision_resnet18():
    """A stride-2 BasicBlock carries exactly the keys and shapes of torchvision's resnet18 layer2.0."""
    fixture = json.loads((TORCHVISION_FIXTURES / "resnet18.json").read_text())["state_dict"]
    expected = [(e["key"][len("layer2.0."):], tuple(e["shape"])) for e in fixture
                if e["key"].startswith("layer2.0.")]
    block = basic_block(64, 128, 2)
    assert [(k, tuple(np.shape(v))) for k, v in block.state_dict().items()] == expected
    net = ck.Sequential(layer2=ck.Sequential(block))
    assert net.get("layer2.0.downsample.1") is block.shortcut[1]
    assert "layer2.0.downsample.0.weight" in net.state_dict()


def test_load_state_dict_lists_every_problem_and_copies_nothing():
    net = small_net()
    state = OrderedDict((k, np.array(v, copy=True)) for k, v in net.state_dict().items())
    del state["1.bias"], state["5.weight"]
    state["9.weight"] = np.zeros(3)
    state["head.bias"] = np.zeros(3)
    with pytest.raises(KeyError, match=r"missing keys \['1.bias', '5.weight'\], unexpected keys "
                                       r"\['9.weight', 'head.bias'\]"):
        net.load_state_dict(state)
    good = OrderedDict((k, np.ones_like(v)) for k, v in net.state_dict().items())
    good["0.weight"] = np.ones((3, 2, 5, 5))
    good["5.bias"] = np.ones(7)
    before = {k: np.array(v, copy=True) for k, v in net.state_dict().items()}
    with pytest.raises(ck.ShapeError, match=r"shapes differ for 0.weight: model \(3, 2, 3, 3\), given "
                                            r"\(3, 2, 5, 5\); 5.bias: model \(2,\), given \(7,\)"):
        net.load_state_dict(good)
    for k, v in net.state_dict().items():  # all-or-nothing: the good keys were not copied either
        np.testing.assert_array_equal(v, before[k])
    # strict=False skips missing and unexpected keys but still loads the rest
    partial = {"1.bias": np.full(3, 2.0, np.float32), "extra": np.zeros(1)}
    net.load_state_dict(partial, strict=False)
    assert net.get("1").bias.data.tolist() == [2.0, 2.0, 2.0]


def test_config_round_trip_of_a_nested_network():
    rng = np.random.default_rng(4)
    stem = ck.Sequential(ck.Conv2d(2, 4, 3, padding=1, rng=rng), ck.BatchNorm2d(4), ck.ReLU())
    net = ck.Sequential(stem=stem,
                        block=basic_block(4, 4, 1, rng), mixed=ck.Concat(ck.Conv2d(4, 2, 1), ck.Identity()),
                        pool_free=ck.LocalResponseNorm(3), flat=ck.Flatten(), drop=ck.Dropout(0.25),
                        fc=ck.Linear(6 * 4 * 4, 3, rng=rng), out=ck.Softmax(dim=1))
    config = net.config()
    assert json.loads(json.dumps(config)) == config  # JSON-able
    rebuilt = from_config(config)
    assert rebuilt.config() == config
    assert [(k, np.shape(v)) for k, v in rebuilt.state_dict().items()] == \
           [(k, np.shape(v)) for k, v in net.state_dict().items()]
    rebuilt.load_state_dict(net.state_dict())
    x = rng.standard_normal((2, 2, 4, 4)).astype(np.float32)
    net.eval(), rebuilt.eval()
    np.testing.assert_array_equal(rebuilt(x), net(x))
    assert net.output_shape(x.shape) == net(x).shape == (2, 3)
    assert repr(rebuilt) == repr(net)


def test_get_by_dotted_name():
    net = ck.Sequential(features=ck.Sequential(ck.Conv2d(1, 2, 3), ck.ReLU()), block=basic_block(2, 2, 1))
    assert isinstance(net.get("features.0"), ck.Conv2d)
    assert isinstance(net.get("block.bn2"), ck.BatchNorm2d)
    assert net.get("") is net and net["features"][1] is net.get("features.1")
    with pytest.raises(KeyError, match=r"Sequential has no layer named 'bn2'. Did you mean 'block.bn2'\?"):
        net.get("bn2")


def test_train_eval_propagates_to_every_descendant():
    net = ck.Sequential(ck.Dropout(0.5, rng=np.random.default_rng(0)), basic_block(2, 2, 1),
                        inception_like())
    assert all(layer.training for layer in net.layers())
    assert net.eval() is net and not any(layer.training for layer in net.layers())
    x = np.ones((2, 2, 3, 3), np.float32)
    bn = net.get("1.bn1")
    before = int(bn.num_batches_tracked)
    np.testing.assert_array_equal(net[0](x), x)  # dropout is the identity in eval mode
    net(x)
    assert int(bn.num_batches_tracked) == before  # and batch norm leaves its running statistics alone
    net.train()
    assert all(layer.training for layer in net.layers())
    net(x)
    assert int(bn.num_batches_tracked) == before + 1


def test_sequential_helpers_and_output_shape():
    net = small_net()
    assert len(net) == 6 and isinstance(net[-1], ck.Linear) and isinstance(net["3"], ck.Flatten)
    head = net[3:]
    assert isinstance(head, ck.Sequential) and list(dict(head.named_children())) == ["3", "4", "5"]
    net.append(ck.Softmax())
    assert list(dict(net.named_children()))[-1] == "6"
    assert net.output_shape((5, 2, 4, 4)) == (5, 2)
    assert inception_like().output_shape((1, 2, 3, 3)) == (1, 7, 3, 3)
    assert basic_block(2, 3, 2).output_shape((1, 2, 6, 6)) == (1, 3, 3, 3)
    assert net.num_parameters() == 2 * 3 * 9 + 6 + 48 * 2 + 2


def test_gradients_accumulate_and_zero_grad_clears_them():
    net = small_net().eval()
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32)
    for _ in range(2):
        net.backward(np.ones_like(net(x)))
    once = small_net().eval()
    once.backward(np.ones_like(once(x)))
    for (_, a), (_, b) in zip(net.named_parameters(), once.named_parameters(), strict=True):
        np.testing.assert_allclose(a.grad, 2 * b.grad, rtol=1e-5, atol=1e-7)
    net.zero_grad()
    assert all(not p.grad.any() for p in net.parameters())


@pytest.mark.parametrize("build, x, error, pattern", [
    (lambda: ck.Residual(ck.Conv2d(2, 3, 3, padding=1)), np.zeros((1, 2, 4, 4), np.float32), ck.ShapeError,
     r"Residual: body gives \(1, 3, 4, 4\) but shortcut gives \(1, 2, 4, 4\); add a shortcut"),
    (lambda: ck.Concat(ck.Conv2d(2, 3, 3), ck.Conv2d(2, 3, 1)), np.zeros((1, 2, 4, 4), np.float32),
     ck.ShapeError, r"Concat: branch outputs \[\(1, 3, 2, 2\), \(1, 3, 4, 4\)\] differ beyond axis 1"),
    (lambda: ck.Sequential(ck.Flatten(), ck.Linear(5, 2)), np.zeros((1, 2, 2, 2), np.float32), ck.ShapeError,
     r"Linear\(5->2\): expected input \(N, 5\), received shape \(1, 8\)"),
])
def test_shape_errors_in_forward_and_output_shape(build, x, error, pattern):
    with pytest.raises(error, match=pattern.split(";")[0].replace("beyond axis 1", "beyond")):
        build().output_shape(x.shape)
    with pytest.raises(error, match=pattern):
        build()(x)


@pytest.mark.parametrize("build, error, pattern", [
    (lambda: ck.Sequential(ck.ReLU(), "relu"), TypeError,
     r"Sequential: child '1' is a str, not a cnnkit Layer"),
    (lambda: ck.Sequential(ck.ReLU(), tanh=ck.Tanh()), TypeError, r"either layers or name=layer pairs"),
    (lambda: from_config({"type": "os.system"}), ValueError, r"Unknown layer type 'os.system'; known types:"),
])
def test_construction_errors(build, error, pattern):
    with pytest.raises(error, match=pattern):
        build()


def test_backward_before_forward_in_a_container():
    with pytest.raises(RuntimeError, match=r"Linear\(48->2\): backward was called before forward"):
        small_net().backward(np.zeros((2, 2), np.float32))
    with pytest.raises(RuntimeError, match=r"backward was called before forward"):
        inception_like().backward(np.zeros((1, 7, 3, 3), np.float32))
