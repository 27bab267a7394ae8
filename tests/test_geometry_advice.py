"""Every fix a "does not fit" ShapeError suggests is the literal argument that works: each one is applied
to the layer (or call) that raised, and the result must no longer raise. The same holds through
analysis.check and build, which carry the layers' messages."""

from __future__ import annotations

import ast
import functools
import itertools
import re

import numpy as np
import pytest

from cnnkit import ShapeError, build
from cnnkit.analysis import check
from cnnkit.functional import avg_pool2d, conv2d, max_pool2d
from cnnkit.geometry import output_size
from cnnkit.layers import (
    AvgPool2d,
    Blur2d,
    Conv1d,
    Conv2d,
    Conv3d,
    LocallyConnected2d,
    LPPool2d,
    MaxPool1d,
    MaxPool2d,
    ReLU,
    Sequential,
)

_ARGUMENT = re.compile(r"\b(padding|stride|fit)=")


def suggestions(message: str) -> list[dict]:
    """The keyword arguments a message suggests after 'use', each parsed as a Python literal."""
    advice = message[message.index("; use ") + len("; use "):]
    found = []
    for match in _ARGUMENT.finditer(advice):
        rest, depth, end = advice[match.end():], 0, 0
        # The literal ends at the first space or comma outside brackets: "((0, 1), (0, 1)) (one ...".
        while end < len(rest) and not (depth == 0 and rest[end] in " ,"):
            depth += {"(": 1, ")": -1}.get(rest[end], 0)
            end += 1
        found.append({match.group(1): ast.literal_eval(rest[:end].rstrip("."))})
    return found


def assert_every_fix_works(make, shape, raises=ShapeError):
    """make(**override) builds the layer; each suggested override must make output_shape pass."""
    with pytest.raises(raises) as info:
        make().output_shape(shape)
    fixes = suggestions(str(info.value))
    assert {"fit": "crop"} in fixes and {"fit": "pad"} in fixes
    for fix in fixes:
        try:
            make(**fix).output_shape(shape)
        except ShapeError as e:
            pytest.fail(f"the advice {fix} of\n  {info.value}\nstill raises:\n  {e}")
    return str(info.value), fixes


def test_the_showcase_error_suggests_a_pair_per_axis_that_works():
    message, fixes = assert_every_fix_works(lambda **kw: Conv2d(3, 16, 3, **{"stride": 2, **kw}),
                                            (1, 3, 10, 10))
    assert "use padding=((0, 1), (0, 1)) (one (before, after) pair per axis) or stride=1, or fit='crop' " \
           "to drop the last rows and columns like PyTorch" in message
    # PyTorch's reading of padding=(0, 1) is (H, W): the old advice raised again.
    with pytest.raises(ShapeError, match="is not an integer"):
        Conv2d(3, 16, 3, stride=2, padding=(0, 1)).output_shape((1, 3, 10, 10))
    assert fixes[0] == {"padding": ((0, 1), (0, 1))}


def test_even_padding_is_advised_as_an_int_or_one_int_per_axis():
    _, fixes = assert_every_fix_works(lambda **kw: Conv2d(1, 1, 3, **{"stride": 3, **kw}), (1, 1, 7, 7))
    assert fixes[0] == {"padding": 1}          # (7 - 3 + 2)/3 + 1 = 3 on both axes
    _, fixes = assert_every_fix_works(lambda **kw: Conv2d(1, 1, 3, **{"stride": 3, **kw}), (1, 1, 7, 9))
    assert fixes[0] == {"padding": (1, 0)}     # W = 9 already fits: (9 - 3)/3 + 1 = 3


