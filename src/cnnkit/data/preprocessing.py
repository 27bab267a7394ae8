"""Preprocessing: how a raw image becomes the input a model was trained on, stored with the model.

A model trained on normalized images gives wrong answers on images normalized otherwise, and nothing in its
weights says so. So the recipe travels with the model: ``fit`` records it from the training loader on the
model (``model.preprocessing``), :func:`cnnkit.save` writes it into every checkpoint, :func:`cnnkit.load`
puts it back, ``cnnkit evaluate``/``predict``/``viz``/``report``/``finetune`` read it, and ``cnnkit
export`` writes it into the ONNX file's ``metadata_props`` and the safetensors header.

The recipe, for an image of stored pixels (uint8 0..255 or float)::

    x = pixels / 255 (uint8 only)    # [0, 1], as DataLoader does
    x = (x - mean[c]) / std[c]       # per channel, when the model was trained normalized
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

CHANNELS = {1: "L", 3: "RGB"}  # Pillow's names: what an image file is converted to before it is read


@dataclass(frozen=True)
class Preprocessing:
    """What a model expects of its input, and the class names of its outputs.

    Args:
        input_shape: one example's shape (C, H, W) (or (D,) for a vector model).
        channels: the channel order of image inputs: "L" (grayscale), "RGB" or "BGR"; default from C.
        mean, std: per-channel normalization on the [0, 1] scale, or None (inputs only scaled to [0, 1]).
        classes: the names of the output classes, or None.

    Raises:
        ValueError: a non-positive size, mean and std of different lengths or not one per channel, a std
            <= 0, or an unknown channel order.

    >>> p = Preprocessing((1, 28, 28), mean=(0.1307,), std=(0.3081,), classes=tuple("0123456789"))
    >>> p.apply(np.full((1, 1, 28, 28), 255, np.uint8))[0, 0, 0, 0].round(4)
    np.float32(2.8215)
    >>> Preprocessing.from_dict(p.to_dict()) == p
    True
    """

    input_shape: tuple[int, ...]
    channels: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    classes: tuple[str, ...] | None = None

    def __post_init__(self):
        shape = tuple(int(s) for s in self.input_shape)
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"Preprocessing: Received input_shape={self.input_shape!r}; expected positive "
                             f"sizes such as (1, 28, 28).")
        object.__setattr__(self, "input_shape", shape)
        C = shape[0] if len(shape) == 3 else None
        channels = self.channels if self.channels is not None else CHANNELS.get(C)
        if channels is not None and channels not in ("L", "RGB", "BGR"):
            raise ValueError(f"Preprocessing: Received channels={channels!r}; expected 'L', 'RGB' or 'BGR'.")
        object.__setattr__(self, "channels", channels)
        if (self.mean is None) != (self.std is None):
            raise ValueError("Preprocessing: give both mean and std, or neither.")
        if self.mean is not None:
            mean = tuple(float(v) for v in np.ravel(self.mean))
            std = tuple(float(v) for v in np.ravel(self.std))
            if len(mean) != len(std) or (C is not None and len(mean) not in (1, C)):
                raise ValueError(f"Preprocessing: Received mean={list(mean)} and std={list(std)}; expected "
                                 f"one value, or one per channel ({C}), each.")
            if min(std) <= 0:
                raise ValueError(f"Preprocessing: Received std={list(std)}; every value must be > 0.")
            object.__setattr__(self, "mean", mean)
            object.__setattr__(self, "std", std)
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))

    @classmethod
    def from_loader(cls, loader, classes=None) -> Preprocessing:
        """The recipe a DataLoader applies: its images' shape, its normalization, its dataset's classes."""
        images = np.asarray(loader.dataset.images)
        mean, std = getattr(loader, "mean", None), getattr(loader, "std", None)
        names = classes if classes is not None else getattr(loader.dataset, "classes", None)
        return cls(tuple(images.shape[1:]), mean=None if mean is None else tuple(np.ravel(mean)),
                   std=None if std is None else tuple(np.ravel(std)), classes=names)

    def apply(self, images) -> np.ndarray:
        """Stored pixels (N, C, H, W) or (C, H, W) -> float32 as the model takes them (see the module)."""
        images = np.asarray(images)
        x = images.astype(np.float32)
        if images.dtype == np.uint8:
            x /= np.float32(255)
        if self.mean is not None:
            shape = (-1,) + (1,) * (len(self.input_shape) - 1)  # one value per channel, broadcast
            mean, std = (np.asarray(v, np.float32).reshape(shape) for v in (self.mean, self.std))
            x = (x - mean) / std
        return x

    def to_dict(self) -> dict:
        """Plain JSON-able data (what a checkpoint header and run.json hold)."""
        return {"input_shape": list(self.input_shape), "channels": self.channels,
                "mean": None if self.mean is None else list(self.mean),
                "std": None if self.std is None else list(self.std),
                "classes": None if self.classes is None else list(self.classes)}

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        return cls(tuple(data["input_shape"]), data.get("channels"), data.get("mean"), data.get("std"),
                   data.get("classes"))

    @classmethod
    def from_metadata(cls, metadata: dict) -> Preprocessing | None:
        """From a checkpoint's ``extra["metadata"]`` as ``cnnkit train`` wrote it before the recipe had its
        own place (input_shape, normalize, classes), or None when it holds no input shape."""
        if metadata.get("preprocessing"):
            return cls.from_dict(metadata["preprocessing"])
        if not metadata.get("input_shape"):
            return None
        norm = metadata.get("normalize") or {}
        return cls(tuple(metadata["input_shape"]), mean=norm.get("mean"), std=norm.get("std"),
                   classes=metadata.get("classes"))

    def to_strings(self) -> dict[str, str]:
        """Key-value strings for file formats that hold only strings (ONNX ``metadata_props``, safetensors):
        ``cnnkit.preprocessing`` (the whole recipe as JSON) and one key per field, for other tools."""
        data = self.to_dict()
        return {"cnnkit.preprocessing": json.dumps(data),
                **{key: json.dumps(value) if not isinstance(value, str) else value
                   for key, value in data.items() if value is not None}}

    @classmethod
    def from_strings(cls, strings: dict) -> Preprocessing | None:
        text = strings.get("cnnkit.preprocessing")
        return cls.from_dict(json.loads(text)) if text else None

    def describe(self) -> str:
        """One line: '1x28x28 L, mean [0.1307] std [0.3081], 10 classes'."""
        parts = ["x".join(map(str, self.input_shape)) + (f" {self.channels}" if self.channels else "")]
        if self.mean is not None:
            parts.append(f"mean {[round(v, 4) for v in self.mean]} std {[round(v, 4) for v in self.std]}")
        else:
            parts.append("scaled to [0, 1], not normalized")
        if self.classes:
            parts.append(f"{len(self.classes)} classes")
        return ", ".join(parts)


def loader_preprocessing(loader) -> Preprocessing | None:
    """:meth:`Preprocessing.from_loader` for a DataLoader (anything with ``dataset.images`` and ``mean``,
    ``std``), else None: an iterable of batches does not say how its images were made."""
    images = getattr(getattr(loader, "dataset", None), "images", None)
    if images is None or np.ndim(images) < 2 or not (hasattr(loader, "mean") and hasattr(loader, "std")):
        return None
    return Preprocessing.from_loader(loader)
