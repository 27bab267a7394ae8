"""``check(model, input_shape)``: every layer whose windows do not tile its input, with the fix, at once.

A forward pass (or ``output_shape``) stops at the first layer that does not fit. ``check`` keeps going,
using PyTorch's rounding down for a layer that does not tile, so a whole network can be fixed in one edit.
"""

from __future__ import annotations

from cnnkit.analysis.trace import trace


class CheckReport:
    """The result of :func:`check`.

    Attributes:
        problems: layers that would raise (``fit="error"``) or cannot take their input at all.
        handled: layers that do not tile but declare ``fit="crop"`` or ``fit="pad"``, so they round.
        ok: True when there are no problems.
    """

    def __init__(self, found):
        self.problems = [p for p in found if not p.handled]
        self.handled = [p for p in found if p.handled]

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self):
        return self.ok

    def names(self, handled: bool = False) -> list[str]:
        """Dotted names of the problem layers (or of the handled ones)."""
        return [p.name for p in (self.handled if handled else self.problems)]

    def __str__(self):
        if not self.problems and not self.handled:
            return "check: every layer tiles its input exactly."
        lines = [f"check: {len(self.problems)} layer(s) do not fit"
                 + (f", {len(self.handled)} more round by their fit policy" if self.handled else "") + "."]
        lines += [f"  {p}" for p in self.problems + self.handled]
        return "\n".join(lines)

    def __repr__(self):
        return f"CheckReport(problems={self.names()}, handled={self.names(handled=True)})"


def check(model, input_shape) -> CheckReport:
    """Run the output-size rule over every layer and report all that do not tile evenly, with fixes.

    Args:
        model: a layer or container.
        input_shape: one example's shape without the batch axis, e.g. ``(3, 224, 224)``.

    >>> from cnnkit.layers import Conv2d, Sequential
    >>> net = Sequential(Conv2d(3, 8, 3, stride=2), Conv2d(8, 8, 3, stride=2))
    >>> report = check(net, (3, 34, 34))
    >>> report.ok, report.names()
    (False, ['0', '1'])
    >>> print(report.problems[0])  # doctest: +ELLIPSIS
    0: Conv2d(3->8, ...): (H - F + 2P)/S + 1 = (34 - 3 + 0)/2 + 1 = 16.5 is not an integer; use padding=...
    """
    found = []
    trace(model, input_shape, strict=False, problems=found)
    return CheckReport(found)
