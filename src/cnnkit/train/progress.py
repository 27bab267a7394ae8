"""Progress through an epoch: a rich bar on a terminal, a live bar in Jupyter, a plain-text bar in logs,
nothing if quiet."""

from __future__ import annotations

import html
import sys
import time

NOTEBOOK_INTERVAL = 0.2  # seconds between two redraws of the notebook bar: live, yet few kernel messages


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


def notebook_html(description: str, done: int, total: int | None, rate: float, elapsed: float,
                  loss: float) -> str:
    """The notebook bar: an HTML ``<progress>`` element and the numbers of :func:`plain_bar`.

    >>> notebook_html("epoch 1/2", 3, 4, 100.0, 2.0, 0.5).split("</progress> ")[1]
    '3/4 &middot; 100 img/s &middot; 0:02 elapsed &middot; ETA 0:01 &middot; loss 0.5000</div>'
    """
    style = 'style="width: 18em; vertical-align: middle"'
    if total:
        bar, count = f'<progress value="{done}" max="{total}" {style}></progress>', f"{done}/{total}"
        eta = f" &middot; ETA {format_seconds(elapsed * (total - done) / done if done else 0.0)}"
    else:  # no length: an indeterminate bar and the batch count
        bar, count, eta = f"<progress {style}></progress>", f"{done} batches", ""
    return (f'<div class="cnnkit-progress" style="font-family: ui-monospace, monospace; font-size: 12px">'
            f"{html.escape(description)} {bar} {count} &middot; {rate:.0f} img/s &middot; "
            f"{format_seconds(elapsed)} elapsed{eta} &middot; loss {loss:.4f}</div>")


class Progress:
    """Show progress through one epoch's batches.

    On a terminal it is a rich progress bar (batches, images/second, elapsed, ETA, running loss) that
    disappears when the epoch ends, leaving the one-line summary. In a Jupyter kernel it is one HTML bar
    that is redrawn in place (a display handle, at most every ``NOTEBOOK_INTERVAL`` seconds) and that the
    next epochs of the same cell reuse: the cell shows one live bar above the per-epoch summary lines,
    however many epochs and batches there are. When the output is neither (a log file, CI, a stream passed
    in) it prints a plain-text bar line at most every ``interval`` seconds, so long epochs show life
    without flooding the log. ``quiet`` shows nothing.
    """

    def __init__(self, total: int | None, description: str, *, quiet: bool = False, stream=None,
                 interval: float = 10.0):
        self.total, self.description, self.interval = total, description, interval
        self.stream = stream if stream is not None else sys.stdout
        self.start = self.last_print = time.perf_counter()
        self.images, self._rich, self._task, self._handle = 0, None, None, None
        self._last = (0, 0.0, float("nan"))  # done, rate, loss: what close() draws last in a notebook
        if quiet:
            self.mode = "quiet"
        elif _is_notebook_output(self.stream):
            self.mode = "notebook"
        else:
            self.mode = "rich" if _is_terminal(self.stream) else "plain"
        if self.mode == "rich":
            self._start_rich()
        elif self.mode == "notebook":
            self._handle = _notebook_handle()
            self._draw_notebook()

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
        elif self.mode == "notebook":
            self._last = (done, rate, loss)
            if now - self.last_print >= NOTEBOOK_INTERVAL:
                self.last_print = now
                self._draw_notebook()
        elif now - self.last_print >= self.interval and done != self.total:
            self.last_print = now
            print(f"{self.description} {plain_bar(done, self.total, rate, now - self.start, loss)}",
                  file=self.stream, flush=True)

    def _draw_notebook(self):
        done, rate, loss = self._last
        elapsed = time.perf_counter() - self.start
        numbers = (done, self.total, rate, elapsed, loss)
        self._handle.update({"text/plain": f"{self.description} {plain_bar(*numbers)}",
                             "text/html": notebook_html(self.description, *numbers)}, raw=True)

    def close(self):
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
        if self._handle is not None:  # the epoch's last state stays until the next epoch redraws the bar
            self._draw_notebook()
            self._handle = None


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _is_notebook_output(stream) -> bool:
    """True when ``stream`` is the stdout of a running Jupyter kernel (ipykernel), which shows HTML.

    ``ipykernel`` is looked up in ``sys.modules``, not imported: outside a kernel this costs nothing.
    """
    iostream = sys.modules.get("ipykernel.iostream")
    if iostream is None or not isinstance(stream, iostream.OutStream):
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


_NOTEBOOK = {"cell": None, "handle": None}  # the bar of the cell being run, reused by its next epochs


def _notebook_handle():
    """The display handle of the running cell's bar: a new display for a new cell, else the same one.

    A cell is told apart by the id of the kernel's execute request (``parent_header``), so a second
    ``fit`` in the same cell redraws the same bar and a new cell gets its own.
    """
    from IPython import get_ipython
    from IPython.display import display

    cell = getattr(get_ipython(), "parent_header", {}).get("msg_id")
    if cell is None or cell != _NOTEBOOK["cell"]:
        _NOTEBOOK["cell"] = cell
        _NOTEBOOK["handle"] = display({"text/plain": ""}, raw=True, display_id=True)
    return _NOTEBOOK["handle"]
