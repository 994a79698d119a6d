"""The one error hierarchy. The CLI catches `PlatformError` in one place and exits with `exit_code`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
"""Interrupted (Ctrl-C, SIGINT): 128 + the signal's number, as shells report it."""
INTERRUPTED_LINE = "interrupted: stopped before finishing"
"""The one line an interrupted command leaves on stderr (files it writes are replaced whole or not at all)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input."""

    source: str
    """The file (or argument) the problem is in."""
    field: str
    """Dotted path of the offending field; empty when the whole input is at fault."""
    message: str
    """What is wrong, in words a spec author can act on."""

    def __str__(self) -> str:
        where = f"{self.source}: {self.field}" if self.field else self.source
        return f"{where}: {self.message}"


class PlatformError(Exception):
    """Base of every error platformctl reports without a traceback."""

    exit_code = EXIT_FAILURE


class InputError(PlatformError):
    """Bad input: a spec, catalog, config or argument. Nothing has been written."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple[type[InputError], tuple[tuple[Problem, ...]]]:
        # Sent back by planning workers: rebuilt from the problems, not from the joined message.
        return (type(self), (self.problems,))

    @classmethod
    def single(cls, source: str | Path, field: str, message: str) -> InputError:
        return cls([Problem(str(source), field, message)])


class EngineError(PlatformError):
    """The Pulumi engine (real or offline) failed."""


class PolicyError(PlatformError):
    """A plan breaks a mandatory policy."""
