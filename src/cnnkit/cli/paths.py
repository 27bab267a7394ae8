"""Output locations, checked before any data is read: a read-only ``--out`` is a one-line error at once,
not an ``OSError`` on a temporary file after a full epoch."""

from __future__ import annotations

import os
from pathlib import Path

from cnnkit.cli.app import UserError


def check_output_dir(path: Path, option: str = "--out") -> Path:
    """Prove that files can be written in the folder ``path``, leaving no trace: the folders this makes
    to find out are removed again (a command that then fails leaves no empty run directory behind).

    Raises:
        UserError: the folder cannot be made or written to; the message names it and the option to change.
    """
    path = Path(path)
    made, folder = [], path
    while not os.path.lexists(folder) and folder != folder.parent:
        made.append(folder)
        folder = folder.parent
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
    finally:
        for folder in made:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
    return path


def check_output_file(path: Path, option: str = "--out") -> Path:
    """Check that the file ``path`` can be written (see :func:`check_output_dir`); returns it."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder; give a file name (choose another {option})")
    check_output_dir(path.parent, option)
    return path


def _reason(error: OSError) -> str:
    """'Permission denied' -> 'permission denied'; the errno text without the path that follows it."""
    text = error.strerror or str(error)
    return text[:1].lower() + text[1:]
