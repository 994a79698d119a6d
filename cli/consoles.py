"""The CLI's two consoles (stdout and stderr), made in one place with the settings every command relies on."""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleDimensions

NOT_A_TERMINAL_WIDTH = 10_000
"""Width of output going to a file or a pipe: wide enough that no table cell (an id, a URL) is ever cut or wrapped;
a table is only as wide as its content."""


class _Console(Console):
    """A terminal's width on a terminal; anywhere else (a file, a pipe, CI's log) lines as long as their content,
    whatever COLUMNS says (rich would use it, or 80, and cut `acme-voice-...` to `acme-voi…`). Decided at each print:
    the stream can change after the console is made (a test capturing output, `contextlib.redirect_stdout`)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._width = options.get("width")  # rich fixed COLUMNS at creation: read at each print instead
        self._height = options.get("height")

    @property
    def size(self) -> ConsoleDimensions:
        dimensions = super().size
        if self._width is None and not self.is_terminal:
            return ConsoleDimensions(NOT_A_TERMINAL_WIDTH, dimensions.height)
        return dimensions

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


def console(stderr: bool = False) -> Console:
    """A console that prints every string literally: values from specs, catalogs and the engine reach rich as
    strings (table cells, titles, tree labels, messages), and `Bracket [red]Labs[/red] [/x]` or
    `[unknown] until applied` must show as written, not be read as markup (or fail as bad markup). The CLI styles
    with `Text` objects and table column styles, never with markup, so nothing is lost. No highlighting either:
    numbers and URLs in a value are not recoloured."""
    return _Console(stderr=stderr, markup=False, highlight=False, soft_wrap=True)
