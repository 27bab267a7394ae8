"""The reference package as a whole: what its modules import, and one reference kernel with the public
signature for every op of cnnkit.functional."""

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import cnnkit.functional as F
import cnnkit.reference

ALLOWED = ("numpy", "cnnkit.geometry", "cnnkit.errors", "cnnkit.reference",
           # pure standard-library helpers, as /work/shared/tools/imports.py allows them
           "math", "itertools", "functools", "numbers", "typing", "__future__", "dataclasses")
# Keywords of the public face that choose or tune a kernel, which the textbook has no use for.
DISPATCH_ONLY = {"algorithm", "buffer"}


def _modules():
    return sorted(Path(cnnkit.reference.__file__).parent.glob("*.py"))


def _imported(path):
    """Every module that a source file imports, anywhere in the file (inside functions too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield ("." * node.level) + (node.module or "")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_imports_only_numpy_geometry_errors_and_reference(path):
    """No threads, no scratch memory, no fast kernels: NumPy, the geometry module, errors and the package
    itself (a relative import stays inside the package)."""
    outside = [name for name in _imported(path)
               if not (name.startswith(".") or any(name == a or name.startswith(a + ".") for a in ALLOWED))]
    assert not outside, f"{path.name} imports {outside}"


def _reference_kernels():
    """Every public function of every reference module, by name."""
    kernels = {}
    for info in pkgutil.iter_modules(cnnkit.reference.__path__):
        module = importlib.import_module(f"cnnkit.reference.{info.name}")
        kernels.update({name: f for name, f in vars(module).items()
                        if inspect.isfunction(f) and not name.startswith("_")})
    return kernels


def _parameters(f):
    """(name, kind, default) of every parameter, without the dispatch's own keywords and without a
    ``**kwargs`` (the public face's one backward forwards keywords such as input_grad= to its kernel)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()
            if p.name not in DISPATCH_ONLY and p.kind is not p.VAR_KEYWORD]


@pytest.mark.parametrize("name", sorted(F.__all__))
def test_every_functional_op_has_a_reference_with_its_signature(name):
    """Same argument names, order, kinds and defaults, so that the dispatch can call either kernel."""
    public = getattr(F, name)
    if not inspect.isfunction(public):
        pytest.skip(f"{name} is not a function")
    reference = _reference_kernels().get(name)
    assert reference is not None, f"cnnkit.reference has no {name}"
    assert _parameters(reference) == _parameters(public)


def test_the_package_exports_what_it_lists():
    missing = [name for name in cnnkit.reference.__all__ if not hasattr(cnnkit.reference, name)]
    assert not missing and len(set(cnnkit.reference.__all__)) == len(cnnkit.reference.__all__)
