"""Parameters, the Layer contract, and the containers that chain layers.

The contract (Caffe's lifecycle, micrograd's pairing):
    forward(x)   checks x, calls one kernel from ``cnnkit.functional``, keeps exactly what backward needs;
    backward(dy) *adds* into each ``param.grad``, returns dx and drops the cache;
    backward_params(dy) does the same without dx, for a network's first layer (``fit`` uses it);
    output_shape(input_shape) answers without data; config() is the JSON recipe to rebuild the layer.

Shapes passed to ``output_shape`` include the batch axis, exactly as ``forward`` would see them.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections import OrderedDict

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.fast.dispatch import is_grad_enabled
from cnnkit.functional.activation import add

_LAYER_TYPES: dict[str, type] = {}


class Parameter:
    """A trainable array and the gradient accumulated into it by backward.

    Attributes:
        data: the values (float32 by default).
        grad: same shape and dtype; backward adds to it, an optimizer reads it, ``zero_grad`` clears it.
            Made (zeros) when first used, so a model that only runs inference holds no gradients: they
            would double its memory (ResNet-50: 98 MB of weights).
        trainable: False freezes it (optimizers skip it; backward still fills grad, which is cheap).
    """

    def __init__(self, data, *, trainable: bool = True):
        self.data = np.asarray(data)
        self._grad = None
        self.trainable = trainable

    @property
    def grad(self) -> np.ndarray:
        if self._grad is None:
            self._grad = np.zeros_like(self.data)
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        self._grad = value

    @property
    def shape(self):
        return self.data.shape

    @property
    def size(self):
        return self.data.size

    def __repr__(self):
        flag = "" if self.trainable else ", trainable=False"
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}{flag})"


class Layer:
    """Base class of every layer and container.

    Subclasses assign ``Parameter`` attributes (``self.weight = Parameter(...)``), name their buffers in
    ``buffer_names`` (arrays saved in the state dict but not trained, like batch norm's running mean), and
    implement ``forward``, ``backward`` and ``output_shape``. The constructor's arguments are recorded
    automatically, which is all ``config()`` needs.
    """

    buffer_names: tuple[str, ...] = ()
    training: bool = True
    # The rank of a batched input for a layer that also takes one example without the batch axis, as PyTorch
    # does: Conv2d sets 4, so (C, H, W) runs as a batch of one and returns (K, H_out, W_out), and backward
    # takes and returns unbatched arrays too. None: only what forward says. See _accept_unbatched.
    batched_ndim: int | None = None
    # True if this layer's own training forward makes one example's output depend on the other examples of
    # the batch (batch norm's statistics) or on random draws (dropout's masks): a model holding such a layer
    # cannot be trained in batch slices. cnnkit.train.parallel.why_not_split checks every layer of a model,
    # so a container is judged by its children and a new layer class needs this line only if it mixes.
    mixes_examples: bool = False

    # What forward keeps for backward: every layer assigns ``self._cache`` in forward. Inside
    # cnnkit.no_grad() the assignment keeps nothing, whatever the layer computed (an input, a mask, its
    # branches' sizes), so no layer needs its own inference branch and no activation outlives its use.
    @property
    def _cache(self):
        return self.__dict__.get("_forward_cache")

    @_cache.setter
    def _cache(self, value):
        without_grad = not is_grad_enabled()
        self.__dict__["_forward_cache"] = None if without_grad else value
        self.__dict__["_forward_without_grad"] = without_grad

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _LAYER_TYPES[cls.__name__] = cls
        if getattr(cls, "batched_ndim", None) is not None:
            _accept_unbatched(cls)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            # The outermost __init__ records the arguments the user gave, with defaults filled in.
            if "_init_args" not in self.__dict__:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                self.__dict__["_init_args"] = {k: v for k, v in list(bound.arguments.items())[1:]}
            init(self, *args, **kw)

        cls.__init__ = recording_init

    # -- running -----------------------------------------------------------------------------------------
    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def backward_params(self, dy) -> None:
        """Accumulate parameter gradients only, for a layer whose input needs no gradient (a network's
        first layer: ``fit`` calls this on the model). Layers where dx is costly skip it; by default this is
        ``backward`` with dx discarded."""
        self.backward(dy)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape ``forward`` returns for an input of ``input_shape`` (batch axis included)."""
        raise NotImplementedError

    def _pop_cache(self):
        """The forward cache, removed so that a second backward fails loudly instead of silently."""
        cache, self.__dict__["_forward_cache"] = self._cache, None
        if cache is None and self.__dict__.get("_forward_without_grad"):
            raise RuntimeError(f"{self!r}: backward was called after a forward inside cnnkit.no_grad(), "
                               f"which keeps no cache for a backward; run the forward outside no_grad() to "
                               f"differentiate it.")
        if cache is None:
            raise RuntimeError(f"{self!r}: backward was called before forward (or twice for one forward); "
                               f"call forward first so there is something to differentiate.")
        return cache

    def check_input(self, x, ndim: int, channels: int | None = None, layout: str = "(N, C, H, W)"):
        """Raise a clear TypeError/ShapeError for input this layer cannot take."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{self!r}: expected a NumPy array, received {type(x).__name__}.")
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"{self!r}: expected a floating-point array, received dtype {x.dtype}; "
                            f"convert with x.astype(np.float32).")
        if x.ndim != ndim:
            also = f" (or one example without the batch axis, {ndim - 1}-D)" if self.batched_ndim == ndim \
                else ""
            raise ShapeError(f"{self!r}: expected a {ndim}-D input {layout}, received shape {x.shape}{also}.")
        if channels is not None and x.shape[1] != channels:
            raise ShapeError(f"{self!r}: expected {channels} input channels, received shape {x.shape} "
                             f"with {x.shape[1]}.")

    def train(self, mode: bool = True):
        """Training mode (dropout drops, batch norm uses batch statistics) for this layer and its children."""
        for layer in self.layers():
            layer.training = mode
        return self

    def eval(self):
        return self.train(False)

    # -- parameters, buffers, children ---------------------------------------------------------------------
    @property
    def params(self) -> dict[str, Parameter]:
        """This layer's own parameters, name -> Parameter (children not included)."""
        return {k: v for k, v in vars(self).items() if isinstance(v, Parameter)}

    def named_children(self):
        """(name, layer) for each direct child, in order."""
        return [(k, v) for k, v in vars(self).items() if isinstance(v, Layer)]

    def named_layers(self, prefix: str = ""):
        """(dotted name, layer) for this layer and every descendant, depth first; this layer's name is ''."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_layers(f"{prefix}.{name}" if prefix else name)

    def layers(self):
        return [layer for _, layer in self.named_layers()]

    def named_parameters(self):
        """(dotted name, Parameter) over the whole tree, in PyTorch's state-dict order."""
        for path, layer in self.named_layers():
            for name, p in layer.params.items():
                yield (f"{path}.{name}" if path else name), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def get(self, name: str) -> Layer:
        """The descendant at a dotted name such as ``"features.0"``; ``""`` is this layer."""
        found = dict(self.named_layers())
        if name not in found:
            close = [n for n in found if n and (n.endswith(name) or name in n)][:5]
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise KeyError(f"{type(self).__name__} has no layer named {name!r}.{hint}")
        return found[name]

    def zero_grad(self):
        for p in self.parameters():
            p.grad[...] = 0

    def astype(self, dtype):
        """Convert every parameter, gradient and floating buffer to ``dtype`` in place (float64: checks)."""
        for layer in self.layers():
            for p in layer.params.values():
                p.data, p.grad = p.data.astype(dtype), p.grad.astype(dtype)
            for name in layer.buffer_names:
                value = getattr(layer, name)
                if np.issubdtype(value.dtype, np.floating):
                    setattr(layer, name, value.astype(dtype))
        return self

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.size for p in self.parameters() if p.trainable or not trainable_only)

    def state_dict(self) -> OrderedDict:
        """Every parameter and buffer by dotted name, in PyTorch's order (so the keys map one to one)."""
        state = OrderedDict()
        for path, layer in self.named_layers():
            own = list(layer.params.items()) + [(b, getattr(layer, b)) for b in layer.buffer_names]
            for name, value in own:
                array = value.data if isinstance(value, Parameter) else value
                state[f"{path}.{name}" if path else name] = array
        return state

    def load_state_dict(self, state, strict: bool = True):
        """Copy arrays into this model's parameters and buffers, checking every key and shape first.

        Raises:
            KeyError: with ``strict``, listing all missing and unexpected keys; ShapeError: listing all
            keys whose shapes differ. Nothing is copied unless every check passes.
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        wrong = [f"{k}: model {tuple(own[k].shape)}, given {tuple(np.shape(state[k]))}"
                 for k in own if k in state and tuple(own[k].shape) != tuple(np.shape(state[k]))]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}.")
        if wrong:
            raise ShapeError("load_state_dict: shapes differ for " + "; ".join(wrong) + ".")
        for path, layer in self.named_layers():
            for name, p in layer.params.items():
                key = f"{path}.{name}" if path else name
                if key in state:
                    p.data[...] = np.asarray(state[key], dtype=p.data.dtype)
            for name in layer.buffer_names:
                key = f"{path}.{name}" if path else name
                if key in state:
                    getattr(layer, name)[...] = np.asarray(state[key])
        return self

    # -- description -----------------------------------------------------------------------------------------
    def config(self) -> dict:
        """A JSON-able recipe: ``{"type": "Conv2d", "in_channels": 3, ...}``; see :func:`from_config`."""
        args = {k: _jsonable(v) for k, v in self.__dict__.get("_init_args", {}).items() if k != "rng"}
        return {"type": type(self).__name__, **args}

    def extra_repr(self) -> str:
        """The arguments that differ from their defaults, e.g. ``negative_slope=0.2``."""
        defaults = _defaults(type(self).__init__)
        args = self.__dict__.get("_init_args", {})
        return ", ".join(f"{k}={v!r}" for k, v in args.items() if k != "rng" and defaults.get(k) != v)

    def _repr_html_(self):
        """Jupyter's view: a collapsible tree with every parameter's shape and count (cnnkit.viz.html)."""
        from cnnkit.viz.html import layer_html

        return layer_html(self)

    def __repr__(self):
        children = self.named_children()
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


@functools.cache
def _defaults(init) -> dict:
    """The default of each parameter of a layer's ``__init__``, read once per class: pooling layers name
    themselves (their repr) in every forward, for the error messages."""
    return {k: p.default for k, p in inspect.signature(init).parameters.items()}


def _accept_unbatched(cls):
    """Let ``cls`` take one example without the batch axis, written once for every such layer.

    forward, backward, backward_params and output_shape are wrapped (once: a subclass inherits the
    wrappers): an input of rank ``batched_ndim - 1`` gets a batch axis of one, the layer runs as usual, and
    the result loses the axis again; the gradient of an unbatched forward is unbatched too.
    """
    for name, wrap in (("forward", _unbatched_forward), ("backward", _unbatched_backward),
                       ("backward_params", _unbatched_backward), ("output_shape", _unbatched_shape)):
        method = getattr(cls, name)
        if not getattr(method, "accepts_unbatched", False):
            wrapper = functools.wraps(method)(wrap(method))
            wrapper.accepts_unbatched = True
            setattr(cls, name, wrapper)


def _unbatched_forward(forward):
    def wrapper(self, x, *args, **kwargs):
        single = isinstance(x, np.ndarray) and x.ndim == self.batched_ndim - 1
        if not single:
            y = forward(self, x, *args, **kwargs)
            self._unbatched = False
            return y
        with _as_unbatched(x.shape):
            y = forward(self, x[None], *args, **kwargs)
        self._unbatched = True  # after the call: a subclass's forward calling its parent's resets it
        return tuple(v[0] for v in y) if isinstance(y, tuple) else y[0]  # (y, indices) of return_indices
    return wrapper


def _unbatched_backward(backward):
    def wrapper(self, dy):
        single = self.__dict__.get("_unbatched", False) and np.ndim(dy) == self.batched_ndim - 1
        dx = backward(self, dy[None] if single else dy)
        return dx[0] if single and dx is not None else dx
    return wrapper


def _unbatched_shape(output_shape):
    def wrapper(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) == self.batched_ndim - 1:
            with _as_unbatched(shape):
                return tuple(output_shape(self, (1, *shape))[1:])
        return output_shape(self, shape)
    return wrapper


@contextlib.contextmanager
def _as_unbatched(shape):
    """Say, in a ShapeError raised inside, that this input was taken as one example without the batch axis."""
    try:
        yield
    except ShapeError as e:
        raise ShapeError(f"{e} (The {len(shape)}-D input of shape {tuple(shape)} was taken as one example "
                         f"without the batch axis, a batch of one.)") from None


def _jsonable(value):
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Layer):
        return value.config()
    return value


def from_config(config: dict) -> Layer:
    """Rebuild a layer (or a whole network) from :meth:`Layer.config`. Weights are not part of a config.

    Only registered cnnkit layer types can be named, so a config can never run arbitrary code.
    """
    config = dict(config)
    kind = config.pop("type", None)
    cls = _LAYER_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"Unknown layer type {kind!r}; known types: {', '.join(sorted(_LAYER_TYPES))}.")
    if hasattr(cls, "_from_config"):
        return cls._from_config(config)
    config.pop("name", None)
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})


class Sequential(Layer):
    """Layers applied one after another; backward runs them in reverse.

    Children are named ``"0"``, ``"1"``, ... like PyTorch, or by keyword (``Sequential(conv=..., bn=...)``)
    or from a dict, which is how the zoo reproduces torchvision's state-dict keys.

    Shape:
        input shape -> layer_k.output_shape(... layer_1.output_shape(input shape)): each child's output
        is the next child's input.

    Args:
        *layers: the children in order, named "0", "1", ...; or a single dict ``{name: layer}``.
        **named: the children in order as ``name=layer`` (not together with ``*layers``).

    Raises:
        TypeError: a child that is not a cnnkit Layer, or both positional and named children.
        ShapeError (in forward and output_shape): the first child whose input does not fit, in its words.

    >>> from cnnkit.layers import Conv2d
    >>> net = Sequential(Conv2d(3, 8, 3, padding=1), Conv2d(8, 4, 4, stride=2, padding=1))
    >>> net.output_shape((2, 3, 32, 32))
    (2, 4, 16, 16)
    """

    def __init__(self, *layers, **named):
        if len(layers) == 1 and isinstance(layers[0], dict):
            named, layers = dict(layers[0]), ()
        if layers and named:
            raise TypeError("Sequential takes either layers or name=layer pairs, not both.")
        items = named.items() if named else ((str(i), layer) for i, layer in enumerate(layers))
        self._layers = OrderedDict()
        for name, layer in items:
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: child {name!r} is a {type(layer).__name__}, "
                                f"not a cnnkit Layer.")
            self._layers[name] = layer

    def named_children(self):
        return list(self._layers.items())

    def __getitem__(self, index):
        if isinstance(index, str):
            return self._layers[index]
        values = list(self._layers.values())
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._layers.items())[index]))
        return values[index]

    def __len__(self):
        return len(self._layers)

    def __iter__(self):
        return iter(self._layers.values())

    def append(self, layer: Layer, name: str | None = None):
        self._layers[name if name is not None else str(len(self._layers))] = layer
        return self

    def forward(self, x):
        for layer in self._layers.values():
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self._layers.values()):
            dy = layer.backward(dy)
        return dy

    def backward_params(self, dy):
        if not self._layers:
            return
        first, *rest = self._layers.values()
        for layer in reversed(rest):
            dy = layer.backward(dy)
        first.backward_params(dy)

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._layers.values():
            shape = layer.output_shape(shape)
        return shape

    def config(self):
        return {"type": "Sequential", "layers": [{"name": n, **c.config()} for n, c in self._layers.items()]}

    @classmethod
    def _from_config(cls, config):
        return cls(OrderedDict((c["name"], from_config(c)) for c in config["layers"]))


class Residual(Layer):
    """``y = activation(body(x) + shortcut(x))``: the ResNet block; the shortcut is the identity if None.

    The body's children are named directly under the block (``conv1``, ``bn1``, ...) and the shortcut
    under ``shortcut_name``, so a block can carry torchvision's names (``layer1.0.conv1``,
    ``layer1.0.downsample``).

    Shape:
        (N, C, *S) -> body's output shape, which the shortcut (identity: the input's own shape) must equal.

    Args:
        body: the residual branch F(x).
        shortcut: the projection for the skip path (e.g. a 1x1 stride-2 Conv2d + BatchNorm2d), or None for
            the identity.
        activation: applied after the sum (ReLU in ResNet), or None.
        shortcut_name: the name of the shortcut child (torchvision calls it ``downsample``).

    Raises:
        ShapeError: body and shortcut give different shapes (the message suggests adding a shortcut).

    >>> from cnnkit.layers import Conv2d, ReLU
    >>> Residual(Conv2d(8, 8, 3, padding=1), activation=ReLU()).output_shape((2, 8, 16, 16))
    (2, 8, 16, 16)
    >>> Residual(Conv2d(8, 16, 3, stride=2, padding=1, fit="crop"),
    ...          Conv2d(8, 16, 1, stride=2, fit="crop")).output_shape((2, 8, 16, 16))
    (2, 16, 8, 8)
    """

    def __init__(self, body: Layer, shortcut: Layer | None = None, *, activation: Layer | None = None,
                 shortcut_name: str = "shortcut"):
        self.body = body if isinstance(body, Sequential) else Sequential(body=body)
        self.shortcut, self.activation, self.shortcut_name = shortcut, activation, shortcut_name

    def named_children(self):
        named = list(self.body.named_children())
        if self.shortcut is not None:
            named.append((self.shortcut_name, self.shortcut))
        if self.activation is not None:
            named.append(("activation", self.activation))
        return named

    def forward(self, x):
        y = self.body.forward(x)
        s = x if self.shortcut is None else self.shortcut.forward(x)
        if y.shape != s.shape:
            raise ShapeError(f"Residual: body gives {y.shape} but shortcut gives {s.shape}; "
                             f"add a shortcut (e.g. a strided 1x1 Conv2d) that matches.")
        # In training the sum is a new array (the body's last layer may keep y for its backward). Under
        # no_grad no layer keeps y, so the sum goes into y itself (unless y is x or s, as from an Identity
        # body), and a ReLU after it runs in the same pass. Either way in the body's memory layout.
        inference = not is_grad_enabled()
        in_place = inference and not (np.may_share_memory(y, x) or np.may_share_memory(y, s))
        # (not when the activation's forward is wrapped on the instance, as viz's capture does to see its
        # output: skipping the call would hide it)
        relu = inference and getattr(self.activation, "adds_into_relu", False) \
            and "forward" not in vars(self.activation)
        y = add(y, s, out=y if in_place else None, relu=relu,
                algorithm=self.activation.algorithm if relu else "auto")[0]
        if relu:
            self.activation._cache = None  # it ran (inside the sum), under no_grad: no backward follows
            return y
        return y if self.activation is None else self.activation.forward(y)

    def backward(self, dy):
        if self.activation is not None:
            dy = self.activation.backward(dy)
        dx = self.body.backward(dy)
        return add(dx, dy if self.shortcut is None else self.shortcut.backward(dy))[0]

    def output_shape(self, input_shape):
        y = self.body.output_shape(input_shape)
        s = tuple(input_shape) if self.shortcut is None else self.shortcut.output_shape(input_shape)
        if y != s:
            raise ShapeError(f"Residual: body gives {y} but shortcut gives {s} "
                             f"for input {tuple(input_shape)}.")
        return y

    def config(self):
        return {"type": "Residual", "body": self.body.config(),
                "shortcut": None if self.shortcut is None else self.shortcut.config(),
                "activation": None if self.activation is None else self.activation.config(),
                "shortcut_name": self.shortcut_name}

    @classmethod
    def _from_config(cls, config):
        def build(c):
            return None if c is None else from_config(c)
        return cls(build(config["body"]), build(config["shortcut"]), activation=build(config["activation"]),
                   shortcut_name=config.get("shortcut_name", "shortcut"))


class Concat(Layer):
    """Parallel branches on the same input, joined along channels (axis 1): the Inception module.

    ``Concat(a, b)`` names branches "0", "1"; ``Concat(branch1=a, branch2=b)`` uses the given names.

    Shape:
        (N, C, H, W) -> (N, C_1 + C_2 + ... + C_B, H_out, W_out): every branch must give the same N and
        spatial size; the output channels are the sum of the branches' channels.

    Args:
        *branches: the branches, named "0", "1", ...
        **named: the branches as ``name=layer`` (not together with ``*branches``).

    Raises:
        TypeError: a branch that is not a cnnkit Layer, or both positional and named branches.
        ShapeError: branch outputs that differ beyond the channel axis.

    >>> from cnnkit.layers import Conv2d
    >>> Concat(Conv2d(4, 8, 1), Conv2d(4, 16, 3, padding=1)).output_shape((2, 4, 7, 7))
    (2, 24, 7, 7)
    """

    def __init__(self, *branches, **named):
        self.branches = Sequential(*branches, **named)

    def named_children(self):
        return self.branches.named_children()

    def forward(self, x):
        outputs = [branch.forward(x) for branch in self.branches]
        self._cache = [y.shape[1] for y in outputs]
        try:
            return np.concatenate(outputs, axis=1)
        except ValueError as e:
            shapes = [y.shape for y in outputs]
            raise ShapeError(f"Concat: branch outputs {shapes} differ beyond axis 1.") from e

    def backward(self, dy):
        sizes = self._pop_cache()
        pieces = np.split(dy, np.cumsum(sizes)[:-1], axis=1)
        return sum(branch.backward(d) for branch, d in zip(self.branches, pieces))

    def output_shape(self, input_shape):
        shapes = [b.output_shape(input_shape) for b in self.branches]
        if any(s[:1] + s[2:] != shapes[0][:1] + shapes[0][2:] for s in shapes):
            raise ShapeError(f"Concat: branch outputs {shapes} differ beyond the channel axis.")
        return (shapes[0][0], sum(s[1] for s in shapes), *shapes[0][2:])

    def config(self):
        return {"type": "Concat", "branches": self.branches.config()}

    @classmethod
    def _from_config(cls, config):
        return cls(**from_config(config["branches"])._layers)
