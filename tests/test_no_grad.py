"""cnnkit.no_grad(): inference keeps no caches, computes what training computes, and refuses a backward."""

from __future__ import annotations

import importlib
import pkgutil
import tracemalloc

import numpy as np
import pytest

import cnnkit as ck
import cnnkit.functional as F
from cnnkit import layers as L
from cnnkit.functional import adaptive as FA
from cnnkit.functional import padding as FP
from cnnkit.functional import unpool as FU
from cnnkit.layers import Graph, Parameter
from cnnkit.models import registry


def rng():
    return np.random.default_rng(0)


# -- the switch ----------------------------------------------------------------------------------------------

def test_no_grad_nests_restores_and_decorates():
    assert ck.is_grad_enabled()
    with ck.no_grad():
        assert not ck.is_grad_enabled()
        with ck.enable_grad():
            assert ck.is_grad_enabled()
        assert not ck.is_grad_enabled()
    assert ck.is_grad_enabled()
    with pytest.raises(KeyError), ck.no_grad():
        raise KeyError("inside")
    assert ck.is_grad_enabled()

    @ck.no_grad()
    def infer():
        return ck.is_grad_enabled()

    assert infer() is False and infer() is False and ck.is_grad_enabled()


OPS = {  # name -> a call of the public face on small arrays
    "conv2d": lambda r: F.conv2d(r.standard_normal((2, 3, 6, 6)), r.standard_normal((4, 3, 3, 3))),
    "conv2d winograd": lambda r: F.conv2d(r.standard_normal((1, 2, 6, 6)), r.standard_normal((2, 2, 3, 3)),
                                          algorithm="winograd"),
    "conv2d reference": lambda r: F.conv2d(r.standard_normal((1, 2, 6, 6)), r.standard_normal((2, 2, 3, 3)),
                                           algorithm="reference"),
    "relu": lambda r: F.relu(r.standard_normal((2, 3))),
    "max_pool2d": lambda r: F.max_pool2d(r.standard_normal((1, 2, 4, 4)), 2),
    "batch_norm": lambda r: F.batch_norm(r.standard_normal((4, 3))),
    "linear": lambda r: F.linear(r.standard_normal((2, 5)), r.standard_normal((3, 5))),
    "flatten": lambda r: F.flatten(r.standard_normal((2, 3, 2))),
    "dropout": lambda r: F.dropout(r.standard_normal((2, 3)), 0.5, rng=r),
    "conv_transpose2d": lambda r: F.conv_transpose2d(r.standard_normal((1, 2, 3, 3)),
                                                     r.standard_normal((2, 3, 2, 2))),
    "locally_connected2d": lambda r: F.locally_connected2d(r.standard_normal((1, 2, 4, 4)),
                                                           r.standard_normal((3, 3, 3, 2, 2, 2))),
}


def _unary(name, shape=(2, 3, 4, 4), *args):
    return lambda r: getattr(F, name)(r.standard_normal(shape), *args)


def _loss(name, target):
    return lambda r: getattr(F, name)(r.standard_normal((4, 3)), target(r))


UNARY = ("elu", "leaky_relu", "relu6", "sigmoid", "softmax", "tanh", "log_softmax", "celu", "gelu",
         "hardsigmoid", "hardswish", "hardtanh", "mish", "selu", "silu", "softplus", "softsign",
         "global_avg_pool", "global_max_pool")
