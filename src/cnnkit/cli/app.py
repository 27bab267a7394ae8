"""The Typer application every ``cnnkit`` subcommand attaches to (``@app.command()`` in its own module)."""

import shlex

import typer

from cnnkit.cli.helpformat import plain_help

plain_help()
app = typer.Typer(
    name="cnnkit",
    help="cnnkit: convolutional networks in plain NumPy. Train, evaluate and run models from the shell.",
    epilog="Run 'cnnkit COMMAND --help' for the options of one command.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # Click's plain layout: see cnnkit.cli.helpformat
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 80},
)


def _version(value: bool):
    if value:
        from cnnkit import __version__

        typer.echo(f"cnnkit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                       help="Print the cnnkit version and exit.")):
    """cnnkit: convolutional networks in plain NumPy. Train, evaluate and run models from the shell."""


class UserError(Exception):
    """A mistake the user can fix (a path that cannot be written, a missing option): printed as one line,
    exit status 1, never with a traceback."""


class Interrupted(BaseException):
    """Ctrl-C. ``main`` raises it from its SIGINT handler in place of KeyboardInterrupt, which Click would
    turn into an Abort (after printing an empty line); a command catches it to say how to resume and
    raises it again with that one-line message. A BaseException, so that no ``except Exception`` on the
    way up swallows it."""


ARGV: list[str] = []  # main() records the arguments it runs, for command_line()


def command_line() -> str:
    """The command being run, as the user typed it (``cnnkit train --epochs 2``), for run directories."""
    return shlex.join(["cnnkit", *ARGV])
