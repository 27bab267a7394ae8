"""Every zoo model gives the same outputs and gradients on the reference kernels as on the default dispatch,
and reference mode starts no thread and takes no scratch memory."""

import threading

import numpy as np
import pytest

import cnnkit as ck
from cnnkit import models, runtime
from cnnkit.layers import Dropout

SIZES = (28, 32, 64, 96, 128, 160, 224, 227)  # the smallest a model accepts keeps this quick; 227: alexnet_v1


def _float64(net):
    """The network in float64: rounding then differs by ~1e-12 between kernels, so any real difference in
    a kernel shows (in float32 a deep net's gradients amplify the kernels' different summation orders)."""
    for p in net.parameters():
        p.data, p.grad = p.data.astype(np.float64), p.grad.astype(np.float64)
    for _, layer in net.named_layers():
        for buffer in getattr(layer, "buffer_names", ()):
            value = getattr(layer, buffer, None)
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                setattr(layer, buffer, value.astype(np.float64))
    return net


def _step(net, x, dy):
    net.zero_grad()
    y = net.forward(x)
    dx = net.backward(dy)
    return y, dx, {name: p.grad.copy() for name, p in net.named_parameters()}


def _smallest(name, rng):
    """The model built for the smallest input it accepts (the zoo sizes its classifier to input_shape; an
    adaptive head of 1x1 keeps VGG's and AlexNet's classifiers small)."""
    for size in SIZES:
        for channels in (1, 3):
            try:
                try:
                    net = models.get(name, input_shape=(channels, size, size), rng=rng, avgpool_size=(1, 1))
                except TypeError:  # a model without an adaptive head
                    net = models.get(name, input_shape=(channels, size, size), rng=rng)
                return net, net.output_shape((2, channels, size, size)), (2, channels, size, size)
            except (ck.ShapeError, ValueError):
                continue
    raise AssertionError(f"{name}: no input size in {SIZES} fits")


@pytest.mark.parametrize("name, training", [*((name, False) for name in models.names()),
                                            ("resnet18", True), ("cifar_net", True)])
def test_reference_mode_equals_the_dispatch_forward_and_backward(name, training):
    """In float64 every kernel agrees with its reference to rounding (1e-16 measured), so any wrong number
    shows. Evaluation mode: dropout draws no masks and batch norm uses fixed statistics (in training mode
    a deep ResNet normalising 2 examples on 1x1 maps amplifies rounding to 1e-6: two shallower models
    check batch norm's batch statistics)."""
    rng = np.random.default_rng(0)
    net, out_shape, in_shape = _smallest(name, rng)
    net = _float64(net)
    net.train(training)
    if training:
        assert not any(isinstance(layer, Dropout) for _, layer in net.named_layers())
    x, dy = rng.standard_normal(in_shape), rng.standard_normal(out_shape)
    fast = _step(net, x, dy)
    with ck.reference_mode():
        ref = _step(net, x, dy)
    for what, ours, theirs in (("y", fast[0], ref[0]), ("dx", fast[1], ref[1]),
                               *((f"d{k}", fast[2][k], ref[2][k]) for k in fast[2])):
        scale = max(float(np.abs(theirs).max()), 1e-12)
        assert ours.dtype == theirs.dtype == np.float64, what
        np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-10 * scale, err_msg=f"{name} {what}")


def test_reference_mode_starts_no_thread_and_takes_no_scratch_memory():
    """With two elementwise threads configured, the dispatch would use them and its scratch buffers; the
    reference kernels use neither. Run in a fresh thread-free state: no pool exists yet in this check."""
    runtime.clear_workspaces()
    net = ck.Sequential(ck.Conv2d(3, 64, 3, padding=1), ck.BatchNorm2d(64), ck.ReLU(), ck.Conv2d(64, 64, 3),
                        ck.MaxPool2d(2), ck.Conv2d(64, 8, 1), ck.GlobalAvgPool2d())
    x = np.random.default_rng(1).standard_normal((16, 3, 32, 32)).astype(np.float32)
    before = threading.active_count()
    with runtime.configured(threads=2), ck.reference_mode():
        y = net.forward(x)
        net.backward(np.ones_like(y))
        assert threading.active_count() == before
        assert runtime.scratch_bytes() == 0
    with runtime.configured(threads=2):  # the same network on the dispatch: scratch memory, threads
        y = net.forward(x)
        net.backward(np.ones_like(y))
        assert runtime.scratch_bytes() > 0
    runtime.clear_workspaces()
