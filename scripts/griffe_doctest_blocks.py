"""A griffe extension for the documentation site (mkdocs.yml): doctest examples in docstrings as code.

cnnkit's docstrings show examples as bare ``>>>`` paragraphs (run by pytest's --doctest-modules), not under
an "Examples:" heading. Rendered as Markdown, such a paragraph would be a quote whose outputs read as
links (``[1.0, 0.5][0]`` is Markdown's reference-link syntax). This wraps every such paragraph, from its
``>>>`` line to the next blank line, in a ``pycon`` code fence before mkdocstrings renders the docstring.
"""

from __future__ import annotations

import griffe


def fence_doctests(text: str) -> str:
    """Every paragraph that starts with ``>>>`` inside ```pycon fences; other text, and code already in a
    fence, unchanged (tests/docs/test_site.py shows an example)."""
    out, inside, fenced = [], False, False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fenced = not fenced  # an existing fence: leave its content alone
        if not fenced and not inside and stripped.startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
            inside = True
        elif inside and not stripped:
            out.append(f"{indent}```")
            inside = False
        out.append(line)
    if inside:
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    """Applies :func:`fence_doctests` to the docstring of every module, class, function and attribute."""

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
