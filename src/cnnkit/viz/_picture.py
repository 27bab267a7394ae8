"""What a viz function returns: its array (or dict of arrays), which a notebook shows as the picture.

Jupyter displays the last expression of a cell by its richest ``_repr_*_`` method. ``PictureArray`` is an
ndarray subclass whose ``_repr_png_`` draws the same figure that ``save=`` writes, with the function's
own drawing code and settings, only when a notebook asks for it (nothing is drawn otherwise, and without
matplotlib the notebook falls back to the array's text). Everywhere else it is the array it always was:
``repr`` prints ``array(...)``; arithmetic, comparisons, reductions, slicing, iteration, ``copy``,
``reshape``, ``astype`` and NumPy functions return plain ndarrays (a picture of the original would be
wrong for a derived array); pickling and ``np.save`` store a plain ndarray. ``PictureDict`` is the same
for the functions that return a dict of arrays (``history``, ``shift_consistency`` of several models).
"""

from __future__ import annotations

import io

import numpy as np


def _plain(value):
    """A PictureArray as a plain ndarray view (no copy), also inside lists and tuples; anything else as is."""
    if isinstance(value, PictureArray):
        return value.view(np.ndarray)
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


def _png(draw, values):
    """``draw(values, file)`` into PNG bytes, or None without matplotlib (the notebook shows the text)."""
    if draw is None:
        return None
    buffer = io.BytesIO()
    try:
        draw(values, buffer)
    except ImportError:
        return None
    return buffer.getvalue()


class PictureArray(np.ndarray):
    """An ndarray that a notebook displays as ``draw(array, file)`` draws it (PNG)."""

    def __new__(cls, values, draw):
        obj = np.asarray(values).view(cls)
        obj._draw = draw
        return obj

    def __array_finalize__(self, obj):
        self._draw = None  # an array made from this one (by a method NumPy builds itself) has no picture

    def _repr_png_(self):
        return _png(getattr(self, "_draw", None), self.view(np.ndarray))

    def __repr__(self):
        return repr(self.view(np.ndarray))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        outs = kwargs.get("out")
        if outs:
            kwargs["out"] = _plain(outs)
        result = getattr(ufunc, method)(*_plain(inputs), **kwargs)
        if outs and method != "at":  # in place (x += 1): the name keeps its object
            return outs[0] if len(outs) == 1 else outs
        return result

    def __array_function__(self, func, types, args, kwargs):
        return func(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()})

    def __getitem__(self, key):
        return self.view(np.ndarray)[key]

    def __iter__(self):
        return iter(self.view(np.ndarray))

    @property
    def T(self):  # noqa: N802 (ndarray's name)
        return self.view(np.ndarray).T

    def __copy__(self):
        return self.view(np.ndarray).copy()

    def __deepcopy__(self, memo):
        return self.view(np.ndarray).copy()

    def __reduce__(self):
        return self.view(np.ndarray).__reduce__()

    def __reduce_ex__(self, protocol):
        return self.view(np.ndarray).__reduce_ex__(protocol)


def _plain_method(name):
    method = getattr(np.ndarray, name)

    def plain(self, *args, **kwargs):
        return method(self.view(np.ndarray), *args, **kwargs)

    plain.__name__, plain.__qualname__, plain.__doc__ = name, f"PictureArray.{name}", method.__doc__
    return plain


PLAIN_METHODS = ("astype", "copy", "cumprod", "cumsum", "diagonal", "dot", "flatten", "ravel", "repeat",
                 "reshape", "squeeze", "swapaxes", "take", "transpose")
for _name in PLAIN_METHODS:
    setattr(PictureArray, _name, _plain_method(_name))


class PictureDict(dict):
    """A dict (name -> array) that a notebook displays as ``draw(dict, file)`` draws it (PNG)."""

    def __init__(self, items, draw):
        super().__init__(items)
        self._draw = draw

    def _repr_png_(self):
        return _png(self._draw, dict(self))

    def __reduce__(self):
        return dict, (dict(self),)


def picture(values, draw, save=None):
    """``values`` (an array or a dict of arrays) shown in a notebook as ``draw(values, file)`` draws it.

    ``draw`` takes the values and a path or binary file to write the PNG to (a viz module's ``_draw`` with
    its settings bound by ``functools.partial``). Given ``save``, the picture is written there now.
    """
    result = PictureDict(values, draw) if isinstance(values, dict) else PictureArray(values, draw)
    if save is not None:
        draw(dict(values) if isinstance(values, dict) else np.asarray(values), save)
    return result
