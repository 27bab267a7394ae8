"""Transfer learning: reuse a trained network for a new task ("don't be a hero").

The notes describe three ways to use a network pretrained on a large dataset, in order of how much data the
new task has:

1. **Fixed feature extractor.** Cut the network at a layer (the last pooling layer, the penultimate FC),
   run the new images through it once to get their *CNN codes*, and train a linear classifier on the
   codes: :func:`feature_extractor`, :func:`extract_features`, :class:`LinearClassifier`.
2. **Fine-tuning.** Replace the last layer with one for the new classes (:func:`replace_head`), keep the
   earlier layers frozen (:func:`freeze`) or train them with a smaller learning rate than the new head
   (:func:`param_groups`, which feeds any ``cnnkit.optim`` optimizer).
3. **Convolutionalizing** (the notes' "converting FC layers to CONV layers"): the FC layers at the end of a
   trained network become equivalent convolutions (:func:`convolutionalize`), so the network slides over a
   larger image in one pass and returns a map of class scores.

>>> import numpy as np
>>> from cnnkit import models
>>> net = models.get("lenet5", rng=np.random.default_rng(0))
>>> codes = extract_features(feature_extractor(net, "relu4"), np.zeros((3, 1, 28, 28), np.float32),
...                          progress=False)
>>> codes.shape
(3, 84)
>>> frozen = freeze(net, until="fc2")
>>> frozen[-1], [name for name, p in net.named_parameters() if p.trainable]
('fc2.bias', ['fc3.weight', 'fc3.bias'])
"""

from __future__ import annotations

import copy
import sys
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from cnnkit.fast.dispatch import no_grad
from cnnkit.layers import (
    ELU,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    GlobalMaxPool2d,
    Identity,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    ReLU6,
    Sigmoid,
    Softmax,
    Tanh,
)
from cnnkit.layers.base import Concat, Layer, Parameter, Residual, Sequential
from cnnkit.layers.graph import Graph
from cnnkit.losses import MulticlassSVM, SoftmaxCrossEntropy

# -- cutting a network -----------------------------------------------------------------------------------


def feature_extractor(model: Layer, layer: str) -> Sequential:
    """The network up to and including ``layer`` (a dotted name like ``"features.12"``): it outputs CNN codes.

    The cut keeps the names of everything it keeps, so its state-dict keys are a prefix of the model's, and
    it shares their layers (and weights) with ``model``: nothing is copied. Cut in a :class:`Graph`, it is a
    Graph of the nodes that ``layer`` depends on, with ``layer`` as its output.

    Raises:
        KeyError: no layer of that name (with the closest names). ValueError: the name is inside a Residual
            or Concat branch, where a chain cannot be cut.

    >>> from cnnkit.layers import Conv2d, ReLU
    >>> net = Sequential(conv=Conv2d(1, 4, 3), relu=ReLU(), head=Conv2d(4, 2, 1))
    >>> [name for name, _ in feature_extractor(net, "relu").named_children()]
    ['conv', 'relu']
    """
    model.get(layer)  # a KeyError with suggestions for a name that does not exist
    if layer == "":
        return model if isinstance(model, Sequential) else Sequential(OrderedDict(model=model))
    return _cut(model, layer.split("."), "")


