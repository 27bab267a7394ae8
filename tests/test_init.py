"""cnnkit.init: fans as PyTorch computes them, the variance each rule promises, seeding, dtype, errors."""

import math

import numpy as np
import pytest

from cnnkit import init

SHAPES = [(300, 400), (64, 3, 7, 7), (32, 16, 3, 3), (8, 4, 5), (16, 1, 3, 3, 3)]


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_match_pytorch(shape, torch):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.fans(shape) == expected


# (initializer, kwargs, the standard deviation the paper's rule gives for shape (K, C, F, F))
def _std_rules(shape):
    fan_in, fan_out = init.fans(shape)
    return [
        (init.kaiming_normal, {}, math.sqrt(2 / fan_in)),
        (init.kaiming_normal, {"mode": "fan_out"}, math.sqrt(2 / fan_out)),
        (init.kaiming_uniform, {}, math.sqrt(2 / fan_in)),
        (init.kaiming_uniform, {"gain": 1.0, "mode": "fan_out"}, math.sqrt(1 / fan_out)),
        (init.xavier_normal, {}, math.sqrt(2 / (fan_in + fan_out))),
        (init.xavier_uniform, {"gain": 2.0}, 2 * math.sqrt(2 / (fan_in + fan_out))),
    ]


@pytest.mark.parametrize("shape", [(256, 128, 3, 3), (500, 1000)])
def test_each_rule_gives_its_variance(shape):
    """He: Var = gain^2 / fan; Glorot: Var = gain^2 * 2 / (fan_in + fan_out). With >= 295k draws the sample
    std is within 1% of the rule (its standard error is about 0.2%)."""
    for fn, kwargs, std in _std_rules(shape):
        w = fn(shape, rng=np.random.default_rng(0), **kwargs)
        assert w.shape == shape and w.dtype == np.float32
        assert abs(w.mean()) < 0.01 * std, fn.__name__
        assert w.std() == pytest.approx(std, rel=0.01), (fn.__name__, kwargs)


def test_uniform_bounds_are_exact():
    shape = (64, 32, 3, 3)
    b = math.sqrt(2) * math.sqrt(3 / (32 * 9))
    w = init.kaiming_uniform(shape, rng=np.random.default_rng(1))
    assert np.abs(w).max() <= b and np.abs(w).max() > 0.999 * b
    b = math.sqrt(6 / (32 * 9 + 64 * 9))
    w = init.xavier_uniform(shape, rng=np.random.default_rng(1))
    assert np.abs(w).max() <= b and np.abs(w).max() > 0.999 * b


def test_matches_torch_bounds_for_the_same_rule(torch):
    """torch.nn.init.xavier_uniform_ and kaiming_uniform_(nonlinearity='relu') draw within the same bounds."""
    shape = (64, 32, 3, 3)
    t = torch.empty(shape)
    torch.manual_seed(0)
    torch.nn.init.kaiming_uniform_(t, nonlinearity="relu")
    ours = init.kaiming_uniform(shape, rng=np.random.default_rng(0))
    assert abs(np.abs(ours).max() - t.abs().max().item()) < 1e-3 * t.abs().max().item()
    torch.nn.init.xavier_uniform_(t)
    ours = init.xavier_uniform(shape, rng=np.random.default_rng(0))
    assert abs(np.abs(ours).max() - t.abs().max().item()) < 1e-3 * t.abs().max().item()


def test_default_parameters_are_pytorchs_conv_default():
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias (PyTorch's Conv2d.reset_parameters)."""
    w, b = init.default_parameters((16, 8, 3, 3), (16,), rng=np.random.default_rng(2))
    bound = 1 / math.sqrt(8 * 9)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert init.default_parameters((4, 3), None)[1] is None


@pytest.mark.parametrize("fn", [init.kaiming_normal, init.kaiming_uniform, init.xavier_normal,
                                init.xavier_uniform])
def test_seeded_reproducible_and_dtype_kept(fn):
    a = fn((5, 4, 3, 3), rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, fn((5, 4, 3, 3), rng=np.random.default_rng(3)))
    assert not np.array_equal(a, fn((5, 4, 3, 3), rng=np.random.default_rng(4)))
    assert fn((5, 4), rng=np.random.default_rng(3), dtype=np.float64).dtype == np.float64


def test_global_numpy_state_is_never_used():
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    init.kaiming_normal((10, 10))
    init.default_parameters((10, 10), (10,))
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_errors():
    with pytest.raises(ValueError, match=r"Received shape=\(5,\): fans need at least 2 dimensions"):
        init.fans((5,))
    with pytest.raises(ValueError, match=r"Invalid mode 'fan_avg', should be one of 'fan_in', 'fan_out'"):
        init.kaiming_normal((3, 3), mode="fan_avg")
