"""Scratch buffers and the malloc policy of cnnkit.runtime."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cnnkit.runtime import clear_workspaces, workspace


def test_workspace_reuses_memory_by_name_and_grows():
    a = workspace("test.a", (4, 5), np.float32)
    b = workspace("test.a", (2, 3), np.float32)
    c = workspace("test.a", (10, 10), np.float32)  # larger: a new buffer
    assert np.shares_memory(a, b) and not np.shares_memory(a, c)
    assert workspace("test.a", (3,), np.float64).dtype == np.float64  # a dtype has its own buffer
    assert clear_workspaces() >= 400 + 24


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
