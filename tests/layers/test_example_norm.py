"""GroupNorm, InstanceNorm1d/2d/3d and LayerNorm: PyTorch parity of the layers (forward, dx, the parameters'
gradients, the running statistics over several steps, eval mode), numeric gradients, an error per bad
argument, unbatched inputs, and every place a layer must work."""

import numpy as np
import pytest
from everywhere_checks import check_everywhere

import cnnkit as ck

CASES = [  # (cnnkit layer, the torch.nn module, input shape)
    (lambda: ck.GroupNorm(2, 6), lambda nn: nn.GroupNorm(2, 6), (3, 6, 4, 5)),
    (lambda: ck.GroupNorm(3, 6, eps=1e-3, affine=False), lambda nn: nn.GroupNorm(3, 6, 1e-3, False),
     (2, 6, 7)),
    (lambda: ck.GroupNorm(1, 4), lambda nn: nn.GroupNorm(1, 4), (2, 4, 3, 2, 3)),
    (lambda: ck.InstanceNorm1d(3), lambda nn: nn.InstanceNorm1d(3), (4, 3, 9)),
    (lambda: ck.InstanceNorm2d(3, affine=True), lambda nn: nn.InstanceNorm2d(3, affine=True), (2, 3, 5, 4)),
    (lambda: ck.InstanceNorm2d(3, momentum=0.3, affine=True, track_running_stats=True),
     lambda nn: nn.InstanceNorm2d(3, momentum=0.3, affine=True, track_running_stats=True), (2, 3, 5, 4)),
    (lambda: ck.InstanceNorm3d(2, momentum=None, track_running_stats=True),
     lambda nn: nn.InstanceNorm3d(2, momentum=None, track_running_stats=True), (2, 2, 3, 4, 3)),
    (lambda: ck.LayerNorm(6), lambda nn: nn.LayerNorm(6), (3, 5, 6)),
    (lambda: ck.LayerNorm((3, 4, 4)), lambda nn: nn.LayerNorm((3, 4, 4)), (2, 3, 4, 4)),
    (lambda: ck.LayerNorm([4, 5], elementwise_affine=False), lambda nn: nn.LayerNorm([4, 5], 1e-5, False),
     (2, 3, 4, 5)),
    (lambda: ck.LayerNorm(5, bias=False), lambda nn: nn.LayerNorm(5, bias=False), (2, 3, 5)),
]
IDS = ["gn", "gn-noaffine", "gn1-3d", "in1d", "in2d-affine", "in2d-track", "in3d-momentum-none", "ln",
       "ln-chw", "ln-noaffine", "ln-nobias"]


@pytest.mark.parametrize("dtype, tol", [(np.float32, 2e-5), (np.float64, 1e-9)])
@pytest.mark.parametrize("make, make_torch, shape", CASES, ids=IDS)
def test_parity_with_torch_nn_over_training_steps_and_eval(make, make_torch, shape, dtype, tol, torch):
    rng = np.random.default_rng(len(shape))
    layer = make().astype(dtype)
    module = make_torch(torch.nn).to(torch.float64 if dtype == np.float64 else torch.float32)
    for p in layer.parameters():  # parameters away from 1 and 0, the same in both
        p.data[...] = rng.standard_normal(p.shape)
    module.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()}, strict=True)
    for step in range(3):
        for mode in ("train", "train", "eval") if step == 2 else ("train",):
            layer.train(mode == "train")
            module.train(mode == "train")
            x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
            dy = rng.standard_normal(shape).astype(dtype)
            y = layer.forward(x)
            layer.zero_grad()
            dx = layer.backward(dy)
            tx = torch.tensor(x, requires_grad=True)
            module.zero_grad()
            ty = module(tx)
            ty.backward(torch.tensor(dy))
            assert y.dtype == dx.dtype == dtype
            np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tol, atol=tol)
            np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol)
            for name, p in layer.named_parameters():
                np.testing.assert_allclose(p.grad, dict(module.named_parameters())[name].grad.numpy(),
                                           rtol=tol, atol=tol, err_msg=name)
            for name, value in layer.state_dict().items():
                np.testing.assert_allclose(value, module.state_dict()[name].numpy(), rtol=tol, atol=tol,
                                           err_msg=name)


@pytest.mark.parametrize("make, make_torch, shape", CASES, ids=IDS)
def test_numeric_gradients(make, make_torch, shape):
    x = np.random.default_rng(2).standard_normal(shape)
    layer = make()
    for p in layer.parameters():
        p.data[...] = np.random.default_rng(3).standard_normal(p.shape)
    errors = ck.gradcheck(layer, x)
    assert max(errors.values()) < 1e-6, errors


def test_eval_mode_with_running_statistics_is_a_fixed_affine_map():
    layer = ck.InstanceNorm2d(2, track_running_stats=True).eval()
    layer.running_mean[...] = [1.0, -1.0]
    layer.running_var[...] = [4.0, 1.0]
    x = np.random.default_rng(0).standard_normal((3, 2, 2, 2))
    np.testing.assert_allclose(layer.forward(x), (x - [[[[1.0]], [[-1.0]]]]) / np.sqrt([[[[4 + 1e-5]],
                                                                                      [[1 + 1e-5]]]]))
    assert ck.gradcheck(layer, x)["input"] < 1e-7


