"""Progress through an epoch: a rich bar on a terminal, a small plain-text bar in logs, nothing if quiet."""

from __future__ import annotations

import sys
import time


def format_seconds(seconds: float) -> str:
    """``75`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``.

    >>> format_seconds(75), format_seconds(3725)
    ('1:15', '1:02:05')
    """
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def plain_bar(done: int, total: int | None, rate: float, elapsed: float, loss: float, width: int = 24) -> str:
    """One line of text: bar, count, images/second, ETA and the running loss.

    >>> plain_bar(50, 100, 1234.0, 10.0, 0.25)
    '[############------------]  50/100  1234 img/s  ETA 0:10  loss 0.2500'
    """
    if total:
        filled = int(width * done / total)
        eta = elapsed * (total - done) / done if done else 0.0
        head = f"[{'#' * filled}{'-' * (width - filled)}] {done:>{len(str(total))}}/{total}"
        tail = f"  ETA {format_seconds(eta)}"
    else:
        head, tail = f"{done} batches", f"  {format_seconds(elapsed)}"
    return f"{head}  {rate:.0f} img/s{tail}  loss {loss:.4f}"


class Progress:
    """Show progress through one epoch's batches.

    On a terminal it is a rich progress bar (batches, images/second, elapsed, ETA, running loss) that
    disappears when the epoch ends, leaving the one-line summary. When the output is not a terminal (a log
    file, CI) it prints a plain-text bar line at most every ``interval`` seconds, so long epochs show life
    without flooding the log. ``quiet`` shows nothing.
    """

    def __init__(self, total: int | None, description: str, *, quiet: bool = False, stream=None,
                 interval: float = 10.0):
        self.total, self.description, self.interval = total, description, interval
        self.stream = stream if stream is not None else sys.stdout
        self.start = self.last_print = time.perf_counter()
        self.images, self._rich, self._task = 0, None, None
        self.mode = "quiet" if quiet else ("rich" if _is_terminal(self.stream) else "plain")
        if self.mode == "rich":
            self._start_rich()

    def _start_rich(self):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._rich = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TextColumn("{task.fields[rate]:>6.0f} img/s"), TimeElapsedColumn(),
                              TextColumn("ETA"), TimeRemainingColumn(),
                              TextColumn("loss {task.fields[loss]:.4f}"),
                              console=Console(file=self.stream), transient=True)
        self._rich.start()
        self._task = self._rich.add_task(self.description, total=self.total, rate=0.0, loss=float("nan"))

    def update(self, done: int, batch_size: int, loss: float):
        """Call after each batch: ``done`` batches finished so far, the last batch's size and loss."""
        self.images += batch_size
        if self.mode == "quiet":
            return
        now = time.perf_counter()
        rate = self.images / max(now - self.start, 1e-9)
        if self.mode == "rich":
            self._rich.update(self._task, completed=done, rate=rate, loss=loss)
        elif now - self.last_print >= self.interval and done != self.total:
            self.last_print = now
            print(f"{self.description} {plain_bar(done, self.total, rate, now - self.start, loss)}",
                  file=self.stream, flush=True)

    def close(self):
        if self._rich is not None:
            self._rich.stop()
            self._rich = None


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
