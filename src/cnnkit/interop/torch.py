"""PyTorch interop: load torch weights, convert a cnnkit model to a torch.nn.Module and back.

cnnkit's state-dict keys and shapes are PyTorch's (``features.0.weight``, ``layer1.0.bn1.running_mean``), so
moving weights is a matter of checking and copying arrays:

    model = cnnkit.models.get("resnet18")
    load_torch_weights(model, "resnet18-f37072fd.pth")       # torchvision's ImageNet weights, one line
    net = to_torch(model)                                    # the same network as a torch.nn.Module
    back = from_torch(net)                                   # and back to cnnkit

torch is imported only inside these functions; ``.safetensors`` files are read without it.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from cnnkit.interop.safetensors import load_file as load_safetensors
from cnnkit.layers import base

INSTALL_HINT = 'PyTorch is not installed; install it with pip install "cnnkit[torch]".'


def require_torch():
    """Import torch, or raise an ImportError that names the extra to install."""
    try:
        import torch
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return torch


class StateDictMismatch(ValueError):
    """Weights do not fit a model. ``missing``, ``unexpected`` and ``mismatched`` list every problem."""

    def __init__(self, message, missing=(), unexpected=(), mismatched=()):
        super().__init__(message)
        self.missing, self.unexpected, self.mismatched = list(missing), list(unexpected), list(mismatched)


# -- loading weights --------------------------------------------------------------------------------------

def read_state_dict(source) -> OrderedDict:
    """``{key: array}`` from a state dict (of tensors or arrays), a ``.pt``/``.pth`` or ``.safetensors`` file.

    ``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)``, which refuses any pickled object
    other than tensors and plain containers, so a weights file cannot run code. A checkpoint that wraps the
    weights as ``{"state_dict": {...}}`` or ``{"model": {...}}`` is unwrapped.

    Raises:
        FileNotFoundError; ValueError for a file torch refuses to unpickle or that holds no state dict;
        ImportError (with the extra to install) for a ``.pt`` file without torch.
    """
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(f"load_torch_weights: no such file {path!r}.")
        if path.endswith(".safetensors"):
            return OrderedDict(load_safetensors(path))
        source = _torch_load(path)
    if not isinstance(source, Mapping):
        raise TypeError(f"load_torch_weights: expected a state dict or a file path, received "
                        f"{type(source).__name__}.")
    for wrapper in ("state_dict", "model"):
        if isinstance(source.get(wrapper), Mapping):
            source = source[wrapper]
            break
    state = OrderedDict()
    for key, value in source.items():
        state[key] = _to_numpy(key, value)
    return state


def _torch_load(path: str):
    torch = require_torch()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError (or RuntimeError wrapping it) for refused objects
        first_line = str(e).splitlines()[0] if str(e) else ""
        raise ValueError(f"load_torch_weights: {path!r} cannot be read by torch.load(weights_only=True): "
                         f"it holds pickled objects other than tensors (a whole model, custom classes) or "
                         f"is not a torch file. Save weights with torch.save(model.state_dict(), path). "
                         f"({type(e).__name__}: {first_line})") from e


def _to_numpy(key, value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, without importing torch
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":  # NumPy has no bfloat16; float32 holds it exactly
            value = value.float()
        return value.numpy()
    if isinstance(value, int | float | np.generic):
        return np.asarray(value)
    raise TypeError(f"load_torch_weights: entry {key!r} is a {type(value).__name__}, not a tensor or array.")


def check_state_dict(model: base.Layer, state: Mapping, *, strict: bool = True,
                     what: str = "load_torch_weights"):
    """Compare ``state`` with ``model.state_dict()`` key by key and shape by shape; raise one error for all.

    Raises:
        StateDictMismatch: listing every missing and unexpected key (when ``strict``) and every key whose
            shape differs (always).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state] if strict else []
    unexpected = [k for k in state if k not in own] if strict else []
    mismatched = [(k, tuple(own[k].shape), tuple(np.shape(state[k]))) for k in own
                  if k in state and tuple(own[k].shape) != tuple(np.shape(state[k]))]
    if not (missing or unexpected or mismatched):
        return
    lines = [f"{what}: the weights do not fit {type(model).__name__} "
             f"({len(missing) + len(unexpected) + len(mismatched)} problems; nothing was loaded):"]
    if missing:
        lines.append(f"  missing from the weights ({len(missing)}): {', '.join(missing)}")
    if unexpected:
        lines.append(f"  not in the model ({len(unexpected)}): {', '.join(unexpected)}")
    for key, ours, theirs in mismatched:
        lines.append(f"  shape of {key}: model {ours}, weights {theirs}")
    if mismatched and not (missing or unexpected):
        lines.append("  (a different number of classes? load into the original architecture, then "
                     "cnnkit.transfer.replace_head.)")
    raise StateDictMismatch("\n".join(lines), missing, unexpected, mismatched)


