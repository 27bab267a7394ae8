"""Help text that reads well in an 80-column terminal.

The commands' help is Click's plain layout (no Rich panels: they wrap long option names into narrow
columns and eat ``[viz]`` as markup). Typer 0.2x adds three things to it that help nobody: a type after
every argument (``checkpoint <path>``, ``IMAGE... <list[str]>``), braces around required arguments in the
usage line (``{checkpoint}``), and parentheses around a default given in words (``[default: (lenet5)]``).
:func:`plain_help` removes them, and options without a metavar show their name (``--batch-size
BATCH_SIZE``, as argparse does) instead of ``<int range>``. Only attributes that exist are replaced, so an
older or newer Typer keeps its own layout rather than break.
"""

from __future__ import annotations


def plain_help() -> None:
    import typer.core as core

    option, argument = getattr(core, "TyperOption", None), getattr(core, "TyperArgument", None)
    if argument is not None and hasattr(argument, "display_type_rich"):
        argument.display_type_rich = lambda self, ctx: None
    if argument is not None and hasattr(argument, "_usage_display_name"):
        def usage_name(self):
            name = self.display_name_raw + ("..." if self.nargs != 1 and not self.display_name_raw.endswith(
                "...") else "")
            return name if self.required else f"[{name}]"

        argument._usage_display_name = usage_name
    if option is not None and hasattr(option, "display_type_rich"):
        option.display_type_rich = lambda self, ctx: self.metavar or (self.name or "VALUE").upper()
    for cls in (option, argument):
        if cls is not None and hasattr(cls, "_get_default_string"):
            _words_as_given(cls)


def _words_as_given(cls) -> None:
    original = cls._get_default_string

    def default_string(self, *, ctx, show_default_is_str, default_value):
        if show_default_is_str:
            return str(self.show_default)
        return original(self, ctx=ctx, show_default_is_str=show_default_is_str, default_value=default_value)

    cls._get_default_string = default_string
