"""Build a network from the notes' notation: ``INPUT -> [[CONV -> RELU]*2 -> POOL]*3 -> [FC -> RELU] -> FC``.

Grammar (case-insensitive; ``->`` or a lone ``-`` separate layers)::

    sequence := item (("->" | "-") item)*
    item     := ("[" sequence "]" | LAYER) ["?"] ["*" count]     count: an int, or a name given as keyword

Layers, with optional VGG-paper-style hyperparameters:

    INPUT              the input volume (first, optional)
    CONV, CONV5, CONV3-64, CONV5-32/2    F x F conv (default F=3) with K filters and stride S (default 1),
                       padding (F-1)/2; K defaults to ``width``, doubled for the first conv after each pool
    POOL, POOL3, POOL3/2                 F x F max pool (default F=2) with stride S (default 2); AVGPOOL too
    ADAPTIVEPOOL, ADAPTIVEPOOL6          average pool to a fixed 6 x 6 output (default 1 x 1) from any input
                       size, as torchvision's AlexNet and VGG heads; ADAPTIVEMAXPOOL takes the max
    FC, FC-512         fully connected (a Flatten is put in front of the first one); the last FC defaults to
                       ``num_classes`` outputs, the others to ``hidden``
    RELU, RELU6, LEAKYRELU, ELU, TANH, SIGMOID      activations; also PRELU, SELU, GELU, SILU, MISH, HARDSWISH
    DROPOUT, DROPOUT-0.3                  dropout (default p=0.5)
    BN                 batch norm (2-d after convs, 1-d after FC layers)

``POOL?`` marks an optional layer (kept unless ``optional=False``); ``*N`` repeats with ``N`` from the
keyword arguments, so the notes' general pattern ``INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K
-> FC`` builds with ``N=2, M=3, K=1``. Every error names the token and shows where it is in the spec.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from cnnkit.errors import ShapeError
from cnnkit.layers import (
    ELU,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    ReLU6,
    Sequential,
    Sigmoid,
    Tanh,
)
from cnnkit.layers.activation_more import GELU, SELU, Hardswish, Mish, PReLU, SiLU

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<sep>->|→|-(?![0-9]))
  | (?P<open>\[) | (?P<close>\]) | (?P<star>\*) | (?P<optional>\?)
  | (?P<number>[0-9]+)
  | (?P<word>[A-Za-z_][A-Za-z_]*?[0-9]*(?:-[0-9]+(?:\.[0-9]+)?)?(?:/[0-9]+)?(?![A-Za-z_0-9]))
""", re.VERBOSE)

# CONV5-32/2: kind CONV, size 5, arg 32, stride 2.
_LAYER = re.compile(r"(?P<kind>[A-Z_]+?)(?P<size>[0-9]+)?(?:-(?P<arg>[0-9]+(?:\.[0-9]+)?))?"
                    r"(?:/(?P<stride>[0-9]+))?")

ACTIVATIONS = {"RELU": ReLU, "RELU6": ReLU6, "LEAKYRELU": LeakyReLU, "ELU": ELU, "TANH": Tanh,
               "SIGMOID": Sigmoid, "PRELU": PReLU, "SELU": SELU, "GELU": GELU, "SILU": SiLU, "MISH": Mish,
               "HARDSWISH": Hardswish}
KINDS = ("INPUT", "CONV", "POOL", "MAXPOOL", "AVGPOOL", "ADAPTIVEPOOL", "ADAPTIVEMAXPOOL", "FC", "DROPOUT",
         "BN", *ACTIVATIONS)


class SpecError(ValueError):
    """A spec that cannot be parsed or built; the message points at the offending token."""


@dataclass
class Token:
    kind: str
    text: str
    pos: int


def _point(spec: str, token: Token, message: str, error=SpecError):
    caret = " " * token.pos + "^" * max(1, len(token.text))
    return error(f"build: {message} (token {token.text!r} at column {token.pos + 1})\n  {spec}\n  {caret}")


