"""The CLI's Typer apps, all with the same settings."""

from __future__ import annotations

import typer


def command_group(name: str, help_text: str) -> typer.Typer:
    """A Typer app or command group: usage when called without arguments, no shell completion, no rich tracebacks
    or markup (errors are reported in one place, `cli.app.main`)."""
    return typer.Typer(
        name=name,
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
