"""Dispatch by measurement (cnnkit.fast.measure): the choice, its cache file, and bitwise resume.

Which kernel is "faster" is decided by a fake clock that the kernels themselves advance, never by real
timings: the tests say what the dispatch does with measurements, not how fast anything is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import cnnkit as ck
from cnnkit import runtime
from cnnkit.fast import dispatch, measure
from cnnkit.fast.dispatch import CONV_KERNELS, Kernel
from cnnkit.fast.tuning import MEASURE_IMAGES
from cnnkit.functional import conv2d, convnd_backward


class FakeClock:
    """Seconds that pass only when a kernel says so (see slowed)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch, tmp_path):
    """Measurement on, a fake clock, the cache in tmp_path, and an empty memory; all put back afterwards."""
    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    fake = FakeClock()
    monkeypatch.setattr(measure, "clock", fake)
    measure.reset()
    before = runtime.configure(dispatch="measure")
    yield fake
    runtime.configure(dispatch=before["dispatch"])
    measure.reset()


def slowed(monkeypatch, clock, costs: dict[str, float]):
    """Replace each kernel of ``costs`` by itself plus that many fake seconds per forward (and per backward);
    returns the list of (kernel, pass) calls made."""
    calls = []
    for name, cost in costs.items():
        kernel = CONV_KERNELS[name]

        def forward(*args, kernel=kernel, cost=cost, **kwargs):
            calls.append((kernel.name, "forward"))
            clock.now += cost
            return kernel.forward(*args, **kwargs)

        def backward(*args, kernel=kernel, cost=cost, **kwargs):
            calls.append((kernel.name, "backward"))
            clock.now += cost
            return kernel.backward(*args, **kwargs)

        monkeypatch.setitem(CONV_KERNELS, name, Kernel(name, forward, backward))
    return calls