OPS |= {name: _unary(name) for name in UNARY}
OPS |= {
    "conv1d": lambda r: F.conv1d(r.standard_normal((2, 3, 7)), r.standard_normal((4, 3, 3))),
    "conv3d": lambda r: F.conv3d(r.standard_normal((1, 2, 4, 4, 4)), r.standard_normal((3, 2, 2, 2, 2))),
    "convnd": lambda r: F.convnd(r.standard_normal((2, 3, 6, 6)), r.standard_normal((4, 3, 3, 3))),
    "prelu": lambda r: F.prelu(r.standard_normal((2, 3, 4, 4)), np.full(3, 0.25)),
    "local_response_norm": _unary("local_response_norm", (2, 5, 4, 4), 3),
    "group_norm": _unary("group_norm", (2, 4, 3, 3), 2),
    "instance_norm": _unary("instance_norm"),
    "layer_norm": _unary("layer_norm", (2, 3, 4, 4), (4, 4)),
    "avg_pool2d": _unary("avg_pool2d", (1, 2, 4, 4), 2),
    "avg_poolnd": _unary("avg_poolnd", (1, 2, 4, 4), 2),
    "lp_pool2d": _unary("lp_pool2d", (1, 2, 4, 4), 2, 2),
    "lp_poolnd": _unary("lp_poolnd", (1, 2, 4, 4), 2, 2),
    "max_pool1d": _unary("max_pool1d", (1, 2, 6), 2),
    "max_poolnd": _unary("max_poolnd", (1, 2, 4, 4), 2),
    "blurnd": lambda r: F.blurnd(r.standard_normal((1, 2, 7, 7)), np.full((3, 3), 1 / 9), 2, 1),
    "conv_transposend": lambda r: F.conv_transposend(r.standard_normal((1, 2, 3, 3)),
                                                     r.standard_normal((2, 3, 2, 2))),
    "locally_connected": lambda r: F.locally_connected(r.standard_normal((1, 2, 4, 4)),
                                                       r.standard_normal((3, 3, 3, 2, 2, 2))),
    "cross_entropy": _loss("cross_entropy", lambda r: r.integers(0, 3, 4)),
    "nll_loss": _loss("nll_loss", lambda r: r.integers(0, 3, 4)),
    "multi_margin_loss": _loss("multi_margin_loss", lambda r: r.integers(0, 3, 4)),
    "mse_loss": _loss("mse_loss", lambda r: r.standard_normal((4, 3))),
    "l1_loss": _loss("l1_loss", lambda r: r.standard_normal((4, 3))),
    "smooth_l1_loss": _loss("smooth_l1_loss", lambda r: r.standard_normal((4, 3))),
    "binary_cross_entropy_with_logits": _loss("binary_cross_entropy_with_logits", lambda r: r.random((4, 3))),
    "channel_shuffle": _unary("channel_shuffle", (2, 4, 3, 3), 2),
    "pixel_shuffle": _unary("pixel_shuffle", (2, 4, 3, 3), 2),
    "pixel_unshuffle": _unary("pixel_unshuffle", (2, 1, 4, 4), 2),
    "unflatten": _unary("unflatten", (2, 6), 1, (2, 3)),
    "interpolate": lambda r: F.interpolate(r.standard_normal((1, 2, 3, 3)), scale_factor=2, mode="bilinear"),
    "adaptive_avg_pool": lambda r: FA.adaptive_avg_pool(r.standard_normal((1, 2, 5, 5)), (2, 2)),
    "adaptive_max_pool": lambda r: FA.adaptive_max_pool(r.standard_normal((1, 2, 5, 5)), (2, 2)),
    "padnd": lambda r: FP.padnd(r.standard_normal((1, 2, 3, 3)), ((1, 1), (2, 0)), "reflect"),
    "max_unpool": lambda r: FU.max_unpool(r.standard_normal((1, 2, 2, 2)), r.integers(0, 16, (1, 2, 2, 2)),
                                          (4, 4)),
}


def test_every_face_with_a_backward_is_in_the_table():
    """A new op's face joins OPS, so the no_grad contract is checked for every op (none by hand-picking)."""
    faces = set()
    for module in pkgutil.iter_modules(F.__path__):
        names = set(importlib.import_module(f"cnnkit.functional.{module.name}").__all__)
        faces |= {name for name in names if f"{name}_backward" in names}
    assert sorted(faces - set(OPS)) == [] and len(faces) > 50


