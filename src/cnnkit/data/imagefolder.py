"""ImageFolder: a user's own images in one folder per class, ``root/<class_name>/*.png|jpg``.

Pillow is imported only when a folder is read (``pip install "cnnkit[data]"``), so ``import cnnkit`` stays
light.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnkit.data.base import ArrayDataset

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _pillow_image():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError('reading image files (PNG, JPEG, ...) needs Pillow: pip install "cnnkit[data]"') \
            from None
    return Image


def load_image_folder(directory, split: str | None = None, *, size=None, channels: int | None = None
                      ) -> ArrayDataset:
    """Every image under ``directory/<class>/``, classes in sorted order, as (N, C, H, W) uint8.

    If ``directory/<split>`` is a folder (``train/``, ``test/``), that folder is read instead.

    Args:
        size: (H, W) to resize every image to (bilinear); default: all images must already share one size.
        channels: 1 (grayscale) or 3 (RGB); default 1 if every image is grayscale, else 3.

    Raises:
        ImportError: Pillow is missing (names the extra to install).
        FileNotFoundError: no such folder.
        ValueError: no class folders, a class without images, an unreadable image, or sizes that differ
            while ``size`` is not given.
    """
    Image = _pillow_image()
    directory = Path(directory)
    if split is not None and (directory / split).is_dir():
        directory = directory / split
    if not directory.is_dir():
        raise FileNotFoundError(f"image folder {directory} does not exist")
    if channels not in (None, 1, 3):
        raise ValueError(f"load_image_folder: received channels={channels!r}; expected None, 1 or 3")
    classes = sorted(d.name for d in directory.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"{directory}: no class folders; expected {directory}/<class_name>/*.png (or .jpg)")
    pictures, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (directory / name).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise ValueError(f"{directory / name}: class {name!r} has no images "
                             f"({', '.join(IMAGE_EXTENSIONS)})")
        for path in files:
            try:
                with Image.open(path) as picture:
                    picture.load()
            except OSError as error:  # PIL.UnidentifiedImageError is an OSError
                raise ValueError(f"{path}: not a readable image ({error})") from None
            pictures.append((path, picture))
            labels.append(label)
    if channels is None:
        channels = 1 if all(p.mode in ("1", "L") for _, p in pictures) else 3
    if size is None:
        first_path, first = pictures[0]
        for path, picture in pictures:
            if picture.size != first.size:
                raise ValueError(f"{path} is {picture.size[1]}x{picture.size[0]} but {first_path} is "
                                 f"{first.size[1]}x{first.size[0]} (H x W); pass size=(H, W) to resize "
                                 "all images")
    arrays = []
    for _, picture in pictures:
        picture = picture.convert("L" if channels == 1 else "RGB")
        if size is not None:
            picture = picture.resize((int(size[1]), int(size[0])), Image.BILINEAR)
        array = np.asarray(picture, dtype=np.uint8)
        arrays.append(array[None] if channels == 1 else array.transpose(2, 0, 1))
    return ArrayDataset(np.stack(arrays), labels, classes, name=str(directory))
