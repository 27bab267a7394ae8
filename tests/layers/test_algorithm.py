"""algorithm= on every layer whose op has a reference and a fast kernel: the textbook kernel on request, the
same numbers as the default, kept by config(), and a clear error for an unknown name."""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.layers import from_config

LAYERS = [
    lambda a: ck.MaxPool2d(3, 2, padding=1, algorithm=a),
    lambda a: ck.MaxPool1d(3, algorithm=a),
    lambda a: ck.AvgPool2d(3, count_include_pad=False, algorithm=a),
    lambda a: ck.LPPool2d(2, 3, algorithm=a),
    lambda a: ck.Blur2d(3, fit="crop", algorithm=a),
    lambda a: ck.GlobalAvgPool2d(algorithm=a),
    lambda a: ck.GlobalMaxPool2d(algorithm=a),
    lambda a: ck.BatchNorm2d(3, algorithm=a),
    lambda a: ck.ReLU(algorithm=a),
    lambda a: ck.ReLU6(algorithm=a),
    lambda a: ck.LeakyReLU(0.2, algorithm=a),
    lambda a: ck.ELU(algorithm=a),
    lambda a: ck.Sigmoid(algorithm=a),
    lambda a: ck.Tanh(algorithm=a),
    lambda a: ck.Softmax(algorithm=a),
]


def _kernel_module(layer):
    """The module of the backward the layer's last forward stored: cnnkit.reference.* or cnnkit.fast.*."""
    cache = layer._cache
    cached = cache[0] if isinstance(cache, tuple) and not hasattr(cache, "backward") else cache
    return cached.backward.__module__


@pytest.mark.parametrize("make", LAYERS, ids=lambda m: type(m("auto")).__name__)
def test_reference_kernel_on_request_gives_the_same_numbers(make):
    rng = np.random.default_rng(0)
    fast, ref = make("auto"), make("reference")
    x = rng.standard_normal((2, 3, 9, 9) if type(fast).__name__ != "MaxPool1d" else (2, 3, 9))
    y_fast, y_ref = fast(x), ref(x)
    assert _kernel_module(ref).startswith("cnnkit.reference.")
    assert _kernel_module(fast).startswith("cnnkit.fast.")
    dy = rng.standard_normal(y_fast.shape)
    np.testing.assert_allclose(y_ref, y_fast, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref.backward(dy), fast.backward(dy), rtol=1e-10, atol=1e-12)
    again = from_config(ref.config())
    assert again.algorithm == "reference" and "algorithm='reference'" in repr(ref)
    assert "algorithm" not in repr(fast)


@pytest.mark.parametrize("make", LAYERS, ids=lambda m: type(m("auto")).__name__)
def test_an_unknown_algorithm_names_the_choices(make):
    name = type(make("auto")).__name__
    with pytest.raises(ValueError, match=rf"{name}: Invalid algorithm 'winograd', should be one of "
                                         r"\('auto', 'reference', 'fast'\)"):
        make("winograd")