LAYERS = {
    "Conv1d": (lambda k, s, p, **kw: Conv1d(2, 3, k, **{"stride": s, "padding": p, **kw}), 1),
    "Conv2d": (lambda k, s, p, **kw: Conv2d(2, 3, k, **{"stride": s, "padding": p, **kw}), 2),
    "Conv3d": (lambda k, s, p, **kw: Conv3d(2, 3, k, **{"stride": s, "padding": p, **kw}), 3),
    "dilated Conv2d": (lambda k, s, p, **kw: Conv2d(2, 3, k, **{"stride": s, "padding": p, "dilation": 2,
                                                                 **kw}), 2),
    "MaxPool1d": (lambda k, s, p, **kw: MaxPool1d(k, **{"stride": s, "padding": min(p, k // 2), **kw}), 1),
    "MaxPool2d": (lambda k, s, p, **kw: MaxPool2d(k, **{"stride": s, "padding": min(p, k // 2), **kw}), 2),
    "AvgPool2d": (lambda k, s, p, **kw: AvgPool2d(k, **{"stride": s, "padding": min(p, k // 2), **kw}), 2),
    "LPPool2d": (lambda k, s, p, **kw: LPPool2d(2, k, **{"stride": s, **kw}), 2),
}


@pytest.mark.parametrize("name", LAYERS)
def test_every_fix_works_for_every_window_layer(name):
    make, nd = LAYERS[name]
    tried = 0
    for k, s, p, n, m in itertools.product((1, 2, 3, 5), (2, 3, 4), (0, 1, 2), (9, 10, 12, 15), (0, 1)):
        if s > k + 1 and "Pool" in name:
            continue  # a pool's stride beyond its window skips inputs; PyTorch allows it, nobody uses it
        shape = (1, 2, *([n] * (nd - 1) if nd > 1 else []), n + m)[: 2 + nd]
        layer = make(k, s, p)
        try:
            layer.output_shape(shape)
        except ShapeError as e:
            if "is not an integer" not in str(e):
                continue  # a kernel larger than the input: not a tiling question
            assert_every_fix_works(functools.partial(make, k, s, p), shape)
            tried += 1
    assert tried > 10


def test_a_layer_without_a_padding_argument_is_not_offered_one():
    message, fixes = assert_every_fix_works(lambda **kw: Blur2d(4, **kw), (1, 4, 10, 10))
    assert "padding" not in message
    _, fixes = assert_every_fix_works(lambda **kw: LPPool2d(2, 2, **kw), (1, 4, 7, 7))
    assert {"stride": 1} in fixes and all("padding" not in fix for fix in fixes)


def test_locally_connected_checks_at_construction_and_its_fixes_work():
    make = lambda **kw: LocallyConnected2d(2, 3, 3, **{"stride": 2, "input_size": (10, 10), **kw})  # noqa: E731
    with pytest.raises(ShapeError) as info:
        make()
    for fix in suggestions(str(info.value)):
        make(**fix)


def test_functional_calls_take_the_same_advice():
    x = np.zeros((1, 2, 10, 10), np.float32)
    w = np.zeros((3, 2, 3, 3), np.float32)
    for call in (lambda **kw: conv2d(x, w, **{"stride": 2, **kw}),
                 lambda **kw: max_pool2d(x, 3, **{"stride": 2, **kw}),
                 lambda **kw: avg_pool2d(x, 3, **{"stride": 2, **kw})):
        with pytest.raises(ShapeError) as info:
            call()
        for fix in suggestions(str(info.value)):
            call(**fix)


def test_output_size_advice_is_for_its_one_axis():
    with pytest.raises(ShapeError) as info:
        output_size(10, 3, stride=2)
    assert "use padding=(0, 1) (before, after on W) or stride=1" in str(info.value)
    for fix in suggestions(str(info.value)):
        output_size(10, 3, **{"stride": 2, **fix})


def test_check_advice_works_on_the_layer_it_names():
    def net(**first):
        return Sequential(Conv2d(3, 8, 3, **{"stride": 2, **first}), ReLU(), Conv2d(8, 8, 3, padding=1))

    report = check(net(), (3, 34, 34))
    assert report.names() == ["0"]
    message = str(report.problems[0])
    assert "use padding=((0, 1), (0, 1))" in message and "The same holds for W." in message
    for fix in suggestions(message):
        assert check(net(**fix), (3, 34, 34)).ok, fix


def test_check_advice_fixes_both_axes_when_only_one_is_named():
    report = check(Conv2d(1, 1, 3, stride=2), (1, 33, 34))   # H = 33 fits, W = 34 does not
    message = report.problems[0].message
    assert "use padding=((0, 0), (0, 1))" in message and "drop the last columns like" in message
    for fix in suggestions(message):
        assert check(Conv2d(1, 1, 3, **{"stride": 2, **fix}), (1, 33, 34)).ok, fix


def test_build_errors_suggest_what_works_for_the_spec_and_for_the_layer():
    spec = "INPUT -> CONV5-32/2 -> FC"
    with pytest.raises(ShapeError) as info:
        build(spec, (3, 32, 32), 10)
    message = str(info.value)
    assert "(for the whole spec: build(..., fit='crop'))" in message
    build(spec, (3, 32, 32), 10, fit="crop")
    build(spec, (3, 32, 32), 10, fit="pad")
    # The layer named in the message, Conv2d(3->32, kernel_size=5, stride=2, padding=2), takes the rest.
    assert "Conv2d(3->32, kernel_size=5, stride=2, padding=2)" in message
    for fix in suggestions(message.split(" (for the whole spec")[0]):
        Conv2d(3, 32, 5, **{"stride": 2, "padding": 2, **fix}).output_shape((1, 3, 32, 32))