def load_torch_weights(model: base.Layer, source, *, strict: bool = True) -> base.Layer:
    """Copy PyTorch weights into a cnnkit model with the same architecture; returns the model.

    Args:
        model: a cnnkit model whose ``state_dict()`` keys are PyTorch's (every zoo model).
        source: a state dict of torch tensors or NumPy arrays, a ``.pt``/``.pth`` file (read with
            ``torch.load(weights_only=True)``) or a ``.safetensors`` file (read without torch).
            ``module.``-prefixed keys (saved from DataParallel) are accepted.
        strict: False allows missing and unexpected keys (shapes are always checked).

    Raises:
        StateDictMismatch: every missing, unexpected and mis-shaped key, in one message; nothing is copied.

    >>> from cnnkit.layers import Conv2d
    >>> conv = Conv2d(1, 2, 3)
    >>> _ = load_torch_weights(conv, {"weight": np.ones((2, 1, 3, 3)), "bias": np.zeros(2)})
    >>> float(conv.weight.data.sum()), conv.weight.data.dtype
    (18.0, dtype('float32'))
    """
    state = read_state_dict(source)
    own = model.state_dict()
    prefixed = [k.startswith("module.") for k in state]
    if prefixed and all(prefixed) and not any(k.startswith("module.") for k in own):
        state = OrderedDict((k[len("module."):], v) for k, v in state.items())
    check_state_dict(model, state, strict=strict)
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return model


# -- cnnkit -> torch --------------------------------------------------------------------------------------

def to_torch(model: base.Layer, device="cpu"):
    """An equivalent ``torch.nn.Module`` with the same weights and the same state-dict keys.

    Each cnnkit layer becomes its torch counterpart (Conv2d -> nn.Conv2d, BatchNorm2d -> nn.BatchNorm2d,
    GlobalAvgPool2d -> nn.AdaptiveAvgPool2d(1), ...); Sequential becomes nn.Sequential with the same child
    names, Residual and Concat small modules of cnnkit.interop. ``fit="crop"`` is torch's rounding down;
    ``fit="pad"`` is ``ceil_mode=True`` for pooling and an explicit F.pad for convolutions. The module is
    float32 and in the model's training/eval mode.

    Args:
        model: a cnnkit model.
        device: where the module's tensors live ("cpu", "cuda", ...); "meta" gives the structure (names,
            shapes) without memory or weights.

    Raises:
        ImportError without torch; TypeError naming every layer that has no torch counterpart.
    """
    torch = require_torch()
    from cnnkit.interop import _torch_convert

    unsupported = [f"{name or '(root)'} ({type(layer).__name__})" for name, layer in model.named_layers()
                   if _torch_convert.torch_kind(layer) is None]
    if unsupported:
        raise TypeError(f"to_torch: no torch counterpart for {', '.join(unsupported)}; supported layers: "
                        f"{', '.join(sorted(_torch_convert.TO_TORCH))}.")
    # Built on the meta device, so that torch does not spend seconds on random weights we overwrite.
    with torch.device("meta"):
        module = _torch_convert.convert_to_torch(model)
    module = module.to_empty(device=device)
    theirs, ours = module.state_dict(), model.state_dict()
    if list(theirs) != list(ours):  # a converter bug, not a user error: say exactly what differs
        raise RuntimeError(f"to_torch: key mismatch between the models: cnnkit-only "
                           f"{sorted(set(ours) - set(theirs))}, "
                           f"torch-only {sorted(set(theirs) - set(ours))}.")
    if str(device) != "meta":
        with torch.no_grad():
            for key, tensor in theirs.items():
                tensor.copy_(torch.from_numpy(np.asarray(ours[key])))
    return module.train(model.training)


# -- torch -> cnnkit --------------------------------------------------------------------------------------

def from_torch(module) -> base.Layer:
    """A cnnkit model from a ``torch.nn.Sequential``-style network of layer types cnnkit has.

    Supported: nn.Sequential (nested, with any child names), convolutions, Linear, Flatten, pooling
    (nn.AdaptiveAvgPool2d/MaxPool2d only to 1x1), batch norm, LocalResponseNorm, Dropout, the usual
    activations, and the modules ``to_torch`` makes for Residual and Concat. torch convolutions and pooling
    round down, so they become ``fit="crop"`` (``ceil_mode=True`` becomes ``fit="pad"``). Weights and
    buffers are copied; the model is float32.

    Raises:
        TypeError naming every module that cannot be converted, with its dotted name.
    """
    require_torch()
    from cnnkit.interop import _torch_convert

    problems: list[str] = []
    model = _torch_convert.convert_from_torch(module, problems=problems)
    if problems:
        raise TypeError("from_torch: cannot convert " + "; ".join(problems) + ". Supported modules: "
                        + ", ".join(sorted(c.__name__ for c in _torch_convert.FROM_TORCH))
                        + ", nn.Sequential (a custom module's forward cannot be read: rebuild it from "
                        "nn.Sequential or convert its parts).")
    state = OrderedDict((k, v.detach().cpu().numpy()) for k, v in module.state_dict().items())
    check_state_dict(model, state, what="from_torch")
    model.load_state_dict(state)
    model.train(module.training)
    return model


__all__ = ["StateDictMismatch", "check_state_dict", "from_torch", "load_torch_weights", "read_state_dict",
           "require_torch", "to_torch"]
