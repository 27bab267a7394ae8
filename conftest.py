"""Doctests without the optional extras (torch, ONNX, safetensors, matplotlib, mpi4py, Pillow).

``--doctest-modules`` imports every module of ``src/cnnkit``. A private module that wraps an optional
dependency imports it at its top (``cnnkit/interop/_torch_*.py`` import torch), so without that extra it
fails before any doctest runs: it is reported as skipped, naming the missing package, instead of as a
collection error. A page of ``docs/`` whose examples use such a package (interop.md) is skipped likewise.
Everything else runs. (The tests' own helpers are in tests/conftest.py.)
"""

import ast
import importlib
from pathlib import Path

import pytest

OPTIONAL = {"torch", "onnx", "onnxruntime", "matplotlib", "mpi4py", "safetensors", "PIL"}
# A word in a page's example code -> the packages it needs (export_onnx needs onnx, run_onnx onnxruntime).
PAGE_NEEDS = {"torch": ("torch",), "onnx": ("onnx", "onnxruntime"), "safetensors": ("safetensors",),
              "matplotlib": ("matplotlib",), "mpi4py": ("mpi4py",)}
DOCS = Path(__file__).resolve().parent / "docs"
INSTALL = 'pip install -e ".[test]" installs it'


def _missing(name) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return True
    return False


def _top_level_imports(path):
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module.split(".")[0]


def pytest_make_collect_report(collector):
    """A module of src/cnnkit that imports a missing optional package at its top: skipped, not an error."""
    if not isinstance(collector, pytest.Module) or collector.path.suffix != ".py" or \
            collector.path.name.startswith("test_"):
        return None
    missing = sorted(name for name in set(_top_level_imports(collector.path)) & OPTIONAL if _missing(name))
    if not missing:
        return None
    reason = f"Skipped: {collector.path.name} imports {', '.join(missing)} ({INSTALL})"
    return pytest.CollectReport(collector.nodeid, "skipped", (str(collector.path), 0, reason), [])


def pytest_collection_modifyitems(items):
    """A docs/ page whose examples use a missing optional package: skipped, naming it."""
    for item in items:
        examples = getattr(getattr(item, "dtest", None), "examples", None)
        if not examples or DOCS not in Path(item.path).resolve().parents:
            continue
        code = "\n".join(example.source for example in examples)
        missing = sorted({name for word, names in PAGE_NEEDS.items() if word in code for name in names
                          if _missing(name)})
        if missing:
            reason = f"{Path(item.path).name}'s examples need {', '.join(missing)} ({INSTALL})"
            item.add_marker(pytest.mark.skip(reason=reason))
