"""Exceptions that cnnkit raises for mistakes a user can fix."""


class ShapeError(ValueError):
    """An input or a set of hyperparameters has a shape that does not fit.

    A ``ValueError`` so that code written for NumPy or PyTorch errors catches it too. The message names the
    layer, shows the numbers involved and, where one exists, suggests a fix.
    """


class NotFittedError(RuntimeError):
    """``backward`` was called before ``forward`` (there is no cache to differentiate through)."""
