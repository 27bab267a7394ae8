"""``summary(model, input_shape)``: the table of output shapes, parameters, MACs, memory and receptive fields.

Computed symbolically from each layer's ``output_shape``: no data runs, so a ResNet-152 at 224 x 224 is
summarized in a fraction of a second.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import asdict, dataclass

from cnnkit.analysis.arithmetic import macs, parameter_counts, stored_activations
from cnnkit.analysis.trace import trace

# Extra copies of the trainable parameters each optimizer keeps (momentum buffer, Adam's two moments...).
OPTIMIZER_SLOTS = {None: 0, "sgd": 0, "momentum": 1, "nesterov": 1, "adagrad": 1, "rmsprop": 1,
                   "adam": 2, "adamw": 2}

# KB, MB, GB are powers of 1024, as in the notes and on every GPU's spec sheet; KiB, MiB, GiB say the same.
_UNITS = {"b": 1, "kb": 2**10, "mb": 2**20, "gb": 2**30, "tb": 2**40,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_BINARY = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))


def parse_bytes(text) -> int:
    """``"4GB"`` and ``"4GiB"`` -> 4 * 2**30 bytes (KB/MB/GB are powers of 1024); an int is a byte count.

    A string needs its unit: ``"4"`` is refused, since 4 bytes is never what was meant.

    Raises:
        ValueError: no unit, an unknown unit, or not a number; the message lists the accepted forms.

    >>> parse_bytes("4GB"), parse_bytes("1.5 MiB"), parse_bytes("512kb"), parse_bytes(1024)
    (4294967296, 1572864, 524288, 1024)
    """
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match.group(2).lower() not in _UNITS:
        units = ", ".join(u.upper().replace("I", "i") for u in _UNITS)
        problem = "a number needs a unit" if match and not match.group(2) else "expected a size"
        raise ValueError(f"Received memory={text!r}: {problem}, such as 512MB, 4GB or 8GiB (units: {units}; "
                         f"KB, MB, GB are powers of 1024).")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def human(n: float, unit: str = "") -> str:
    """1814073344 -> '1.81 G'; small numbers stay whole. Byte counts: use :func:`human_bytes`."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}{unit}"
    return f"{n:g} {unit}".rstrip()


def human_bytes(n: float) -> str:
    """A byte count in binary units, as the memory budgets are read: 289116 -> '282.34 KiB'.

    >>> human_bytes(289116), human_bytes(4 * 2**30), human_bytes(512)
    ('282.34 KiB', '4.00 GiB', '512 B')
    """
    for factor, unit in _BINARY:
        if abs(n) >= factor:
            return f"{n / factor:.2f} {unit}"
    return f"{n:g} B"


def _axes(values):
    """(7, 7) -> 7; (7, 5) -> '7x5': square fields print as one number."""
    return values[0] if values and all(v == values[0] for v in values) else "x".join(map(str, values)) or "-"


@dataclass
class Row:
    """One layer of the summary. Shapes are per example (no batch axis); counts are for one example.

    ``activations`` are the elements of the new volume this layer stores (0 for layers that work in place
    or return a view: activation functions, dropout, flatten, identity). ``flops`` = 2 * ``macs``.
    ``receptive_field`` and ``jump`` are in input pixels: an int when every spatial axis agrees, else a
    string such as ``"7x5"``.
    """

    name: str
    type: str
    output_shape: tuple
    params: int
    trainable_params: int
    macs: int
    activations: int
    receptive_field: int | str
    jump: int | float | str

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_dict(self) -> dict:
        return {**asdict(self), "output_shape": list(self.output_shape), "flops": self.flops}


