"""analysis sits above the layers: nothing below it (kernels, layers, geometry, runtime) imports it."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "cnnkit"
BELOW_ANALYSIS = ["functional", "fast", "reference", "layers", "geometry.py", "runtime.py", "layout.py"]


def _imported_modules(path):
    """Every module a file imports, at the top or inside a function (absolute names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = "." * node.level + node.module  # a relative import keeps its dots: "..analysis"
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _files(name):
    target = SRC / name
    return sorted(target.rglob("*.py")) if target.is_dir() else [target] if target.exists() else []


@pytest.mark.parametrize("name", BELOW_ANALYSIS)
def test_nothing_below_analysis_imports_it(name):
    upward = [f"{path.relative_to(SRC)}: {module}" for path in _files(name)
              for module in _imported_modules(path) if "analysis" in module.split(".")]
    assert not upward, "kernels and layers must not import cnnkit.analysis (use cnnkit.geometry):\n" + \
        "\n".join(upward)
