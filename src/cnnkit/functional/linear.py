"""Fully connected layers, flatten and dropout, the public face of one kernel each:
:mod:`cnnkit.reference.linear` (a matrix multiply, a reshape, an inverted-dropout mask)."""

from cnnkit.reference.linear import (
    dropout,
    dropout_backward,
    flatten,
    flatten_backward,
    linear,
    linear_backward,
)

__all__ = ["dropout", "dropout_backward", "flatten", "flatten_backward", "linear", "linear_backward"]
