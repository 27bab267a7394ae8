"""cnnkit.runtime: the one setting (configure / configured / settings), batch slices and chunks, the
elementwise threads, scratch memory (workspace, scratch_bytes) and the malloc policy."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from cnnkit import runtime


@pytest.fixture
def restore_runtime():
    """Every test that changes the runtime leaves it as it found it."""
    before, chunk_bytes = runtime.settings(), runtime.CHUNK_BYTES
    yield
    runtime.CHUNK_BYTES = chunk_bytes
    runtime.configure(threads=before["threads"], scratch=before["scratch"])


# --- configure, configured, settings -------------------------------------------------------------------

def test_settings_are_what_configure_takes():
    assert set(runtime.settings()) == {"threads", "scratch", "keep_freed_memory", "dispatch"}
    assert runtime.settings()["threads"] == runtime.elementwise_threads()


def test_configure_returns_the_settings_before_and_keeps_what_is_not_given(restore_runtime):
    runtime.configure(threads=1, scratch=True)
    before = runtime.configure(threads=2)
    assert before["threads"] == 1 and before["scratch"] is True
    assert runtime.settings()["threads"] == 2 and runtime.elementwise_threads() == 2
    assert runtime.settings()["scratch"] is True  # not given: unchanged
    assert runtime.configure() == runtime.settings()  # nothing given: nothing changes


def test_configured_restores_the_settings_after_the_block_even_on_error(restore_runtime):
    runtime.configure(threads=1, scratch=True)
    with runtime.configured(threads=2, scratch=False):
        assert runtime.settings()["threads"] == 2 and runtime.settings()["scratch"] is False
    assert runtime.settings()["threads"] == 1 and runtime.settings()["scratch"] is True
    with pytest.raises(KeyError), runtime.configured(threads=2):
        raise KeyError("inside")
    assert runtime.settings()["threads"] == 1


def test_scratch_off_allocates_fresh_arrays_and_keeps_nothing(restore_runtime):
    runtime.configure(scratch=True)
    runtime.workspace("test.scratch", (64,), np.float32)
    assert runtime.scratch_bytes() >= 64 * 4
    runtime.configure(scratch=False)  # turning it off releases this thread's buffers
    assert runtime.scratch_bytes() == 0
    a = runtime.workspace("test.scratch", (8,), np.float32)
    b = runtime.workspace("test.scratch", (8,), np.float32)
    assert not np.shares_memory(a, b) and runtime.scratch_bytes() == 0


@pytest.mark.parametrize("options, error, pattern", [
    (dict(threads=0), ValueError, r"Received threads=0; expected an int >= 1"),
    (dict(threads=2.0), ValueError, r"Received threads=2.0; expected an int >= 1"),
    (dict(threads=True), ValueError, r"Received threads=True; expected an int >= 1"),
    (dict(scratch="yes"), ValueError, r"configure: Received scratch='yes'; expected True or False"),
    (dict(scratch=1), ValueError, r"configure: Received scratch=1; expected True or False"),
])
def test_configure_errors(options, error, pattern, restore_runtime):
    before = runtime.settings()
    with pytest.raises(error, match=pattern):
        runtime.configure(**options)
    assert runtime.settings() == before


def test_configure_takes_keywords_only():
    with pytest.raises(TypeError):
        runtime.configure(2)


KEEP = textwrap.dedent("""
    from cnnkit import runtime
    assert runtime.settings()["keep_freed_memory"] is False  # nothing is process-wide until asked
    runtime.configure(keep_freed_memory=True)
    print(runtime.settings()["keep_freed_memory"])
    if runtime.settings()["keep_freed_memory"]:
        try:
            runtime.configure(keep_freed_memory=False)
        except ValueError as e:
            print(e)
        with runtime.configured(threads=2):  # a block does not undo it either
            pass
        print(runtime.settings()["keep_freed_memory"])
