"""The engine's convolution as it was before the performance work, for a "before" column in the same run.

The kernel is read from git (``git show <commit>:src/cnnkit/functional/conv.py``) rather than copied into
the tree, and swapped into the Conv layers only while a "before" contender runs, so before and after are
timed interleaved in one process under the same conditions.
"""

from __future__ import annotations

import contextlib
import subprocess
import types
from pathlib import Path

COMMIT = "921ff98"  # the engine core: im2col + matrix multiply, columns cached, per-group tensordot dW
ROOT = Path(__file__).resolve().parents[1]


def load(commit: str = COMMIT):
    """The module ``cnnkit/functional/conv.py`` at ``commit``, or None when git cannot provide it."""
    try:
        source = subprocess.run(["git", "show", f"{commit}:src/cnnkit/functional/conv.py"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    # its geometry helpers have moved since, same names and signatures (the engine-room restructuring)
    source = source.replace("from cnnkit.analysis.shapes import", "from cnnkit.geometry import")
    module = types.ModuleType(f"cnnkit_conv_{commit}")
    exec(compile(source, f"{commit}:src/cnnkit/functional/conv.py", "exec"), module.__dict__)
    return module


@contextlib.contextmanager
def kernels(module):
    """Run the Conv layers on ``module``'s convnd/convnd_backward inside the block."""
    import cnnkit.layers.conv as layer_module

    saved = layer_module.convnd, layer_module.convnd_backward

    def convnd(*args, algorithm="auto", **kwargs):  # the old kernel has one algorithm
        return module.convnd(*args, **kwargs)

    def convnd_backward(dy, cache, *, input_grad=True):  # the old kernel always computes dx
        dx, dw, db = module.convnd_backward(dy, cache)
        return (dx if input_grad else None), dw, db

    layer_module.convnd, layer_module.convnd_backward = convnd, convnd_backward
    try:
        yield
    finally:
        layer_module.convnd, layer_module.convnd_backward = saved


def wrap(module, fn):
    """``fn`` run with the old kernels; ``fn`` itself when there is no baseline."""
    if module is None:
        return fn

    def run():
        with kernels(module):
            fn()
    return run