def tokenize(spec: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(spec):
        match = _TOKEN.match(spec, pos)
        if match is None:
            bad = re.match(r"\S+", spec[pos:]).group()
            raise _point(spec, Token("bad", bad, pos), "cannot read this")
        if match.lastgroup != "space":
            tokens.append(Token(match.lastgroup, match.group(), pos))
        pos = match.end()
    tokens.append(Token("end", "", len(spec)))
    return tokens


class _Parser:
    """Recursive descent over the tokens, expanding repeats into a flat list of layer tokens."""

    def __init__(self, spec, counts, optional):
        self.spec, self.counts, self.optional = spec, counts, optional
        self.tokens, self.i = tokenize(spec), 0

    def peek(self):
        return self.tokens[self.i]

    def take(self, kind, what):
        token = self.peek()
        if token.kind != kind:
            found = "the end of the spec" if token.kind == "end" else repr(token.text)
            raise _point(self.spec, token, f"expected {what}, found {found}")
        self.i += 1
        return token

    def sequence(self):
        layers = self.item()
        while self.peek().kind == "sep":
            self.i += 1
            layers += self.item()
        return layers

    def item(self):
        token = self.peek()
        if token.kind == "open":
            self.i += 1
            layers = self.sequence()
            self.take("close", "']' to close the '[' at column " + str(token.pos + 1))
        else:
            layers = [self.take("word", "a layer such as CONV, POOL or FC")]
        if self.peek().kind == "optional":
            self.i += 1
            layers = layers if self.optional else []
        if self.peek().kind == "star":
            self.i += 1
            layers = layers * self.count()
        return layers

    def count(self):
        token = self.peek()
        self.i += 1
        if token.kind == "number":
            return int(token.text)
        if token.kind == "word" and token.text in self.counts:
            value = self.counts[token.text]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _point(self.spec, token, f"the repeat count {token.text}={value!r} must be an int >= 0")
            return value
        if token.kind == "word":
            raise _point(self.spec, token, f"unknown repeat count {token.text!r}; pass it as a keyword, "
                                           f"e.g. build(..., {token.text}=2)")
        raise _point(self.spec, token, "expected a repeat count (an int or a name) after '*'")

    def parse(self):
        layers = self.sequence()
        self.take("end", "'->' between layers")
        return layers


def parse(spec: str, *, optional: bool = True, **counts) -> list[Token]:
    """The spec's layer tokens in order, repeats expanded (see the module docstring for the grammar)."""
    return _Parser(spec, counts, optional).parse()


def build(spec: str, input_shape, num_classes: int = 10, *, width: int = 32, hidden: int = 512,
          fit: str = "error", optional: bool = True, rng=None, **counts) -> Sequential:
    """A ``Sequential`` network from the notes' notation, sized for ``input_shape`` (C, H, W).

    Args:
        spec: e.g. ``"INPUT -> [[CONV -> RELU]*2 -> POOL]*3 -> [FC -> RELU]*2 -> FC"``.
        input_shape: one example's shape, (C, H, W) for images or (D,) for vectors.
        num_classes: outputs of the last FC layer (unless it says FC-N itself).
        width: filters of the first conv without an explicit count; doubled after each pool.
        hidden: outputs of the other FC layers without an explicit count.
        fit: the windows' policy when they do not tile ("error", "crop" or "pad").
        optional: keep the layers marked with ``?``.
        rng: a ``numpy.random.Generator`` for the initial weights.
        counts: values of named repeat counts, e.g. ``N=2, M=3, K=1``.

    Raises:
        SpecError (a ValueError) or ShapeError, pointing at the offending token.

    >>> net = build("INPUT -> [[CONV -> RELU]*2 -> POOL]*3 -> [FC -> RELU]*2 -> FC", (3, 32, 32), 10)
    >>> net.output_shape((1, 3, 32, 32)), [name for name, _ in net.named_children()][:6]
    ((1, 10), ['conv1', 'relu1', 'conv2', 'relu2', 'pool1', 'conv3'])
    """
    tokens = parse(spec, optional=optional, **counts)
    last_fc = max((i for i, t in enumerate(tokens) if _split(t)[0] == "FC"), default=None)
    shape, layers, seen = (1, *input_shape), {}, {}
    channels_pending_double, convs = False, 0
    for i, token in enumerate(tokens):
        kind, size, arg, stride = _split(token)
        _check_token(spec, token, kind, size, arg, stride, i)
        if kind == "INPUT":
            continue
        if kind == "CONV":
            if arg is None and channels_pending_double and convs:
                width *= 2
            out = int(arg) if arg is not None else width
            width, channels_pending_double, convs = out, False, convs + 1
            F = int(size or 3)
            layer = Conv2d(shape[1], out, F, stride=int(stride or 1), padding=(F - 1) // 2, fit=fit, rng=rng)
        elif kind in ("POOL", "MAXPOOL", "AVGPOOL"):
            pool = AvgPool2d if kind == "AVGPOOL" else MaxPool2d
            layer, channels_pending_double = pool(int(size or 2), stride=int(stride or 2), fit=fit), True
        elif kind in ("ADAPTIVEPOOL", "ADAPTIVEMAXPOOL"):
            pool = AdaptiveMaxPool2d if kind == "ADAPTIVEMAXPOOL" else AdaptiveAvgPool2d
            layer = pool(int(size or 1))
        elif kind == "FC":
            if len(shape) > 2:
                _add(layers, seen, "flatten", Flatten())
                shape = (shape[0], math.prod(shape[1:]))
            out = int(arg) if arg is not None else (num_classes if i == last_fc else hidden)
            if i == last_fc and arg is not None and out != num_classes:
                raise _point(spec, token, f"the last FC layer has {out} outputs but num_classes="
                                          f"{num_classes}; write FC-{num_classes} or FC, or pass "
                                          f"num_classes={out}")
            layer = Linear(shape[1], out, rng=rng)
        elif kind == "DROPOUT":
            layer = Dropout(float(arg) if arg is not None else 0.5, rng=rng)
        elif kind == "BN":
            layer = BatchNorm2d(shape[1]) if len(shape) == 4 else BatchNorm1d(shape[1])
        else:
            layer = ACTIVATIONS[kind]()
        try:
            shape = layer.output_shape(shape)
        except ShapeError as e:
            hint = " (for the whole spec: build(..., fit='crop'))" if "not an integer" in str(e) else ""
            raise _point(spec, token, f"{e}{hint}", ShapeError) from None
        _add(layers, seen, {"FC": "fc", "DROPOUT": "dropout", "BN": "bn"}.get(kind, kind.lower()), layer)
    if not layers:
        raise _point(spec, tokens[0] if tokens else Token("end", spec, 0), "the spec has no layers")
    return Sequential(layers)


def _split(token):
    """'CONV5-32/2' -> ('CONV', '5', '32', '2'); 'RELU6' -> ('RELU6', None, None, None)."""
    m = _LAYER.fullmatch(token.text.upper())
    kind, size = m["kind"], m["size"]
    if size and kind + size in KINDS:
        kind, size = kind + size, None
    return kind, size, m["arg"], m["stride"]


def _check_token(spec, token, kind, size, arg, stride, index):
    if kind not in KINDS:
        raise _point(spec, token, f"unknown layer {kind!r}; expected one of {', '.join(KINDS)}")
    takes = {"CONV": "size arg stride", "POOL": "size stride", "MAXPOOL": "size stride",
             "AVGPOOL": "size stride", "ADAPTIVEPOOL": "size", "ADAPTIVEMAXPOOL": "size", "FC": "arg",
             "DROPOUT": "arg"}.get(kind, "")
    for name, value in (("size", size), ("arg", arg), ("stride", stride)):
        if value is not None and name not in takes:
            forms = _FORMS.get(kind, f"{kind} takes no hyperparameters")
            raise _point(spec, token, f"{kind} does not take a {_PART[name]}; {forms}")
    if arg is not None and kind in ("CONV", "FC") and ("." in arg or int(arg) < 1):
        raise _point(spec, token, f"{kind}-{arg}: the number of {'filters' if kind == 'CONV' else 'outputs'} "
                                  f"must be a whole number >= 1")
    if kind == "DROPOUT" and arg is not None and not 0 <= float(arg) < 1:
        raise _point(spec, token, f"DROPOUT-{arg}: p must be in [0, 1)")
    if any(v is not None and v.isdigit() and int(v) < 1 for v in (size, stride)):
        raise _point(spec, token, "kernel sizes and strides must be >= 1")
    if kind == "INPUT" and index != 0:
        raise _point(spec, token, "INPUT can only be the first layer")


_PART = {"size": "kernel size", "arg": "'-N' part", "stride": "'/S' stride"}
_FORMS = {"CONV": "write CONV, CONV5, CONV3-64 or CONV5-32/2", "FC": "write FC or FC-512",
          "DROPOUT": "write DROPOUT or DROPOUT-0.3", "POOL": "write POOL, POOL3 or POOL3/2",
          "MAXPOOL": "write MAXPOOL, MAXPOOL3 or MAXPOOL3/2",
          "AVGPOOL": "write AVGPOOL, AVGPOOL3 or AVGPOOL3/2",
          "ADAPTIVEPOOL": "write ADAPTIVEPOOL or ADAPTIVEPOOL6",
          "ADAPTIVEMAXPOOL": "write ADAPTIVEMAXPOOL or ADAPTIVEMAXPOOL6"}


def _add(layers, seen, base, layer):
    seen[base] = seen.get(base, 0) + 1
    layers[base if base == "flatten" else f"{base}{seen[base]}"] = layer
