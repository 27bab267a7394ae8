"""cnnkit.runtime: the one setting (configure / configured / settings), batch slices and chunks, the
elementwise threads, scratch memory (workspace, scratch_bytes) and the malloc policy."""

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