@pytest.mark.parametrize("op", OPS)
def test_faces_return_no_cache_under_no_grad(op):
    y, cache = OPS[op](rng())
    assert cache is not None
    with ck.no_grad():
        y_inference, nothing = OPS[op](rng())
    assert nothing is None
    np.testing.assert_array_equal(y_inference, y)


# -- every layer: same output, nothing kept, backward refused ------------------------------------------------

def _graph():
    g = Graph(inputs="x")
    g.add("conv", L.Conv2d(3, 3, 3, padding=1, rng=rng()), "x")
    g.add("product", L.Multiply(), ["x", "conv"])
    g.add("sum", L.Add(), ["product", "x"])
    g.add("parts", L.Split([1, 2]), "sum")
    g.add("joined", L.Concatenate(), ["parts:1", "parts:0"])
    return g


LAYERS = {  # name -> (a fresh layer, input shape); every layer builds the same weights each time
    "Conv1d": (lambda: L.Conv1d(3, 4, 3, rng=rng()), (2, 3, 9)),
    "Conv2d": (lambda: L.Conv2d(3, 4, 3, padding=1, rng=rng()), (2, 3, 8, 8)),
    "Conv2d depthwise": (lambda: L.Conv2d(4, 4, 3, groups=4, rng=rng()), (2, 4, 8, 8)),
    "Conv2d 1x1": (lambda: L.Conv2d(3, 4, 1, rng=rng()), (2, 3, 5, 5)),
    "Conv3d": (lambda: L.Conv3d(2, 3, 2, rng=rng()), (1, 2, 4, 4, 4)),
    "ConvTranspose2d": (lambda: L.ConvTranspose2d(3, 2, 3, stride=2, rng=rng()), (2, 3, 4, 4)),
    "LocallyConnected2d": (lambda: L.LocallyConnected2d(3, 2, 3, input_size=(6, 6), rng=rng()), (2, 3, 6, 6)),
    "Linear": (lambda: L.Linear(6, 4, rng=rng()), (3, 6)),
    "Flatten": (lambda: L.Flatten(), (2, 3, 2, 2)),
    "Dropout": (lambda: L.Dropout(0.5, rng=rng()), (4, 6)),
    "BatchNorm1d": (lambda: L.BatchNorm1d(3), (4, 3)),
    "BatchNorm2d": (lambda: L.BatchNorm2d(3), (4, 3, 5, 5)),
    "LocalResponseNorm": (lambda: L.LocalResponseNorm(3), (2, 5, 4, 4)),
    "MaxPool2d": (lambda: L.MaxPool2d(2), (2, 3, 6, 6)),
    "MaxPool1d": (lambda: L.MaxPool1d(2), (2, 3, 6)),
    "AvgPool2d": (lambda: L.AvgPool2d(3, 1, 1), (2, 3, 6, 6)),
    "LPPool2d": (lambda: L.LPPool2d(2, 2), (2, 3, 6, 6)),
    "GlobalAvgPool2d": (lambda: L.GlobalAvgPool2d(), (2, 3, 5, 5)),
    "GlobalMaxPool2d": (lambda: L.GlobalMaxPool2d(), (2, 3, 5, 5)),
    "BlurPool2d": (lambda: L.BlurPool2d(3), (2, 3, 8, 8)),
    "ReLU": (lambda: L.ReLU(), (2, 3, 4, 4)),
    "ReLU6": (lambda: L.ReLU6(), (2, 3, 4, 4)),
    "LeakyReLU": (lambda: L.LeakyReLU(0.1), (2, 7)),
    "ELU": (lambda: L.ELU(), (2, 7)),
    "Sigmoid": (lambda: L.Sigmoid(), (2, 7)),
    "Tanh": (lambda: L.Tanh(), (2, 7)),
    "Softmax": (lambda: L.Softmax(), (2, 7)),
    "Identity": (lambda: L.Identity(), (2, 7)),
    "Sequential": (lambda: L.Sequential(L.Conv2d(3, 4, 3, rng=rng()), L.BatchNorm2d(4), L.ReLU(),
                                        L.MaxPool2d(2)), (2, 3, 10, 10)),
    "Residual": (lambda: L.Residual(L.Sequential(L.Conv2d(3, 3, 3, padding=1, rng=rng()), L.BatchNorm2d(3)),
                                    activation=L.ReLU()), (2, 3, 6, 6)),
    "Concat": (lambda: L.Concat(L.Conv2d(3, 2, 1, rng=rng()), L.MaxPool2d(3, 1, 1)), (2, 3, 6, 6)),
    "Graph": (_graph, (2, 3, 5, 5)),
}
LAYERS |= {name: (make, (2, 3, 7, 7)) for name, make in (
    ("AdaptiveAvgPool2d", lambda: L.AdaptiveAvgPool2d(3)),
    ("AdaptiveMaxPool2d", lambda: L.AdaptiveMaxPool2d(3)),
    ("AdaptiveMaxPool2d indices", lambda: L.AdaptiveMaxPool2d(3, return_indices=True)),
    ("InstanceNorm2d", lambda: L.InstanceNorm2d(3, affine=True, track_running_stats=True)),
    ("GroupNorm", lambda: L.GroupNorm(3, 3)),
    ("PixelShuffle", lambda: L.PixelShuffle(1)),
    ("GELU", lambda: L.GELU()),
    ("Upsample", lambda: L.Upsample(scale_factor=2, mode="bilinear")),
    ("ReflectionPad2d", lambda: L.ReflectionPad2d(1)))}