""")


def test_keep_freed_memory_is_off_until_asked_and_cannot_be_undone():
    """In a fresh process: the setting is process-wide and permanent."""
    out = subprocess.run([sys.executable, "-c", KEEP], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    if lines[0] == "False":
        pytest.skip("not glibc: keep_freed_memory has no effect here")
    assert lines[1] == ("configure: keep_freed_memory=False: glibc's malloc settings cannot be undone in a "
                        "running process; start a new process instead.")
    assert lines[2] == "True"


# --- batch slices and chunks ---------------------------------------------------------------------------

@pytest.mark.parametrize("items, step, count, expected", [
    (5, 2, None, [(0, 2), (2, 4), (4, 5)]),
    (5, None, 2, [(0, 2), (2, 5)]),
    (2, None, 4, [(0, 1), (1, 2)]),  # fewer parts than asked when the batch is small
    (0, None, 3, []),
    (0, 4, None, []),
    (7, 10, None, [(0, 7)]),
])
def test_batch_slices_cover_the_batch_once_in_order(items, step, count, expected):
    slices = runtime.batch_slices(items, step, count=count)
    assert [(s.start, s.stop) for s in slices] == expected


@pytest.mark.parametrize("step, count", [(None, None), (2, 2)])
def test_batch_slices_want_step_or_count(step, count):
    with pytest.raises(ValueError, match="batch_slices: give step or count, not both or neither"):
        runtime.batch_slices(4, step, count=count)


def test_batch_chunks_cover_the_batch_once():
    chunks = runtime.batch_chunks(7, 100, chunk_bytes=250)
    assert chunks == [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 7)]
    assert runtime.batch_chunks(3, 10**9, chunk_bytes=1) == [slice(0, 1), slice(1, 2), slice(2, 3)]
    assert runtime.batch_chunks(5, 1, chunk_bytes=100) == [slice(0, 5)]


# --- elementwise threads -------------------------------------------------------------------------------

def test_over_batch_runs_every_chunk_on_threads_and_reraises(restore_runtime):
    runtime.CHUNK_BYTES = 1
    runtime.set_elementwise_threads(2)
    seen = []
    runtime.over_batch(lambda b: seen.append(b.start), 6, 8)
    assert sorted(seen) == list(range(6))

    def fail(b):
        if b.start == 3:
            raise ValueError("chunk 3")

    with pytest.raises(ValueError, match="chunk 3"):
        runtime.over_batch(fail, 6, 8)


def test_map_chunks_and_over_parts_keep_the_order(restore_runtime):
    runtime.CHUNK_BYTES = 8
    runtime.configure(threads=2)
    assert runtime.map_chunks(lambda b: (b.start, b.stop), 5, 4) == [(0, 2), (2, 4), (4, 5)]
    assert runtime.over_parts(lambda i: i * i, 4) == [0, 1, 4, 9]
    assert runtime.over_parts(lambda i: i, 3, threaded=False) == [0, 1, 2]


@pytest.mark.parametrize("threads", [0, 1.5, True])
def test_thread_count_is_checked(threads):
    with pytest.raises(ValueError, match=r"set_elementwise_threads: Received threads="):
        runtime.set_elementwise_threads(threads)


@pytest.mark.parametrize("threads", [0, 1.5, True])
def test_blas_thread_count_is_checked(threads):
    with pytest.raises(ValueError, match=r"blas_threads: Received threads="):
        runtime.blas_threads(threads)


# --- scratch memory ------------------------------------------------------------------------------------

def test_workspace_reuses_memory_by_name_and_grows(restore_runtime):
    runtime.configure(scratch=True)
    a = runtime.workspace("test.a", (4, 5), np.float32)
    b = runtime.workspace("test.a", (2, 3), np.float32)
    c = runtime.workspace("test.a", (10, 10), np.float32)  # larger: a new buffer
    assert np.shares_memory(a, b) and not np.shares_memory(a, c)
    assert runtime.workspace("test.a", (3,), np.float64).dtype == np.float64  # a dtype has its own buffer
    assert runtime.clear_workspaces() >= 400 + 24


@pytest.mark.parametrize("scratch", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape", [(36, 3072), (36, 2, 64, 64), (16, 7, 5), (6, 0), (1, 1)])
def test_staggered_rows_start_an_odd_number_of_cache_lines_apart(restore_runtime, shape, dtype, scratch):
    """Every first-axis slice of a staggered array is writable in place (the array is a view, never a
    copy), its rows are contiguous, and they start an odd number of 64-byte lines apart -- so rows of
    4 KB multiples (3072 float32 numbers: 12 KB) no longer share a cache set."""
    runtime.configure(scratch=scratch)
    a = runtime.staggered(shape, dtype, "test.staggered" if scratch else None)
    assert a.shape == shape and a.dtype == dtype
    assert a.strides[0] % 64 == 0 and (a.strides[0] // 64) % 2 == 1
    assert a.strides[0] >= a[0].nbytes and a[0].flags.c_contiguous
    values = (np.arange(a.size) % 251).reshape(shape)  # exact in float16 too
    a[...] = values  # every element once: the rows do not overlap
    assert np.array_equal(a, values)
    if scratch:  # the workspace's memory, reused by name
        assert np.shares_memory(a, runtime.workspace("test.staggered", (8,), dtype)) or a.size == 0


def test_scratch_bytes_counts_this_threads_buffers(restore_runtime):
    runtime.configure(scratch=True)
    runtime.clear_workspaces()
    assert runtime.scratch_bytes() == 0
    runtime.workspace("test.count", (10, 10), np.float32)
    runtime.workspace("test.count", (5,), np.float32)  # reuses the 400 bytes
    runtime.workspace("test.other", (3,), np.float64)
    assert runtime.scratch_bytes() == 400 + 24
    other = []
    thread = threading.Thread(target=lambda: other.append(runtime.scratch_bytes()))
    thread.start()
    thread.join()
    assert other == [0]  # every thread has its own buffers
    assert runtime.clear_workspaces() == 400 + 24 and runtime.scratch_bytes() == 0


def test_convolution_and_pooling_share_one_columns_buffer(restore_runtime):
    """LeNet-5's conv1 -> max pool: the pooling's phases reuse the convolution's columns (kernels never
    run inside one another), so the scratch held is the larger of the two, not their sum."""
    import cnnkit.functional as F

    runtime.configure(scratch=True, threads=1)
    x = np.random.default_rng(0).standard_normal((64, 1, 28, 28), dtype=np.float32)
    w = np.ones((6, 1, 5, 5), np.float32)
    sizes = {}
    for name, work in (("conv", lambda: F.conv2d(x, w, padding=2, algorithm="im2col")),
                       ("pool", lambda: F.max_pool2d(np.repeat(x, 6, axis=1), 2)), ("both", None)):
        runtime.clear_workspaces()
        if work is None:
            F.conv2d(x, w, padding=2, algorithm="im2col")
            F.max_pool2d(np.repeat(x, 6, axis=1), 2)
        else:
            work()
        sizes[name] = runtime.scratch_bytes()
    assert sizes["both"] < 0.8 * (sizes["conv"] + sizes["pool"]), sizes
    runtime.clear_workspaces()


FAULTS = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from cnnkit.runtime import keep_freed_memory
    kept = keep_freed_memory() if sys.argv[1] == "keep" else None
    faults = []
    for _ in range(6):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        a = np.ones(3 * 2**20 // 4, np.float32)  # 3 MB, touched; below NumPy's 4 MB huge-page threshold
        b = np.ones(3 * 2**20 // 4, np.float32)
        del a, b
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(kept, min(faults[2:]))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page-fault counts and glibc: Linux only")
def test_keep_freed_memory_stops_page_faults_on_reallocation():
    def run(mode):
        out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
        kept, faults = out.stdout.split()
        return kept, int(faults)

    kept, faults_kept = run("keep")
    if kept != "True":
        pytest.skip("not glibc: keep_freed_memory has no effect here")
    _, faults_default = run("default")
    # 6 MB of fresh pages per round is 1,536 faults of 4 KB; reused memory faults (almost) never
    assert faults_kept < 50
    assert faults_default > 1000


# -- derived arrays: made from weights, kept while the weights are unchanged ---

def test_derived_is_made_again_when_the_source_changes_in_place_or_dies():
    import gc

    from cnnkit import runtime

    calls = []

    def make(w):
        calls.append(1)
        return w * 2

    w = np.arange(4.0)
    first = runtime.derived("test", w, make)
    assert runtime.derived("test", w, make) is first and len(calls) == 1
    assert not first.flags.writeable  # shared by every later caller
    w[1] = 7  # an optimizer step writes the weights in place
    assert runtime.derived("test", w, make).tolist() == [0, 14, 4, 6] and len(calls) == 2
    other = w.copy()  # equal values, another array: its own entry
    runtime.derived("test", other, make)
    assert len(calls) == 3
    key_count = len(runtime._derived)
    del other
    gc.collect()
    assert len(runtime._derived) == key_count - 1  # a dead source's entry goes with it
    runtime.clear_workspaces()
    assert not runtime._derived


def test_derived_keeps_nothing_without_scratch_and_stays_in_its_budget(monkeypatch):
    from cnnkit import runtime

    with runtime.configured(scratch=False):
        runtime.derived("test", np.ones(3), lambda w: w + 1)
        assert not runtime._derived
    monkeypatch.setattr(runtime, "DERIVED_BYTES", 3 * 800)  # room for one 100-float source + its array
    sources = [np.full(100, float(i)) for i in range(3)]
    made = [runtime.derived("test", s, lambda w: w + 1) for s in sources]
    assert [entry[0]() is sources[0] for entry in runtime._derived.values()] == [True]  # full: first stays
    assert runtime.derived("test", sources[0], lambda w: w + 5) is made[0]
    assert runtime.derived("test", sources[2], lambda w: w + 5)[0] == 7.0  # not kept: made again
    runtime.clear_workspaces()


def test_winograd_reuses_its_filters_only_while_the_weights_are_unchanged():
    """A 256 x 256 layer keeps its transformed filters; in-place weight changes are seen (results equal a
    fresh computation) and the backward after a forward uses the same U."""
    import cnnkit as ck
    from cnnkit import runtime
    from cnnkit.fast import winograd

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 256, 6, 6)).astype(np.float32)
    w = (rng.standard_normal((256, 256, 3, 3)) * 0.05).astype(np.float32)
    runtime.clear_workspaces()
    y1, cache = winograd.conv2d(x, w, None, 1, 1)
    assert len(runtime._derived) == 1
    U = next(iter(runtime._derived.values()))[2]
    assert winograd._filters(winograd._matrices(4, np.float32)["G2"], w, 1) is U
    w *= 2  # in place
    y2, _ = winograd.conv2d(x, w, None, 1, 1)
    np.testing.assert_allclose(y2, 2 * y1, rtol=1e-5, atol=1e-5)
    with runtime.configured(scratch=False):
        y3, _ = winograd.conv2d(x, w, None, 1, 1)
    np.testing.assert_array_equal(y2, y3)  # the kept U equals a freshly made one, bit for bit
    reference, _ = ck.reference.conv.convnd(x.astype(np.float64), w.astype(np.float64), None, 1, 1)
    np.testing.assert_allclose(y2, reference, rtol=1e-3, atol=1e-3)
    runtime.clear_workspaces()


@pytest.mark.parametrize("given, expected", [(None, "16"), ("20", "20")])
def test_import_cnnkit_sets_openblas_thread_timeout_before_numpy_loads(given, expected):
    """cnnkit/_openblas.py runs before anything imports NumPy (OpenBLAS reads the variable when NumPy loads
    it), and keeps a value the environment already has."""
    code = textwrap.dedent("""
        import os, sys
        import cnnkit._openblas  # runs cnnkit/__init__, which imports _openblas before any NumPy user
        import cnnkit
        print(os.environ["OPENBLAS_THREAD_TIMEOUT"])
    """)
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if given is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = given
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == [expected]
    order = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line]
    assert order.index("cnnkit._openblas") < min(i for i, m in enumerate(order) if m.split(".")[0] == "numpy")
