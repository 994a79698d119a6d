"""The CLI's two consoles (stdout and stderr), made in one place with the settings every command relies on."""

from __future__ import annotations

from rich.console import Console


def console(stderr: bool = False) -> Console:
    """A console that prints every string literally: values from specs, catalogs and the engine reach rich as
    strings (table cells, titles, tree labels, messages), and `Bracket [red]Labs[/red] [/x]` or
    `[unknown] until applied` must show as written, not be read as markup (or fail as bad markup). The CLI styles
    with `Text` objects and table column styles, never with markup, so nothing is lost. No highlighting either:
    numbers and URLs in a value are not recoloured."""
    return Console(stderr=stderr, markup=False, highlight=False, soft_wrap=True)
