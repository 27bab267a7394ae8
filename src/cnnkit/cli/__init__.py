"""The ``cnnkit`` command: ``main()`` runs the Typer app and turns user mistakes into one-line errors.

Exit codes: 0 success, 1 a failure (missing file, unknown model, corrupt checkpoint, diverged training),
2 a usage error (unknown option, bad value), 130 interrupted. A user mistake never prints a traceback; set
``CNNKIT_DEBUG=1`` to see one for an unexpected error.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import typer

# Importing a command module registers its command on the app.
import cnnkit.cli.explain  # noqa: F401
from cnnkit.cli import bench, evaluate, export, finetune, predict, report, summary, train, viz  # noqa: F401
from cnnkit.cli.app import ARGV, Interrupted, UserError, app

KNOWN = (FileNotFoundError, ValueError, KeyError, TypeError, FloatingPointError, PermissionError, ImportError,
         UserError)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script; exits with the command's status."""
    try:
        _main(argv)
    except BrokenPipeError:  # `cnnkit ... | head`: the reader left; say nothing more, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


def _main(argv):
    ARGV[:] = sys.argv[1:] if argv is None else argv
    previous = None
    try:  # the handler inside the try: a Ctrl-C may land while signal.signal() is still returning
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, _interrupt)
        code = app(args=argv, prog_name="cnnkit", standalone_mode=False)
    except Interrupted as e:  # the command may have said where it stopped and how to resume
        _fail(str(e) or "cnnkit: interrupted", 130)
    except (typer.Abort, KeyboardInterrupt):
        _fail("cnnkit: interrupted", 130)
    except Exception as e:  # noqa: BLE001 -- the whole point: one line, no traceback, for every user mistake
        if _is_cli_error(e):
            if not e.format_message().strip():  # `cnnkit` alone: the help was just printed, nothing to add
                sys.exit(e.exit_code)
            if type(e).__name__ == "NoArgsIsHelpError":  # `cnnkit` or `cnnkit viz` alone: the help, as asked
                print(e.format_message())
                sys.exit(e.exit_code)
            ctx = getattr(e, "ctx", None)
            where = ctx.command_path if ctx is not None else "cnnkit"
            hint = f" (see '{where} --help')" if e.exit_code == 2 else ""
            _fail(f"{where}: error: {' '.join(e.format_message().split())}{hint}", e.exit_code)
        if os.environ.get("CNNKIT_DEBUG"):
            raise
        _fail(f"cnnkit: error: {one_line(e)}", 1)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    sys.exit(code if isinstance(code, int) else 0)


def _interrupt(signum, frame):
    raise Interrupted()


def _is_cli_error(error) -> bool:
    """Typer/Click usage errors (exit code 2) and other ClickExceptions, recognised by duck typing."""
    return isinstance(getattr(error, "exit_code", None), int) and hasattr(error, "format_message")


def one_line(error: BaseException) -> str:
    """The error's message on one line (KeyError's quotes removed); the type is named when it helps."""
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    on_a_path = isinstance(error, OSError) and error.filename is not None and bool(error.strerror)
    if on_a_path:  # "[Errno 30] Read-only file system: 'x'" -> "x: read-only file system"
        message = f"{error.filename}: {error.strerror[:1].lower()}{error.strerror[1:]}"
    message = " ".join(str(message).split())
    if not message or not (isinstance(error, KNOWN) or on_a_path):
        message = f"{type(error).__name__}: {message} (set CNNKIT_DEBUG=1 for the traceback)"
    return message


def _fail(message: str, code: int):
    print(message, file=sys.stderr)
    sys.exit(code)


__all__ = ["app", "main"]
