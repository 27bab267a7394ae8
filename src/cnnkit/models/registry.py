"""The model zoo's registry: ``register`` a constructor, ``get`` a fresh model by name, list ``names``.

Every constructor takes ``num_classes`` and ``input_shape`` (one example, channels first, no batch axis)
and a keyword ``rng`` for the random initial weights, and returns a new, untrained model.
"""

from __future__ import annotations

import difflib
import inspect
import math

_MODELS: dict = {}


def register(fn=None, *, name: str | None = None):
    """Decorator adding a model constructor to the zoo under ``name`` (default: the function's name)."""
    def add(f):
        key = name or f.__name__
        # the same function defined again (its module run twice, as doctest collection does) replaces itself
        if key in _MODELS and _where(_MODELS[key]) != _where(f):
            raise ValueError(f"register: a model named {key!r} is already registered "
                             f"(by {_MODELS[key].__module__}); choose another name.")
        _MODELS[key] = f
        return f
    return add(fn) if fn is not None else add


def _where(f):
    return getattr(f, "__module__", None), getattr(f, "__qualname__", None)


def names() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_MODELS)


def constructor(name: str):
    """The function registered as ``name``; KeyError with the closest names if there is none."""
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"No model named {name!r}.{hint} Known models: {', '.join(names())}.")
    return _MODELS[name]


def get(name: str, **kwargs):
    """A new model: ``get("resnet18", num_classes=10, input_shape=(3, 64, 64))``.

    >>> get("lenet5").output_shape((2, 1, 28, 28))
    (2, 10)
    """
    return constructor(name)(**kwargs)


def default_input_shape(name: str) -> tuple[int, ...]:
    """The ``input_shape`` a model is built for unless told otherwise, e.g. (3, 224, 224)."""
    return tuple(inspect.signature(constructor(name)).parameters["input_shape"].default)


def flat_features(layer, input_shape) -> int:
    """How many numbers ``layer`` outputs per example: the in_features of the Linear that follows it."""
    return math.prod(layer.output_shape((1, *input_shape))[1:])
