"""Ctrl-C while `cnnkit` is still starting (Python importing NumPy, cnnkit, Typer: about half a second) prints
one line and exits with status 130, as Ctrl-C does later -- no KeyboardInterrupt traceback.

The moments are not times: with PYTHONPROFILEIMPORTTIME the child reports each import on stderr as it
ends, and the signal goes out once a given module is in. However late it then lands on a loaded machine,
the answer must be one line that says the command was interrupted.
"""

from __future__ import annotations

import os
import shutil

import pytest
from cli_helpers import interrupt

CNNKIT = shutil.which("cnnkit")
pytestmark = pytest.mark.skipif(CNNKIT is None, reason="the cnnkit console script is not installed")

# In the order `cnnkit train` imports them: the console script's entry, then the slow part.
MOMENTS = ["_cnnkit_launcher", "numpy", "cnnkit.layers", "cnnkit", "typer", "cnnkit.cli.app", "cnnkit.cli"]


@pytest.mark.parametrize("module", MOMENTS)
def test_ctrl_c_while_cnnkit_imports_prints_one_line(tmp_path, monkeypatch, module):
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")  # "import time: ... | <module>" as each import ends

    def imported(process):
        line = process.stderr.readline()
        return line.rsplit("|", 1)[-1].strip() == module

    command = [CNNKIT, "train", "--epochs", "1", "--limit", "200", "--threads", "1", "--no-report",
               "--out", str(tmp_path / "run")]
    code, _, err = interrupt(command, imported)
    lines = [line for line in err.splitlines() if not line.startswith("import time:")]
    assert code == 130, err
    assert len(lines) == 1 and "interrupted" in lines[0], lines  # "cnnkit: interrupted" (or, very late, the
    assert "Traceback" not in err and "KeyboardInterrupt" not in err  # resume line of the training run)


def test_the_console_script_imports_nothing_heavy_before_it_answers_ctrl_c():
    """The entry point lives outside the cnnkit package, whose import is the slow part."""
    launcher = os.path.join(os.path.dirname(CNNKIT), "cnnkit")
    assert "from _cnnkit_launcher import main" in open(launcher, encoding="utf-8").read()
