"""Every Python snippet of README.md runs as written, in order, in one scratch folder (the visualization
snippet reads the model the training snippet saved). A snippet that needs an extra skips without it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
EXTRAS = {"torch": "torch", "viz": "matplotlib"}


def test_the_readme_has_its_snippets():
    assert len(SNIPPETS) >= 6


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("readme")


@pytest.mark.parametrize("index", range(len(SNIPPETS)), ids=lambda i: SNIPPETS[i].splitlines()[0][:40])
def test_snippet_runs(index, scratch, monkeypatch, capsys):
    code = SNIPPETS[index]
    for marker, module in EXTRAS.items():
        pattern = rf"^(import|from) (cnnkit\.)?{marker}\b|^from cnnkit import {marker}\b"
        if re.search(pattern, code, flags=re.M):
            pytest.importorskip(module)
    monkeypatch.chdir(scratch)
    exec(compile(code, f"README.md snippet {index + 1}", "exec"), {"__name__": "readme"})  # noqa: S102
    if "except ck.ShapeError" in code:  # the showcase error prints its advice, which must be the working one
        assert "use padding=((0, 1), (0, 1))" in capsys.readouterr().out