def arrays(x_shape=(2, 4, 8, 8), w_shape=(4, 4, 3, 3), seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal(x_shape, dtype=np.float32), r.standard_normal(w_shape, dtype=np.float32)


# -- the choice ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fast", ["im2col", "winograd", "winograd2"])
def test_a_slow_kernel_is_never_chosen_when_a_faster_one_exists(monkeypatch, clock, fast):
    costs = {"im2col": 1.0, "winograd": 1.0, "winograd2": 1.0, fast: 0.001}
    slowed(monkeypatch, clock, costs)
    x, w = arrays()
    kernel = dispatch.conv(x, w, 1, 1, 1, 1)
    assert kernel.name == fast
    entry, choice = next(iter(json.loads(measure.cache_path().read_text())["choices"].items()))
    assert entry.startswith("conv train x=2x4x8x8 w=4x4x3x3 stride=1x1 pad=1-1,1-1") and "float32 C" in entry
    assert choice["kernel"] == fast and choice["seconds"][fast] < min(choice["seconds"].values()) + 1e-9


def test_depthwise_and_1x1_layers_choose_among_their_own_kernels(monkeypatch, clock):
    slowed(monkeypatch, clock, {"im2col": 0.001, "winograd": 1.0, "winograd2": 1.0, "depthwise": 1.0,
                                "pointwise": 1.0})
    x, w = arrays(w_shape=(4, 1, 3, 3))
    assert dispatch.conv(x, w, 1, 1, 1, 4).name == "im2col"  # the rules say depthwise
    x, w = arrays(w_shape=(6, 4, 1, 1))
    assert dispatch.conv(x, w, 1, 0, 1, 1).name == "pointwise"  # one kernel can compute it: nothing timed
    assert len(json.loads(measure.cache_path().read_text())["choices"]) == 1


def test_a_large_batch_is_timed_on_its_first_images_and_named_whole(monkeypatch, clock):
    seen = []
    for name, kernel in list(CONV_KERNELS.items()):
        def forward(x, *args, kernel=kernel, **kwargs):
            seen.append((kernel.name, len(x)))
            return kernel.forward(x, *args, **kwargs)
        monkeypatch.setitem(CONV_KERNELS, name, Kernel(name, forward, kernel.backward))
    x, w = arrays(x_shape=(MEASURE_IMAGES + 5, 4, 6, 6))
    with ck.no_grad():
        dispatch.conv(x, w, 1, 1, 1, 1)
    assert {n for _, n in seen} == {MEASURE_IMAGES} and {k for k, _ in seen} == {"im2col", "winograd",
                                                                                   "winograd2"}
    [entry] = json.loads(measure.cache_path().read_text())["choices"]
    assert entry.startswith(f"conv infer x={MEASURE_IMAGES + 5}x4x6x6 ")


def test_each_entry_is_measured_once_and_then_read_from_the_file(monkeypatch, clock):
    calls = slowed(monkeypatch, clock, {"im2col": 1.0, "winograd": 0.001, "winograd2": 1.0})
    x, w = arrays()
    assert dispatch.conv(x, w, 1, 1, 1, 1).name == "winograd"
    timed = len(calls)
    assert timed > 3 and dispatch.conv(x, w, 1, 1, 1, 1).name == "winograd" and len(calls) == timed
    measure.reset()  # a new process: the choice comes from the file, whatever the clock would say now
    slowed(monkeypatch, clock, {"winograd": 5.0})
    assert dispatch.conv(x, w, 1, 1, 1, 1).name == "winograd" and len(calls) == timed


def test_a_smaller_batch_of_a_measured_layer_is_not_measured_again(monkeypatch, clock):
    """An epoch's last, smaller batch takes the choice made for the full batch; a larger batch, another
    layer or another mode is measured."""
    calls = slowed(monkeypatch, clock, {"im2col": 1.0, "winograd": 0.001, "winograd2": 1.0})
    x, w = arrays(x_shape=(4, 4, 8, 8))
    assert dispatch.conv(x, w, 1, 1, 1, 1).name == "winograd"
    timed = len(calls)
    assert dispatch.conv(x[:3], w, 1, 1, 1, 1).name == "winograd" and len(calls) == timed
    assert measure.record()["kernels"] and len(measure.record()["kernels"]) == 2  # both pinned on resume
    dispatch.conv(np.concatenate([x, x]), w, 1, 1, 1, 1)
    assert len(calls) > timed  # batch 8: measured
    timed = len(calls)
    dispatch.conv(x[:3, :, :6], w, 1, 1, 1, 1)  # another input size: another layer
    assert len(calls) > timed


def test_inference_times_the_forward_only_and_is_its_own_entry(monkeypatch, clock):
    calls = slowed(monkeypatch, clock, {"im2col": 0.001, "winograd": 1.0, "winograd2": 1.0})
    x, w = arrays()
    with ck.no_grad():
        assert dispatch.conv(x, w, 1, 1, 1, 1).name == "im2col"
    assert calls and {p for _, p in calls} == {"forward"}
    calls.clear()
    dispatch.conv(x, w, 1, 1, 1, 1)
    assert {p for _, p in calls} == {"forward", "backward"}
    entries = sorted(json.loads(measure.cache_path().read_text())["choices"])
    assert [e.split()[1] for e in entries] == ["infer", "train"]


def test_results_are_the_chosen_kernels(monkeypatch, clock):
    slowed(monkeypatch, clock, {"im2col": 1.0, "winograd": 1.0, "winograd2": 0.001})
    x, w = arrays()
    y, cache = conv2d(x, w, padding=1)
    expected, expected_cache = conv2d(x, w, padding=1, algorithm="winograd2")
    np.testing.assert_array_equal(y, expected)
    for a, b in zip(convnd_backward(y, cache), convnd_backward(y, expected_cache), strict=True):
        np.testing.assert_array_equal(a, b)


def test_forced_algorithms_reference_mode_and_rules_are_not_measured(monkeypatch, clock):
    calls = slowed(monkeypatch, clock, {"im2col": 1.0, "winograd": 0.001, "winograd2": 1.0})
    x, w = arrays()
    assert dispatch.conv(x, w, 1, 1, 1, 1, algorithm="im2col").name == "im2col"
    with ck.reference_mode():
        assert dispatch.conv(x, w, 1, 1, 1, 1).name == "reference"
    with runtime.configured(dispatch="rules"):
        assert dispatch.conv(x, w, 1, 1, 1, 1).name == "im2col"  # 4 channels: the rules say im2col
    assert calls == [] and not measure.cache_path().exists()


def test_worker_threads_use_a_known_choice_or_the_rules(monkeypatch, clock):
    calls = slowed(monkeypatch, clock, {"im2col": 1.0, "winograd": 0.001, "winograd2": 1.0})
    x, w = arrays()
    names = []
    worker = threading.Thread(target=lambda: names.append(dispatch.conv(x, w, 1, 1, 1, 1).name))
    worker.start(), worker.join()
    assert names == ["im2col"] and calls == []  # not measured off the main thread
    dispatch.conv(x, w, 1, 1, 1, 1)
    worker = threading.Thread(target=lambda: names.append(dispatch.conv(x, w, 1, 1, 1, 1).name))
    worker.start(), worker.join()
    assert names[-1] == "winograd"


def test_fastest_takes_turns_within_rounds_and_budget():
    clock, order = FakeClock(), []

    def cost(name, seconds):
        def run():
            order.append(name)
            clock.now += seconds
        return run

    name, best = measure.fastest({"a": cost("a", 2.0), "b": cost("b", 1.0), "c": cost("c", 1.0)},
                                 budget=100.0, rounds=3, timer=clock)
    assert name == "b" and best == {"a": 2.0, "b": 1.0, "c": 1.0}  # a tie goes to the first
    assert order == ["a", "b", "c"] * 4  # one untimed call each, then three rounds in turns
    order.clear()
    measure.fastest({"a": cost("a", 2.0), "b": cost("b", 1.0)}, budget=0.5, rounds=3, timer=clock)
    assert order == ["a", "b"] * 2  # the budget is spent after one round; one round always runs


# -- the cache file -----------------------------------------------------------------------------------------

def test_cache_file_round_trip(tmp_path):
    path = tmp_path / "sub" / "dispatch-x.json"
    choices = {"conv train x=1": {"kernel": "winograd", "seconds": {"winograd": 0.001, "im2col": 0.002}}}
    measure.write_choices(path, choices, info={"cpu": "test"})
    assert measure.read_choices(path) == choices
    data = json.loads(path.read_text())
    assert data["format"] == measure.FORMAT and data["machine"] == {"cpu": "test"}
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # the temporary file was renamed
    assert measure.read_choices(tmp_path / "missing.json") == {}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"choices": {"e": "winograd"}}', ""])
