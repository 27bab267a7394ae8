"""Named arrays from an .npz file, without pickle; every kind of damage becomes one clear ValueError."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np


def read_npz(path, keys) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of the .npz at ``path``, loaded with ``allow_pickle=False``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a zip / truncated (no central directory), a damaged member (CRC or deflate error),
            a member holding pickled objects, or a key missing; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in keys if k not in archive.files]
            if missing:
                raise ValueError(f"{path}: missing arrays {missing}; the file holds {archive.files}")
            return {k: archive[k] for k in keys}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        reason = f"{type(error).__name__}: {error}"
        raise ValueError(f"{path}: corrupt or truncated .npz file ({reason})") from None
    except ValueError as error:
        if str(error).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not a valid .npz of plain arrays ({error})") from None