def _cut(container: Layer, parts: list[str], done: str) -> Sequential:
    if isinstance(container, Graph):  # the nodes the cut node needs, in their order: a Graph again
        sub = container.subgraph(parts[0])
        if len(parts) > 1:
            sub.replace(parts[0], _cut(container[parts[0]], parts[1:], _join(done, parts[0])))
        return sub
    if not isinstance(container, Sequential):
        raise ValueError(f"feature_extractor: {done or 'the model'} is a {type(container).__name__}; a "
                         f"network can only be cut inside Sequential chains, not inside a block's branches. "
                         f"Cut at {done!r} (the whole block) instead.")
    kept = OrderedDict()
    for name, child in container.named_children():
        if name == parts[0]:
            kept[name] = child if len(parts) == 1 else _cut(child, parts[1:], _join(done, name))
            return Sequential(kept)
        kept[name] = child
    raise KeyError(f"feature_extractor: {_join(done, parts[0])!r} is not a child of {done or 'the model'}.")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def extract_features(model: Layer, data, batch_size: int = 256, *, flatten: bool = True,
                     progress: bool = True, stream=None):
    """Run ``data`` through ``model`` in eval mode under ``cnnkit.no_grad()``, batch by batch, and collect
    the outputs (CNN codes).

    Args:
        model: usually a :func:`feature_extractor`.
        data: float images (N, C, H, W) as prepared for the model (normalized), or an iterable of
            ``(x, y)`` batches such as a ``cnnkit.data.DataLoader`` (or of bare ``x`` batches).
        batch_size: images per forward pass (for an array).
        flatten: return (N, D) codes (default) instead of the layer's full output shape.
        progress: show a progress bar (on a terminal; nothing otherwise).

    Returns:
        codes (N, D) for an array; ``(codes, labels)`` for an iterable of ``(x, y)`` batches.

    Raises:
        TypeError: integer images (normalize them first, or pass a DataLoader).
    """
    if isinstance(data, np.ndarray):
        if not np.issubdtype(data.dtype, np.floating):
            raise TypeError(f"extract_features: received {data.dtype} images; pass float images prepared as "
                            f"for training (e.g. x.astype(np.float32) / 255, normalized) or a DataLoader.")
        batches = ((data[i:i + batch_size], None) for i in range(0, len(data), batch_size))
        total = -(-len(data) // batch_size)
    else:  # (x, y) batches, or bare x batches
        batches = ((item if isinstance(item, tuple | list) else (item, None)) for item in data)
        total = len(data) if hasattr(data, "__len__") else None
    modes = [layer.training for layer in model.layers()]
    model.eval()
    codes, labels = [], []
    try:
        for x, y in _progress(batches, total, "features", progress, stream):
            with no_grad():  # inference: no layer keeps its input for a backward
                out = model.forward(x)
            codes.append(out.reshape(len(out), -1) if flatten else out)
            if y is not None:
                labels.append(np.asarray(y))
    finally:
        for layer, mode in zip(model.layers(), modes, strict=True):
            layer.training = mode
    codes = np.concatenate(codes) if codes else np.zeros((0, 0), np.float32)
    return codes if isinstance(data, np.ndarray) or not labels else (codes, np.concatenate(labels))


def _progress(batches, total, description, enabled, stream):
    """A transient rich progress bar over ``batches`` on a terminal; the batches unchanged otherwise."""
    stream = stream if stream is not None else sys.stderr
    if not enabled or not getattr(stream, "isatty", lambda: False)():
        return batches
    from rich.console import Console
    from rich.progress import track

    return track(batches, total=total, description=description, console=Console(file=stream), transient=True)


# -- a linear classifier on codes ------------------------------------------------------------------------

LOSSES = {"softmax": SoftmaxCrossEntropy, "svm": MulticlassSVM}


class LinearClassifier:
    """A linear classifier on CNN codes: cnnkit's ``Linear`` trained with the softmax or multiclass SVM loss.

    The codes are centred (each feature's training mean subtracted) and scaled by one number, their overall
    standard deviation, which makes one learning rate work for codes of any scale. (One scale, not one per
    feature: with few examples a feature that is almost constant in training, a rarely firing ReLU, would be
    blown up and dominate at test time.) The weights are trained by SGD with momentum and L2 weight decay
    (the notes' regularization strength).

    Args:
        num_features (D), num_classes (K); loss: "softmax" or "svm"; rng: for the initial weights.

    >>> rng = np.random.default_rng(0)
    >>> codes, labels = rng.normal(size=(60, 5)).astype(np.float32), np.repeat([0, 1, 2], 20)
    >>> codes[np.arange(60), labels] += 4  # class k is large in feature k
    >>> clf = LinearClassifier(5, 3, rng=rng).fit(codes, labels, epochs=50)
    >>> clf.accuracy(codes, labels)
    1.0
    """

    def __init__(self, num_features: int, num_classes: int, loss: str = "softmax", *, rng=None):
        if loss not in LOSSES:
            raise ValueError(f"LinearClassifier: Received loss={loss!r}; expected one of {sorted(LOSSES)}.")
        self.linear = Linear(num_features, num_classes, rng=rng)
        self.loss = LOSSES[loss]()
        self.mean = self.std = None
        self.history: list[float] = []

    def _standardized(self, codes):
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.linear.in_features:
            raise ValueError(f"LinearClassifier: expected codes (N, {self.linear.in_features}), received "
                             f"shape {codes.shape}.")
        codes = codes.astype(self.linear.weight.data.dtype, copy=False)
        return codes if self.mean is None else (codes - self.mean) / self.std

    def fit(self, codes, labels, *, epochs: int = 100, lr: float = 0.05, weight_decay: float = 1e-3,
            momentum: float = 0.9, batch_size: int | None = None, seed: int = 0):
        """Train on codes (N, D) and labels (N,): full-batch descent unless ``batch_size``. Returns self."""
        from cnnkit.optim import SGD

        codes = np.asarray(codes, dtype=self.linear.weight.data.dtype)
        labels = np.asarray(labels, dtype=np.int64)
        self.mean = codes.mean(axis=0)
        self.std = codes.dtype.type(max(float((codes - self.mean).std()), 1e-12))
        x = self._standardized(codes)
        optimizer = SGD([self.linear.weight, self.linear.bias], lr=lr, momentum=momentum,
                        weight_decay=weight_decay)
        rng = np.random.default_rng(seed)
        step = batch_size or len(x)
        for _ in range(epochs):
            order = rng.permutation(len(x)) if batch_size else np.arange(len(x))
            total = 0.0
            for i in range(0, len(x), step):
                rows = order[i:i + step]
                value = self.loss.forward(self.linear.forward(x[rows]), labels[rows])
                optimizer.zero_grad()
                self.linear.backward(self.loss.backward())
                optimizer.step()
                total += value * len(rows)
            self.history.append(total / len(x))
        return self

    def scores(self, codes) -> np.ndarray:
        """Class scores (N, K)."""
        return self.linear.forward(self._standardized(codes))

    def predict(self, codes) -> np.ndarray:
        return self.scores(codes).argmax(axis=1)

    def accuracy(self, codes, labels) -> float:
        return float((self.predict(codes) == np.asarray(labels)).mean())


# -- freezing, heads and learning rates ------------------------------------------------------------------


def freeze(model: Layer, until: str | None = None) -> list[str]:
    """Make parameters untrainable (``Parameter.trainable = False``; optimizers skip them).

    With ``until`` (a dotted layer name), every parameter of that layer and of all layers before it in the
    network's order is frozen, and the rest are left as they are; without it, all parameters are frozen.

    Returns:
        the frozen parameters' names, in order.

    Raises:
        KeyError: no layer named ``until`` (with the closest names).
    """
    layers = list(model.named_layers())
    if until:
        model.get(until)
        last = max(i for i, (name, _) in enumerate(layers) if name == until or name.startswith(until + "."))
        layers = layers[:last + 1]
    names = []
    for layer_name, layer in layers:  # named_layers' order is named_parameters' order
        for param_name, p in layer.params.items():
            p.trainable = False
            names.append(_join(layer_name, param_name))
    return names


def unfreeze(model: Layer, layer: str = "") -> list[str]:
    """Make every parameter of ``layer`` (default: the whole model) trainable again; returns their names."""
    part = model.get(layer)
    names = []
    for name, p in part.named_parameters():
        p.trainable = True
        names.append(_join(layer, name))
    return names


def head_name(model: Layer) -> str:
    """The dotted name of the classifier head: the last Linear (or, in a convolutional head, Conv2d).

    Raises:
        ValueError: the model has neither.
    """
    heads = [name for name, layer in model.named_layers() if isinstance(layer, Linear | Conv2d)]
    if not heads:
        raise ValueError(f"{type(model).__name__} has no Linear or Conv2d layer to serve as the head.")
    return heads[-1]


def replace_head(model: Layer, num_classes: int, *, rng=None) -> Layer:
    """Put a new, randomly initialized last layer with ``num_classes`` outputs in place of the old head.

    The head is :func:`head_name`'s layer; a Linear(D, K) becomes Linear(D, num_classes), a Conv2d head
    (after :func:`convolutionalize`) a Conv2d with the same window and ``num_classes`` filters. The model is
    changed in place and returned; the new head is trainable, everything else is left as it was.
    """
    name = head_name(model)
    old = model.get(name)
    if isinstance(old, Linear):
        new = Linear(old.in_features, num_classes, bias=old.bias is not None, rng=rng)
    else:
        args = {k: v for k, v in old.config().items() if k not in ("type", "out_channels")}
        new = Conv2d(out_channels=num_classes, rng=rng, **args)
    _set_child(model, name, new)
    return model


def _set_child(model: Layer, name: str, new: Layer):
    parent_name, _, child = name.rpartition(".")
    parent = model.get(parent_name)
    if isinstance(parent, Graph):
        parent.replace(child, new)
        return
    if isinstance(parent, Concat):
        parent = parent.branches
    if isinstance(parent, Residual):
        if child == parent.shortcut_name:
            parent.shortcut = new
            return
        if child == "activation":
            parent.activation = new
            return
        parent = parent.body
    if isinstance(parent, Sequential):
        parent._layers[child] = new
    else:
        setattr(parent, child, new)


def param_groups(model: Layer, lr_mults: Mapping[str, float], default: float = 1.0) -> list[dict]:
    """Parameter groups with per-layer learning-rate multipliers, for any ``cnnkit.optim`` optimizer.

    Each parameter takes the multiplier of the longest layer name in ``lr_mults`` that contains it (a
    name covers the layer and everything under it), else ``default``. The usual fine-tuning recipe, the
    pretrained layers learning ten times slower than the new head::

        SGD(param_groups(model, {head_name(model): 1.0}, default=0.1), lr=0.01, momentum=0.9)

    Returns:
        ``[{"params": [...], "lr_mult": m}, ...]``, one group per multiplier in order of first use.

    Raises:
        KeyError: a name in ``lr_mults`` is not a layer of the model.
    """
    for name in lr_mults:
        model.get(name)
    groups: dict[float, list[Parameter]] = {}
    for name, p in model.named_parameters():
        matches = [k for k in lr_mults if k == "" or name.startswith(k + ".")]
        mult = float(lr_mults[max(matches, key=len)]) if matches else float(default)
        groups.setdefault(mult, []).append(p)
    return [{"params": params, "lr_mult": mult} for mult, params in groups.items()]


# -- FC layers as convolutions ---------------------------------------------------------------------------

# Layers that act on each position (or each channel) alone, so they work unchanged on a score map.
_POINTWISE = (ReLU, ReLU6, LeakyReLU, ELU, Sigmoid, Tanh, Softmax, Identity, Dropout)


def convolutionalize(model: Layer, input_shape) -> Sequential:
    """The same network with its trailing FC layers turned into convolutions (the notes' "FC -> CONV").

    At the training size a Flatten of a C x H x W volume followed by Linear(C*H*W, K) is a Conv2d(C, K,
    kernel_size=(H, W)) with the same weights reshaped; the Linear layers after it are 1x1 convolutions, and
    a global pooling layer before the Flatten becomes a pooling window of the size it covered (stride 1).
    Applied to a larger image, the network then slides in one pass and returns a map of class scores, the
    scores of every training-size window at a step of the network's total stride.

    Args:
        model: a Sequential ending in Flatten + Linear layers (with activations, dropout and BatchNorm1d
            between them), as every zoo classifier does; it is not changed.
        input_shape: the training input of one example, (C, H, W).

    Returns:
        a new Sequential with the same layer names (so the same state-dict keys); it outputs
        (N, K, 1, 1) at the training size and (N, K, H', W') on larger inputs.

    Raises:
        ValueError: the model has no Flatten + Linear head, or a layer after the Flatten that has no
            convolutional equivalent.

    >>> from cnnkit.layers import Conv2d, Flatten, Linear
    >>> net = Sequential(Conv2d(1, 4, 3), Flatten(), Linear(4 * 6 * 6, 10))
    >>> conv = convolutionalize(net, (1, 8, 8))
    >>> conv.output_shape((1, 1, 8, 8)), conv.output_shape((1, 1, 12, 16))
    ((1, 10, 1, 1), (1, 10, 5, 9))
    """
    state = {"volume": None, "converted": 0}
    new = _convolutionalize(copy.deepcopy(model), (1, *input_shape), state, "")
    if state["converted"] == 0:
        raise ValueError(f"convolutionalize: {type(model).__name__} has no Flatten followed by Linear "
                         f"layers; there is nothing to turn into convolutions.")
    return new


def _convolutionalize(layer: Layer, shape, state, name):
    if isinstance(layer, Sequential) and type(layer) is Sequential:
        children = OrderedDict()
        for child_name, child in layer.named_children():
            out_shape = child.output_shape(shape)
            children[child_name] = _convolutionalize(child, shape, state, _join(name, child_name))
            shape = out_shape
        return Sequential(children)
    if state["volume"] is None:
        return _before_flatten(layer, shape, state, name)
    return _after_flatten(layer, state, name)


def _before_flatten(layer, shape, state, name):
    if isinstance(layer, Flatten):
        if len(shape) != 4 or layer.start_dim != 1 or layer.end_dim != -1:
            raise ValueError(f"convolutionalize: {name} ({layer!r}) must flatten an (N, C, H, W) volume from "
                             f"axis 1, received shape {shape}.")
        state["volume"] = tuple(shape[1:])
        return Identity()
    if isinstance(layer, GlobalAvgPool2d | GlobalMaxPool2d):
        window = tuple(shape[2:])  # the global pool covered the whole training-size map: keep that window
        pool = AvgPool2d if isinstance(layer, GlobalAvgPool2d) else MaxPool2d
        return pool(window, stride=1)
    return layer


def _after_flatten(layer, state, name):
    C, H, W = state["volume"]
    if isinstance(layer, Linear):
        out = layer.out_features
        conv = Conv2d(C, out, (H, W), bias=layer.bias is not None)
        conv.weight.data = layer.weight.data.reshape(out, C, H, W).copy()  # Flatten's order is C, H, W
        conv.weight.grad = np.zeros_like(conv.weight.data)
        conv.weight.trainable = layer.weight.trainable
        if layer.bias is not None:
            conv.bias.data, conv.bias.grad = layer.bias.data.copy(), np.zeros_like(layer.bias.data)
            conv.bias.trainable = layer.bias.trainable
        state["volume"], state["converted"] = (out, 1, 1), state["converted"] + 1
        return conv
    if isinstance(layer, BatchNorm1d):
        bn = BatchNorm2d(layer.num_features, layer.eps, layer.momentum, layer.affine,
                         layer.track_running_stats)
        bn.load_state_dict(layer.state_dict())
        bn.training = layer.training
        return bn
    if isinstance(layer, _POINTWISE):
        return layer
    raise ValueError(f"convolutionalize: {name} ({layer!r}) follows the Flatten but has no convolutional "
                     f"equivalent; supported after Flatten: Linear, BatchNorm1d, "
                     f"{', '.join(c.__name__ for c in _POINTWISE)}.")
