"""The `platformctl` console script: find the project, put its folder first on sys.path, then run the app.

The installed distribution holds the tool (`platformctl`, `cli`; `foundation` and `services` beside it); the Pulumi
program's packages (`fleet`, `components`, `policies`, the catalogs) are not installed. They are imported from the
project being planned, the way Pulumi runs a project's program from its folder, so `--root CHECKOUT` runs THAT
checkout's program. Nothing here imports a program package: the root is known before anything can.

A process that imported the program before (a test calling `cli.app.main` in-process) keeps the copy it imported;
the plan cache's fingerprint then covers those modules too (`platformctl.offline.keys`).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from foundation.errors import EXIT_INTERRUPTED, INTERRUPTED_LINE, InputError
from foundation.project import find_root

PROGRAM_PACKAGES = frozenset({"fleet", "components", "policies", "regions", "partners", "gateway", "integrations"})
"""The top-level packages of the program's closure: loaded from the project folder, never installed."""
TOOL_PACKAGES = ("platformctl", "cli", "foundation", "services")
"""The installed packages: imported (their `__init__` only) before the project folder joins sys.path, so that a
checkout's copies of them (every checkout holds `platformctl/`, `cli/`, `foundation/`, `services/`) never shadow
the installation that is running."""


def root_option(args: Sequence[str]) -> Path | None:
    """The value of the global `--root DIR` / `--root=DIR` (before the command name, where Click accepts it)."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return None
        if arg == "--root":
            return Path(args[index + 1]) if index + 1 < len(args) else None  # missing value: Click says so
        if arg.startswith("--root="):
            return Path(arg.removeprefix("--root="))
        if not arg.startswith("-"):
            return None  # the command: options after it are the command's
        index += 1
    return None


class ProjectRequired(importlib.abc.MetaPathFinder):
    """Last on `sys.meta_path` when no project was found: importing a program package raises the reason as bad
    input (exit 2, one line naming `--root`) instead of a ModuleNotFoundError. Commands that need no project
    (`--help`, `webhooks serve`) never import one and run as usual."""

    def __init__(self, reason: InputError) -> None:
        self.reason = reason

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] in PROGRAM_PACKAGES:
            raise InputError(list(self.reason.problems))
        return None


def prepare(args: Sequence[str]) -> Path | None:
    """Pin the tool's packages, then put the project's folder first on sys.path (or, with none found, install
    `ProjectRequired`); the project root, or None."""
    for package in TOOL_PACKAGES:
        with contextlib.suppress(ImportError):  # `services` is its own distribution: a tool without it still runs
            __import__(package)
    try:
        root = find_root(root_option(args))
    except InputError as reason:
        sys.meta_path.append(ProjectRequired(reason))
        return None
    sys.path.insert(0, str(root))
    return root


def launch() -> None:
    try:
        prepare(sys.argv[1:])
        from cli.app import entry
    except KeyboardInterrupt:
        # Ctrl-C while the CLI is still being imported, before `cli.app.main` watches for it: the same one line and
        # exit code as an interrupt a moment later, not a traceback (nothing has been read or written yet).
        sys.stderr.write(INTERRUPTED_LINE + "\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    entry()


if __name__ == "__main__":
    launch()
