"""Fetch a file with an MD5 check and an atomic write; unpack a tar archive without trusting its paths.

A download goes to a temporary file next to the destination, is fsynced and verified, and only then renamed
over the destination (``os.replace`` is atomic): an interrupted or corrupted download never leaves a file
that looks complete. ``urllib`` is imported here, when a download happens, not with ``import cnnkit``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class DownloadError(OSError):
    """A dataset file could not be fetched (no network, unreachable server, or a checksum mismatch)."""


def md5sum(path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (a no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fetch(url: str, destination, md5: str, *, timeout: float = 10.0, progress=None) -> Path:
    """Download ``url`` to ``destination`` if its MD5 is ``md5``; nothing is written otherwise.

    ``progress(done, total)`` is called after every chunk with the bytes read so far and the size the
    server announced (None if it did not); an exception it raises (Ctrl-C) stops the download cleanly.

    Raises:
        DownloadError: the server cannot be reached (within ``timeout`` seconds) or the checksum differs.
    """
    import urllib.error
    import urllib.request

    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    length = (getattr(response, "headers", None) or {}).get("Content-Length")
                    total, done = (int(length) if length and length.isdigit() else None), 0
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        digest.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
            except (urllib.error.URLError, OSError, ValueError) as error:
                reason = getattr(error, "reason", error)
                raise DownloadError(f"could not download {url}: {reason}") from None
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != md5.lower():
            raise DownloadError(f"checksum mismatch for {url}: MD5 {digest.hexdigest()}, expected {md5}; "
                                "the file was not kept")
        os.replace(temporary, destination)
        _fsync_directory(destination.parent)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return destination


def extract_tar(archive, directory) -> None:
    """Unpack ``archive`` into ``directory``: regular files and folders only, every path inside ``directory``.

    The archive is unpacked into a temporary folder first and its top-level entries are then renamed into
    place, so a failure half way leaves ``directory`` as it was.

    Raises:
        ValueError: a member is a link, a device, or has an absolute path or one that climbs out with "..".
    """
    import shutil
    import tarfile

    directory = Path(directory)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=directory))
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                name = Path(member.name)
                if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
                    raise ValueError(f"{archive}: refusing to extract {member.name!r} (not a plain file or "
                                     "folder inside the archive)")
            # The "data" filter (Python >= 3.10.12 / 3.11.4) repeats these checks inside tarfile itself.
            safety = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(staging, members=members, **safety)
        for entry in staging.iterdir():
            target = directory / entry.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
