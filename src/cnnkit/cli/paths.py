"""Output locations, checked before any data is read: a read-only ``--out`` is a one-line error at once,
not an ``OSError`` on a temporary file after a full epoch."""

from __future__ import annotations

import os
from pathlib import Path

from cnnkit.cli.app import UserError


def prepare_output_dir(path: Path, option: str = "--out") -> Path:
    """Make the folder ``path`` (and its parents) and prove that a file can be written in it.

    Raises:
        UserError: the folder cannot be made or written to; the message names it and the option to change.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".cnnkit-write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except FileExistsError:
        raise UserError(f"cannot write to {path}: it exists and is not a folder (choose another {option})") \
            from None
    except OSError as e:
        raise UserError(f"cannot write to {path}: {_reason(e)} (choose another {option})") from None
    return path


def check_output_file(path: Path, option: str = "--out") -> Path:
    """Make the folder that will hold the file ``path`` and check that it takes files (see above)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder; give a file name (choose another {option})")
    prepare_output_dir(path.parent, option)
    return path


def _reason(error: OSError) -> str:
    """'Permission denied' -> 'permission denied'; the errno text without the path that follows it."""
    text = error.strerror or str(error)
    return text[:1].lower() + text[1:]