def test_instance_norm_takes_one_example_without_the_batch_axis():
    layer = ck.InstanceNorm2d(3, affine=True)
    x = np.random.default_rng(0).standard_normal((3, 4, 4))
    y = layer.forward(x)
    assert y.shape == (3, 4, 4) and layer.backward(np.ones_like(x)).shape == (3, 4, 4)
    np.testing.assert_allclose(y, ck.InstanceNorm2d(3, affine=True).forward(x[None])[0])
    assert layer.output_shape((3, 4, 4)) == (3, 4, 4)


def test_only_tracking_instance_norm_mixes_examples():
    """Batch slices would each update the running averages: only that keeps a model from slicing."""
    assert not ck.GroupNorm(2, 4).mixes_examples and not ck.LayerNorm(4).mixes_examples
    assert not ck.InstanceNorm2d(4).mixes_examples
    assert ck.InstanceNorm2d(4, track_running_stats=True).mixes_examples


def test_buffers_and_parameters_carry_pytorchs_names():
    assert list(ck.InstanceNorm1d(2, affine=True, track_running_stats=True).state_dict()) == \
        ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert list(ck.InstanceNorm1d(2).state_dict()) == []
    assert list(ck.LayerNorm(3, bias=False).state_dict()) == ["weight"]
    assert ck.GroupNorm(2, 4).num_parameters() == 8


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: ck.GroupNorm(4, 6), ValueError,
     r"GroupNorm: Received num_groups=4, num_channels=6; num_channels must be divisible by num_groups"),
    (lambda: ck.GroupNorm(0, 6), ValueError, r"GroupNorm: Received num_groups=0"),
    (lambda: ck.GroupNorm(2, 6, eps=0), ValueError,
     r"GroupNorm: Received eps=0.0; expected a small positive"),
    (lambda: ck.InstanceNorm2d(3, momentum=2), ValueError,
     r"InstanceNorm2d: Received momentum=2.0; expected a number in \[0, 1\]"),
    (lambda: ck.InstanceNorm1d(-1), ValueError, r"InstanceNorm1d: Received num_features=-1"),
    (lambda: ck.InstanceNorm3d(2, eps="small"), TypeError, r"InstanceNorm3d: Received eps='small'"),
    (lambda: ck.LayerNorm([]), TypeError,
     r"LayerNorm: Received normalized_shape=\[\]; expected an int or a non-empty tuple of ints"),
    (lambda: ck.LayerNorm("5"), TypeError, r"LayerNorm: Received normalized_shape='5'"),
    (lambda: ck.LayerNorm((3, 0)), ValueError, r"LayerNorm: Received normalized_shape=0"),
    (lambda: ck.LayerNorm(4, eps=-1e-5), ValueError, r"LayerNorm: Received eps=-1e-05"),
])
def test_bad_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


@pytest.mark.parametrize("layer, shape, pattern", [
    (ck.GroupNorm(2, 6), (2, 4, 3),
     r"GroupNorm\(2, 6\): expected an input \(N, 6, \*S\), received shape \(2, 4, 3\)"),
    (ck.InstanceNorm2d(3), (2, 3, 4), r"expected a 4-D input \(N, 3, H, W\) \(or one example without N\)"),
    (ck.InstanceNorm1d(3), (2, 3, 1), r"expected more than 1 position per channel"),
    (ck.LayerNorm((4, 5)), (2, 5, 4), r"expected an input whose last 2 axes are \(4, 5\), received shape"),
])
def test_bad_input(layer, shape, pattern):
    with pytest.raises(ck.ShapeError, match=pattern):
        layer.forward(np.zeros(shape))


STATELESS = [i for i in IDS if "track" not in i and "none" not in i]  # without running statistics


@pytest.mark.parametrize("make, make_torch, shape",
                         [c for c, i in zip(CASES, IDS, strict=True) if i in STATELESS], ids=STATELESS)
def test_works_everywhere(make, make_torch, shape, tmp_path):
    """summary, from_config, save/load, to_torch/from_torch and ONNX (run in onnxruntime), in eval mode;
    the layers with running statistics in the next test."""
    check_everywhere(make(), shape, tmp_path)


def test_running_statistics_reach_torch_and_onnx(tmp_path, torch):
    """Evaluation with running statistics: ONNX gets them as a BatchNormalization, torch in its buffers."""
    pytest.importorskip("onnxruntime")
    from cnnkit.interop.onnx import export, run
    from cnnkit.interop.torch import from_torch, to_torch

    layer = ck.InstanceNorm2d(3, affine=True, track_running_stats=True)
    layer.running_mean[...] = [-1.0, 0.5, 2.0]
    layer.running_var[...] = [0.5, 1.0, 3.0]
    layer.weight.data[...] = [1.0, -2.0, 0.5]
    model = ck.Sequential(layer).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    y = model.forward(x)
    export(model, tmp_path / "m.onnx", (3, 4, 4))
    np.testing.assert_allclose(run(tmp_path / "m.onnx", x), y, rtol=1e-5, atol=1e-6)
    net = to_torch(model).eval()
    with torch.no_grad():
        np.testing.assert_allclose(net(torch.from_numpy(x)).numpy(), y, rtol=1e-5, atol=1e-6)
    back = from_torch(net)
    np.testing.assert_array_equal(back.forward(x), y)
    np.testing.assert_array_equal(back.state_dict()["0.running_var"], layer.running_var)
