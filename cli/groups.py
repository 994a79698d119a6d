"""The CLI's Typer apps, all with the same settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

Commands = dict[str, "Callable[..., None] | typer.Typer"]
"""What a command module adds to `platformctl`: each of its commands and command groups by the name it is called
by. Every command module has one, `COMMANDS`, and `cli.app` registers them all in one loop."""


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


def keep_examples_as_written(command: Any) -> Any:
    """`command` and its subcommands with their help's example paragraphs, and any paragraph with a URL, marked
        for Click to print line by line as written. Click rewraps every help paragraph to the terminal's width: it ran
        two `Example:` lines together and broke `https://meter.eu-central...` at a hyphen. (`command` is a Click command
    as Typer builds it: Typer ships its own copy of Click, so the type is left open.)"""
    if command.help:
        command.help = _literal_paragraphs(command.help)
    for sub in getattr(command, "commands", {}).values():
        keep_examples_as_written(sub)
    return command


def _literal_paragraphs(text: str) -> str:
    paragraphs = text.split("\n\n")
    return "\n\n".join(
        f"\b\n{p}" if not p.startswith("\b") and (p.lstrip().startswith("Example") or "://" in p) else p
        for p in paragraphs
    )
