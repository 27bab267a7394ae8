"""Reading a dataset for a command: ``--data``, ``--root`` and ``--download``, with advice in the shell's
words (``--download``, ``--root DIR``) when the files are missing or the network is not there."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from cnnkit.cli.app import UserError

DATA_HELP = "embedded (MNIST subset in the package), mnist, fashion-mnist, cifar10, cifar100, or a folder."
ROOT_HELP = "Folder holding the datasets (default $CNNKIT_DATA, else ~/.cache/cnnkit)."
DOWNLOAD_HELP = "Fetch the missing MNIST, Fashion-MNIST or CIFAR files first (MD5-checked)."


def load_split(data: str, split: str, root: Path | None, limit: int | None, download: bool = False):
    """The split, cut to its first ``limit`` images; missing files become advice on what to type."""
    from cnnkit.data import DownloadError, MissingData, load

    try:
        dataset = load(data, split, root, download=download, progress=Progress() if download else None)
    except MissingData as e:
        raise UserError(f"{e.name}: the {e.split} files are not in {e.folder}; run again with --download, "
                        f"or {e.by_hand}, or give --root DIR (or set CNNKIT_DATA) for the folder that holds "
                        f"them") from None
    except DownloadError as e:
        if not hasattr(e, "by_hand"):
            raise
        raise UserError(f"{e.reasons}. Without a network, {e.by_hand}, or give --root DIR (or set "
                        f"CNNKIT_DATA) for the folder that holds them") from None
    return dataset[:limit] if limit else dataset


class Progress:
    """``progress(file, done, total)`` for downloads, on stderr: a bar redrawn in place on a terminal, a
    line every quarter of the file otherwise (a log stays short)."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = getattr(self.stream, "isatty", lambda: False)()
        self.file, self.began, self.shown = None, 0.0, -1

    def __call__(self, file: str, done: int, total: int | None):
        from cnnkit.analysis.summary import human_bytes

        if file != self.file:
            self.file, self.began, self.shown = file, time.perf_counter(), -1
        rate = done / max(time.perf_counter() - self.began, 1e-9)
        size = f"{human_bytes(done)}" + (f" of {human_bytes(total)}" if total else "")
        if self.terminal:
            bar = ""
            if total:
                filled = int(30 * done / total)
                bar = f"[{'#' * filled}{'.' * (30 - filled)}] {done / total:4.0%} "
            end = "\n" if total and done >= total else ""
            self.stream.write(f"\rdownloading {file} {bar}{size} ({human_bytes(rate)}/s){end}")
            self.stream.flush()
            return
        quarter = 4 * done // total if total else 0
        if quarter > self.shown:
            self.shown = quarter
            self.stream.write(f"downloading {file}: {size}\n")
            self.stream.flush()