def _arrays(value):
    """Every ndarray inside an attribute value (tuples, lists, dicts followed; Parameters are not)."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _arrays(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _arrays(v)


def _kept_arrays(model):
    """The ids of the arrays each layer holds outside its parameters and buffers."""
    kept = set()
    for layer in model.layers():
        for name, value in vars(layer).items():
            if name not in layer.buffer_names and not isinstance(value, Parameter):
                kept |= {id(a) for a in _arrays(value)}
    return kept


def _check_inference(make, shape, *, training):
    """Same output and buffers as the training forward; no cache and no new array kept; backward refused."""
    x = rng().standard_normal(shape).astype(np.float32)
    cached, bare = make().train(training), make().train(training)
    expected = cached.forward(x)
    assert any(layer._cache is not None for layer in cached.layers())
    before = _kept_arrays(bare)
    with ck.no_grad():
        y = bare.forward(x)
    np.testing.assert_array_equal(y, expected)
    for (name, a), b in zip(cached.state_dict().items(), bare.state_dict().values(), strict=True):
        np.testing.assert_array_equal(b, a, err_msg=name)  # batch norm's running statistics too
    assert [name for name, layer in bare.named_layers() if layer._cache is not None] == []
    assert _kept_arrays(bare) <= before
    with pytest.raises(RuntimeError, match=r"after a forward inside cnnkit.no_grad\(\)"):
        bare.backward(np.ones_like(y))


@pytest.mark.parametrize("name", LAYERS)
def test_layer_keeps_nothing_under_no_grad(name):
    make, shape = LAYERS[name]
    _check_inference(make, shape, training=False)
    _check_inference(make, shape, training=True)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "googlenet", "preact_resnet18"])
def test_zoo_model_keeps_nothing_under_no_grad(name):
    def make():
        return registry.get(name, num_classes=10, input_shape=(3, 32, 32), rng=rng())
    _check_inference(make, (2, 3, 32, 32), training=False)


def test_backward_after_no_grad_then_training_forward_works():
    layer = L.Conv2d(3, 4, 3, rng=rng())
    x = rng().standard_normal((2, 3, 5, 5)).astype(np.float32)
    with ck.no_grad():
        layer.forward(x)
    with pytest.raises(RuntimeError, match=r"Conv2d\(3->4.*no_grad\(\), which keeps no cache"):
        layer.backward(np.ones((2, 4, 3, 3), np.float32))
    y = layer.forward(x)
    assert layer.backward(np.ones_like(y)).shape == x.shape
    with pytest.raises(RuntimeError, match="backward was called before forward"):
        layer.backward(np.ones_like(y))


# -- memory --------------------------------------------------------------------------------------------------

def test_resnet18_inference_peak_memory():
    """Batch 8 at 224: the peak of a no_grad forward stays below 1.3 x (the two largest activations + the
    weights). Scratch memory off, so every temporary of every kernel counts (the default keeps reusable
    scratch arrays; docs/performance.md gives both numbers)."""
    model = registry.get("resnet18", rng=rng()).eval()
    x = rng().standard_normal((8, 3, 224, 224), dtype=np.float32)
    weights = sum(a.nbytes for a in model.state_dict().values())
    outputs = []
    for _, layer in model.named_layers():  # record each layer's output size (the hook keeps no array)
        if not layer.named_children():
            def recording(inp, forward=layer.forward):
                y = forward(inp)
                outputs.append(y.nbytes)
                return y
            layer.forward = recording
    with ck.runtime.configured(scratch=False), ck.no_grad():
        tracemalloc.start()
        try:
            y = model.forward(x)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    largest_two = sum(sorted(outputs)[-2:])
    assert y.shape == (8, 1000)
    # the input and the weights were allocated before tracing: the traced peak is everything else
    mib = [round(v / 2**20, 1) for v in (peak, largest_two, weights)]
    assert weights + peak < 1.3 * (largest_two + weights), mib


# -- the library's inference paths use it --------------------------------------------------------------------

class GradProbe(L.Layer):
    """Records whether a backward could follow each forward; a 2-class linear readout of the mean pixel."""

    def __init__(self):
        self.seen = []

    def forward(self, x):
        self.seen.append(ck.is_grad_enabled())
        m = x.reshape(len(x), -1).mean(axis=1, keepdims=True)
        return np.concatenate([m, -m], axis=1).astype(x.dtype)

    def output_shape(self, input_shape):
        return (input_shape[0], 2)


def test_evaluate_extract_features_and_viz_run_without_grad():
    from cnnkit.train import evaluate
    from cnnkit.transfer import extract_features
    from cnnkit.viz._run import capture, scores

    probe = GradProbe()
    model = L.Sequential(L.Conv2d(1, 1, 1, rng=rng()), probe)
    x = rng().standard_normal((4, 1, 6, 6)).astype(np.float32)
    evaluate(model, [(x, np.array([0, 1, 0, 1]))])
    extract_features(model, x, progress=False)
    scores(model, x)
    capture(model, x[:1], "0")
    assert probe.seen == [False] * 4
    model.forward(x)
    assert probe.seen[-1] is True and ck.is_grad_enabled()


# -- per thread, as PyTorch's grad mode ----------------------------------------------------------------------

def test_grad_mode_is_per_thread():
    """A thread inside no_grad and one outside, running at once, each get what their own mode says."""
    import threading

    x = np.array([-1.0, 2.0])
    inside, outside = threading.Barrier(2), {}

    def infer():
        with ck.no_grad():
            inside.wait()  # both threads are now running, this one inside no_grad
            outside["infer"] = (ck.is_grad_enabled(), ck.functional.relu(x)[1])
            inside.wait()

    def train():
        inside.wait()
        outside["train"] = (ck.is_grad_enabled(), ck.functional.relu(x)[1])
        inside.wait()

    threads = [threading.Thread(target=infer), threading.Thread(target=train)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outside["infer"] == (False, None)
    assert outside["train"][0] is True and outside["train"][1] is not None
    with ck.no_grad():  # a thread started inside the block has its own mode: the usual one
        seen = []
        t = threading.Thread(target=lambda: seen.append(ck.is_grad_enabled()))
        t.start()
        t.join()
        assert seen == [True] and not ck.is_grad_enabled()
    assert ck.is_grad_enabled()


def test_thread_slices_follow_the_calling_threads_mode():
    """train.parallel.Threads runs slices on its own threads: under no_grad they keep no cache either."""
    from cnnkit.train.parallel.threads import SplitStep

    model = L.Sequential(L.Linear(3, 4, rng=rng()), L.ReLU(), L.Linear(4, 2, rng=rng()))
    step = SplitStep(model, ck.losses.CrossEntropyLoss(), threads=2)
    x, y = rng().standard_normal((6, 3)).astype(np.float32), np.array([0, 1, 0, 1, 1, 0])
    try:
        with ck.no_grad():
            step.forward(x, y)
        assert all(layer._cache is None for replica in step.replicas for layer in replica.layers())
        step.forward(x, y)
        assert all(replica.layers()[1]._cache is not None for replica in step.replicas)
    finally:
        step.close()


def test_relu_under_no_grad_skips_its_mask_and_computes_the_same():
    """The fast ReLU's inference forward makes no mask (a pass over memory less): same y, bit for bit,
    small and chunked, NaN kept; the reference kernel and grad mode keep the usual forward."""
    from cnnkit.fast import activation, dispatch

    r = rng()
    for shape in [(3, 5), (8, 64, 32, 32)]:  # below and above the chunking threshold
        x = r.standard_normal(shape).astype(np.float32)
        x.flat[0] = np.nan
        y, _ = F.relu(x)
        with ck.no_grad():
            assert dispatch.kernel("relu").forward is activation.relu_inference
            assert dispatch.kernel("relu", "reference").forward is not activation.relu_inference
            y0, cache = F.relu(x)
        assert cache is None and np.array_equal(y, y0, equal_nan=True)
    assert dispatch.kernel("relu").forward is activation.relu


@pytest.mark.parametrize("algorithm", ["winograd", "winograd2"])
@pytest.mark.parametrize("shape, padding", [((3, 8, 9, 7), 1), ((2, 64, 16, 16), 1), ((2, 4, 6, 6), 0)])
def test_winograd_under_no_grad_keeps_no_tiles_and_computes_the_same(algorithm, shape, padding):
    """Winograd's inference forward makes the transformed input tiles part by part in scratch memory
    instead of keeping them for dweight: same y bit for bit, no cache; training keeps the usual forward."""
    from cnnkit.fast import dispatch, winograd

    r = rng()
    x, w, b = r.standard_normal(shape), r.standard_normal((5, shape[1], 3, 3)), r.standard_normal(5)
    x, w, b = x.astype(np.float32), w.astype(np.float32), b.astype(np.float32)
    y, cache = F.conv2d(x, w, b, padding=padding, algorithm=algorithm)
    assert cache.data["V"] is not None
    inference = {"winograd": winograd.conv2d_inference, "winograd2": winograd.conv2d_tile2_inference}
    with ck.no_grad():
        assert dispatch.conv(x, w, 1, padding, 1, 1, algorithm=algorithm).forward is inference[algorithm]
        y0, cache = F.conv2d(x, w, b, padding=padding, algorithm=algorithm)
    assert cache is None and np.array_equal(y, y0)
    assert dispatch.conv(x, w, 1, padding, 1, 1, algorithm=algorithm).forward is not inference[algorithm]


@pytest.mark.parametrize("nd, kwargs", [(2, dict(kernel_size=2, fit="crop")),
                                         (2, dict(kernel_size=3, stride=2, padding=1)),
                                         (2, dict(kernel_size=3, stride=2, fit="pad")),
                                         (1, dict(kernel_size=3, stride=1, dilation=2)),
                                         (3, dict(kernel_size=2, fit="crop"))])
def test_max_pool_under_no_grad_skips_its_switches_and_computes_the_same(nd, kwargs):
    """Max pooling's inference forward keeps no switches (one maximum per tap): same y bit for bit, ties
    and NaN included; return_indices still gives the indices."""
    from cnnkit.fast import dispatch, pool

    x = rng().integers(0, 3, (4, 3, *(9,) * nd)).astype(np.float32)  # many ties
    x.flat[5] = np.nan
    y, _ = F.max_poolnd(x, nd=nd, **kwargs)
    with ck.no_grad():
        assert dispatch.kernel("max_poolnd").forward is pool.max_poolnd_inference
        y0, cache = F.max_poolnd(x, nd=nd, **kwargs)
    assert cache is None and np.array_equal(y, y0, equal_nan=True)
    layer = L.MaxPool2d(2, return_indices=True)
    x2 = rng().standard_normal((2, 3, 6, 6)).astype(np.float32)
    expected = layer(x2)
    with ck.no_grad():
        got = layer(x2)
    assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))


@pytest.mark.parametrize("shape", [(2, 4, 5, 5), (8, 64, 32, 32)])  # below and above the chunking threshold
@pytest.mark.parametrize("activation", [None, "relu", "relu-reference", "relu6"])
def test_residual_under_no_grad_sums_in_place_with_its_relu_and_computes_the_same(shape, activation):
    """Under no_grad a Residual adds into its body's fresh output and applies a ReLU in the same pass
    (F.add): the same numbers bit for bit as in training, NaN kept; the input and a shortcut's output
    are never written (an Identity body returns x itself)."""
    r = rng()
    C = shape[1]
    act = {None: None, "relu": L.ReLU(), "relu-reference": L.ReLU(algorithm="reference"),
           "relu6": L.ReLU6()}[activation]
    x = r.standard_normal(shape).astype(np.float32)
    x.flat[3] = np.nan
    for body, shortcut in [(L.Conv2d(C, C, 3, padding=1, rng=rng()), None),
                           (L.Conv2d(C, C, 3, padding=1, rng=rng()), L.Conv2d(C, C, 1, rng=rng())),
                           (L.Identity(), None), (L.Identity(), L.Identity())]:
        block = L.Residual(body, shortcut, activation=act)
        expected = block(x)
        x_before = x.copy()
        with ck.no_grad():
            got = block(x)
        assert np.array_equal(got, expected, equal_nan=True), (body, shortcut)
        assert np.array_equal(x, x_before, equal_nan=True)  # x untouched, also when the sum is x + x


def test_add_is_the_reference_sum_bit_for_bit():
    """The fast add (chunked on threads, ReLU fused) equals the textbook's a + b and max(0, a + b)."""
    from cnnkit.fast import activation as fast
    from cnnkit.reference import activation as reference

    r = rng()
    for shape in [(3, 5), (8, 64, 32, 32)]:
        a, b = (r.standard_normal(shape).astype(np.float32) for _ in range(2))
        a.flat[0] = np.nan
        for relu in (False, True):
            expected, _ = reference.add(a, b, relu=relu)
            assert np.array_equal(fast.add(a, b, relu=relu)[0], expected, equal_nan=True)
            inplace = a.copy()
            assert fast.add(inplace, b, out=inplace, relu=relu)[0] is inplace
            assert np.array_equal(inplace, expected, equal_nan=True)
            assert np.array_equal(F.add(a, b, relu=relu)[0], expected, equal_nan=True)


def test_gradients_are_made_when_first_used():
    """A model that only infers holds its weights, not a zero gradient beside each (twice the memory)."""
    tracemalloc.start()
    try:
        model = registry.get("resnet18", rng=rng()).eval()
        with ck.no_grad():
            model.forward(rng().standard_normal((1, 3, 64, 64), dtype=np.float32))
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    weights = sum(a.nbytes for a in model.state_dict().values())
    assert weights < held < 1.5 * weights, [round(v / 2**20, 1) for v in (held, weights)]
    p = next(iter(model.parameters()))
    assert p.grad.shape == p.data.shape and p.grad.dtype == p.data.dtype and not p.grad.any()
    assert p.grad is p.grad  # made once, then accumulated into
    p.grad = np.ones_like(p.data)
    model.zero_grad()
    assert not p.grad.any()
