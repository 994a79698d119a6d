"""What every command shares: the consoles, the global options (--root, --debug), the repository they name, and
the terminal's ways to ask and list. Command modules import this; `cli.app` imports the command modules to register
them, never the other way round."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from cli.consoles import console as render_console
from foundation.errors import InputError

out = render_console()
err = render_console(stderr=True)


class State:
    root: Path | None = None
    debug: bool = False


state = State()


def open_repo() -> Any:
    """The repository --root (or the current folder upwards) names, read through fleet.Repo."""
    from fleet.repo import Repo, find_root

    return Repo(find_root(state.root))


def mode_of(dry_run: bool, no_apply: bool) -> Any:
    from platformctl.changes import Mode

    if dry_run and no_apply:
        raise InputError.single("arguments", "--dry-run", "choose one of --dry-run and --no-apply")
    return Mode.DRY_RUN if dry_run else Mode.NO_APPLY if no_apply else Mode.APPLY


def confirm(yes: bool, what: str) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise InputError.single("arguments", "--yes", f"no terminal to confirm on: pass --yes to {what}")
    return typer.confirm(f"Do you want to {what}?", default=False)


def listing(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    from cli import render

    if as_json:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        out.print(f"no {title.lower()}")
        return
    columns = list(rows[0])
    render.table(
        out, title, columns, [[", ".join(v) if isinstance(v, list) else str(v) for v in r.values()] for r in rows]
    )
