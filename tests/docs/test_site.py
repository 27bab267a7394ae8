"""The documentation site: ``mkdocs build --strict`` (warnings are errors) builds every page of mkdocs.yml,
the tutorials and the API reference generated from the docstrings, with no link to the network."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("mkdocs", reason='builds the site with mkdocs: pip install -e ".[test]"')
pytest.importorskip("material", reason='the site uses mkdocs-material: pip install -e ".[test]"')
pytest.importorskip("mkdocstrings_handlers.python", reason='the API reference uses mkdocstrings[python]')


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr
    tutorials = sorted(p.parent.name for p in (tmp_path / "tutorials").glob("*/index.html"))
    assert tutorials == sorted(p.stem for p in (ROOT / "docs" / "tutorials").glob("0*.md"))
    layers = (tmp_path / "api" / "layers" / "index.html").read_text(encoding="utf-8")
    assert "Conv2d" in layers and "Shape" in layers
    # The doctests of the docstrings are highlighted code (the prompt a "gp" token), not quotes whose
    # outputs read as links (scripts/griffe_doctest_blocks.py).
    assert '<span class="gp">&gt;&gt;&gt; </span>' in layers and "<blockquote>" not in layers
    home = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"""<(script|link)[^>]+(src|href)="https?:""", home)  # works offline


def test_fence_doctests():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from griffe_doctest_blocks import fence_doctests
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    text = "Intro.\n\n    >>> f(1)\n    [0.5][0]\n\n```python\n>>> kept\n```"
    assert fence_doctests(text) == ("Intro.\n\n    ```pycon\n    >>> f(1)\n    [0.5][0]\n    ```\n\n"
                                    "```python\n>>> kept\n```")