def test_a_corrupt_file_is_ignored_with_one_warning(tmp_path, text):
    measure.reset()
    path = tmp_path / "dispatch-x.json"
    path.write_text(text)
    with pytest.warns(RuntimeWarning, match=r"ignoring the dispatch cache .*dispatch-x.json.*safe to delete"):
        assert measure.read_choices(path) == {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert measure.read_choices(path) == {}  # one warning per file and process


def test_a_corrupt_file_is_measured_again_and_rewritten(monkeypatch, clock):
    slowed(monkeypatch, clock, {"im2col": 1.0, "winograd": 0.001, "winograd2": 1.0})
    path = measure.cache_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00\xff garbage")
    x, w = arrays()
    with pytest.warns(RuntimeWarning, match="ignoring the dispatch cache") as seen:
        assert dispatch.conv(x, w, 1, 1, 1, 1).name == "winograd"
    assert len(seen) == 1
    assert list(measure.read_choices(path).values())[0]["kernel"] == "winograd"


def test_the_key_names_the_machine_and_the_versions():
    info = measure.machine()
    assert set(info) == {"cpu", "flags", "blas", "numpy", "numpy_simd", "cnnkit"}
    assert info["numpy"] == np.__version__
    key = measure.cache_key(info)
    assert len(key) == 16 and measure.cache_key(dict(info)) == key == measure.cache_key()
    for field in info:
        assert measure.cache_key({**info, field: info[field] + " other"}) != key, field
    assert measure.cache_path({**info, "cnnkit": "9.9"}).name != measure.cache_path().name


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("CNNKIT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert measure.cache_path().parent == tmp_path / "cnnkit"
    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "mine"))
    assert measure.cache_path().parent == tmp_path / "mine"
    assert measure.cache_path().name.startswith("dispatch-") and measure.cache_path().suffix == ".json"