class Summary:
    """The result of :func:`summary`: ``rows`` and totals, printable as a table.

    Attributes:
        rows: one :class:`Row` per leaf layer, after a first row for the input.
        total_params, trainable_params: parameter elements (each shared Parameter counted once).
        total_macs: multiply-adds of one forward pass for one example; ``total_flops`` = 2 * total_macs.
        activation_elements: the input plus every stored output volume, for one example.
    """

    def __init__(self, model, input_shape, rows):
        self.input_shape = tuple(input_shape)
        self.rows = rows
        self.model_name = type(model).__name__
        self.total_params, self.trainable_params = parameter_counts(model)
        self.total_macs = sum(r.macs for r in rows)
        self.activation_elements = sum(r.activations for r in rows)

    @property
    def total_flops(self) -> int:
        return 2 * self.total_macs

    def memory_bytes(self, batch_size: int = 1, training: bool = True, optimizer: str | None = None,
                     bytes_per_element: int = 4) -> int:
        """The notes' memory estimate for a batch.

        activations: ``activation_elements * batch_size * bytes_per_element``, times 2 when training (the
        backward pass keeps a gradient of the same size); plus the parameters; when training also their
        gradients and, for ``optimizer`` in ("momentum", "nesterov", "adagrad", "rmsprop": one copy;
        "adam", "adamw": two), its state for the trainable ones.
        """
        key = optimizer.lower() if isinstance(optimizer, str) else optimizer
        if key not in OPTIMIZER_SLOTS:
            raise ValueError(f"Received optimizer={optimizer!r}; expected one of "
                             f"{', '.join(map(repr, OPTIMIZER_SLOTS))}.")
        if batch_size < 0:
            raise ValueError(f"Received batch_size={batch_size}; expected >= 0.")
        activations = self.activation_elements * batch_size * (2 if training else 1)
        # Gradients and optimizer state exist only for the trainable parameters, and only in training.
        per_trainable = 1 + OPTIMIZER_SLOTS[key] if training else 0
        parameters = self.total_params + self.trainable_params * per_trainable
        return (activations + parameters) * bytes_per_element

    def max_batch_size(self, memory_bytes, training: bool = True, optimizer: str | None = None,
                       bytes_per_element: int = 4) -> int:
        """The largest batch whose :meth:`memory_bytes` fits in ``memory_bytes`` (int or "4GB"); 0 if none.

        The notes' advice: use the minibatch size that maxes out the memory.
        """
        budget = parse_bytes(memory_bytes)
        fixed = self.memory_bytes(0, training, optimizer, bytes_per_element)
        per_example = self.memory_bytes(1, training, optimizer, bytes_per_element) - fixed
        return max(0, (budget - fixed) // per_example) if per_example else 0

    # -- export ---------------------------------------------------------------------------------------------
    _HEADER = ("Layer", "Type", "Output shape", "Params", "MACs", "Activations", "RF", "Jump")

    def _cells(self, row, pretty):
        number = "{:,}".format if pretty else str
        shape = "x".join(map(str, row.output_shape)) if pretty else " ".join(map(str, row.output_shape))
        return (row.name, row.type, shape, number(row.params), number(row.macs), number(row.activations),
                str(row.receptive_field), str(row.jump))

    def totals(self) -> dict:
        return {"total_params": self.total_params, "trainable_params": self.trainable_params,
                "total_macs": self.total_macs, "total_flops": self.total_flops,
                "activation_elements": self.activation_elements}

    def to_dict(self) -> dict:
        return {"model": self.model_name, "input_shape": list(self.input_shape),
                "rows": [r.to_dict() for r in self.rows], **self.totals()}

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["name", "type", "output_shape", "params", "trainable_params", "macs", "flops",
                         "activations", "receptive_field", "jump"])
        for r in self.rows:
            writer.writerow([r.name, r.type, "x".join(map(str, r.output_shape)), r.params, r.trainable_params,
                             r.macs, r.flops, r.activations, r.receptive_field, r.jump])
        return out.getvalue()

    def _footer(self):
        return [f"Total params: {self.total_params:,}",
                f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.total_params - self.trainable_params:,}",
                f"Total MACs: {human(self.total_macs)} ({self.total_macs:,}; FLOPs = 2 x MACs = "
                f"{human(self.total_flops)})",
                f"Activation elements per example: {self.activation_elements:,}",
                f"Memory, batch 1, float32: {human_bytes(self.memory_bytes(1, training=False))} inference, "
                f"{human_bytes(self.memory_bytes(1))} training"]

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(self._HEADER) + " |",
                 "|" + "|".join(["---"] * 2 + ["--:"] * (len(self._HEADER) - 2)) + "|"]
        for r in self.rows:
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in self._cells(r, True)) + " |")
        return "\n".join(lines + [""] + [f"- {line}" for line in self._footer()]) + "\n"

    def __str__(self):
        table = [self._HEADER] + [self._cells(r, True) for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(self._HEADER))]

        def line(cells):
            # name, type and shape read left to right; numbers line up on the right
            pairs = enumerate(zip(cells, widths, strict=True))
            return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in pairs)

        rule = "=" * len(line(table[0]))
        body = [line(cells) for cells in table[1:]]
        return "\n".join([rule, line(table[0]), rule.replace("=", "-"), *body, rule, *self._footer(), rule])

    def _repr_html_(self):
        """The table in Jupyter."""
        from cnnkit.viz.html import summary_html

        return summary_html(self)

    def __repr__(self):
        return (f"Summary({self.model_name}, input_shape={self.input_shape}, "
                f"total_params={self.total_params:,}, total_macs={self.total_macs:,})")


def summary(model, input_shape) -> Summary:
    """Layer-by-layer shapes, parameters, multiply-adds, stored activations and receptive fields.

    Args:
        model: a layer or container.
        input_shape: the shape of one example, without the batch axis, e.g. ``(3, 224, 224)``.

    Raises:
        ShapeError: a layer cannot take its input; the message starts with the layer's dotted name.

    >>> from cnnkit.layers import Conv2d, Sequential
    >>> s = summary(Sequential(Conv2d(3, 8, 3, padding=1), Conv2d(8, 8, 3, stride=2, padding=1, fit="crop")),
    ...             (3, 32, 32))
    >>> [(r.name, r.output_shape, r.params, r.macs, r.receptive_field) for r in s.rows]
    [('input', (3, 32, 32), 0, 0, 1), ('0', (8, 32, 32), 224, 221184, 3), ('1', (8, 16, 16), 584, 147456, 5)]
    """
    rows = []
    for step in trace(model, input_shape):
        if step.layer is None:
            rows.append(Row("input", "Input", step.output_shape[1:], 0, 0, 0, math.prod(step.output_shape),
                            1 if step.field.size else "-", 1 if step.field.size else "-"))
            continue
        total, trainable = parameter_counts(step.layer)
        fld = step.field.public()
        rows.append(Row(step.name, type(step.layer).__name__, step.output_shape[1:], total, trainable,
                        macs(step.layer, step.input_shape, step.output_shape),
                        stored_activations(step.layer, step.output_shape), _axes(fld.size), _axes(fld.jump)))
    return Summary(model, input_shape, rows)
