"""The Typer application every ``cnnkit`` subcommand attaches to (``@app.command()`` in its own module)."""

import typer

app = typer.Typer(
    name="cnnkit",
    help="cnnkit: convolutional networks in plain NumPy. Train, evaluate and run models from the shell.",
    epilog="Run [bold]cnnkit COMMAND --help[/bold] for the options of one command.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