def test_configure_refuses_an_unknown_policy():
    with pytest.raises(ValueError, match=r"configure: Received dispatch='fastest'; expected one of "
                                         r"\('rules', 'measure'\)"):
        runtime.configure(dispatch="fastest")
    assert runtime.settings()["dispatch"] == "rules"


# -- checkpoints: the kernels a run used -----------------------------------------------------------------

def test_pins_hold_on_this_machine_only(monkeypatch, clock):
    slowed(monkeypatch, clock, {"im2col": 1.0, "winograd": 0.001, "winograd2": 1.0})
    x, w = arrays()
    assert measure.record() == {}  # nothing chosen yet: a checkpoint records nothing
    dispatch.conv(x, w, 1, 1, 1, 1)
    saved = measure.record()
    assert saved["machine"] == measure.cache_key() and list(saved["kernels"].values()) == ["winograd"]
    measure.reset()
    runtime.configure(dispatch="rules")
    unpin = measure.pin(saved)
    assert measure.pinning() and dispatch.conv(x, w, 1, 1, 1, 1).name == "winograd"  # even under the rules
    assert measure.record() == saved  # a resumed run's checkpoints record the pinned kernels again
    unpin()
    assert not measure.pinning() and dispatch.conv(x, w, 1, 1, 1, 1).name == "im2col"
    unpin = measure.pin({**saved, "machine": "another machine"})
    assert not measure.pinning() and dispatch.conv(x, w, 1, 1, 1, 1).name == "im2col"
    unpin()


def _fit(epochs, path, *, resume=None, seed=0):
    r = np.random.default_rng(seed)
    net = ck.Sequential(ck.Conv2d(1, 4, 3, padding=1, rng=r), ck.ReLU(), ck.Flatten(),
                        ck.Linear(256, 3, rng=r))
    data = np.random.default_rng(1)
    batches = [(data.standard_normal((8, 1, 8, 8), dtype=np.float32), data.integers(0, 3, 8))
               for _ in range(3)]
    optimizer = ck.optim.SGD(net, lr=0.1, momentum=0.9)
    ck.train.fit(net, ck.losses.SoftmaxCrossEntropy(), optimizer, batches, epochs=epochs, checkpoint=path,
                 resume=resume, quiet=True)
    return net


def test_resume_uses_the_kernels_the_run_measured(monkeypatch, clock, tmp_path):
    """2 epochs straight == 1 epoch, then a new process whose cache file is gone and whose clock now
    prefers another kernel, resuming for 1 epoch: the checkpoint's kernels keep it bitwise exact."""
    slowed(monkeypatch, clock, {"im2col": 1.0, "winograd": 1.0, "winograd2": 0.001})
    straight = _fit(2, tmp_path / "straight.npz")
    _fit(1, tmp_path / "half.npz")
    saved = ck.io.load_checkpoint(tmp_path / "half.npz").extra["fit"]["dispatch"]
    assert set(saved["kernels"].values()) == {"winograd2"}

    def resumed():
        measure.reset()
        measure.cache_path().unlink(missing_ok=True)
        slowed(monkeypatch, clock, {"im2col": 0.001, "winograd": 1.0, "winograd2": 1.0})
        net = _fit(2, tmp_path / "resumed.npz", resume=tmp_path / "half.npz", seed=9)
        return all(np.array_equal(a, b) for a, b in zip(straight.state_dict().values(),
                                                        net.state_dict().values(), strict=True))

    assert resumed()
    assert not measure.pinning()  # fit put the pins back
    monkeypatch.setattr(measure, "pin", lambda saved: lambda: None)
    assert not resumed()  # without the pins the resumed run measures afresh, picks im2col, and differs


def test_the_key_follows_the_simd_numpy_runs():
    """NPY_DISABLE_CPU_FEATURES (as ``benchmarks --isa avx2`` sets it) holds NumPy's loops below the CPU:
    the same CPU, flags and BLAS then get another cache file."""
    found = measure.machine()["numpy_simd"].split()
    if not found:
        pytest.skip("NumPy runs no dispatched SIMD target on this CPU (or does not say which)")
    script = "from cnnkit.fast import measure; print(measure.machine()['numpy_simd'], measure.cache_key())"
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": found[-1]}
    simd, key = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                               check=True).stdout.rsplit(maxsplit=1)
    assert found[-1] not in simd.split() and key != measure.cache_key()
