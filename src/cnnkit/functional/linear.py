"""Fully connected layers, flatten and dropout, the public face of one kernel each:
:mod:`cnnkit.reference.linear` (a matrix multiply, a reshape, an inverted-dropout mask). Under
``cnnkit.no_grad()`` each returns ``None`` as its cache."""

from cnnkit.fast.dispatch import without_cache
from cnnkit.reference.linear import dropout as _dropout
from cnnkit.reference.linear import dropout_backward, flatten_backward, linear_backward
from cnnkit.reference.linear import flatten as _flatten
from cnnkit.reference.linear import linear as _linear

__all__ = ["dropout", "dropout_backward", "flatten", "flatten_backward", "linear", "linear_backward"]

linear, flatten, dropout = without_cache(_linear), without_cache(_flatten), without_cache(_dropout)
