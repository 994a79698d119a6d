"""What every command shares: the consoles, the global options (--root, --debug), the repository they name, and
the terminal's ways to ask and list. Command modules import this; `cli.app` imports the command modules to register
them, never the other way round."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator
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
    from fleet.repo import Repo
    from foundation.project import find_root

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


class CtrlC:
    """Whether this run was interrupted. Python raises KeyboardInterrupt wherever the main thread happens to be,
    and where that is a weakref callback or a `__del__` it prints "Exception ignored" and carries on: remembered
    here, the interrupt is raised again at the next `checkpoint` and decides the exit code in any case."""

    seen = False

    @classmethod
    def handler(cls, signum: int, frame: Any) -> None:
        cls.seen = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            # Inside an event loop (an offline plan runs the program in one) the exception can land in code that
            # swallows it, leaving the loop waiting forever on a task that will never finish: the loop is also
            # woken with a callback that raises it again, which asyncio lets through `run_until_complete`.
            loop.call_soon_threadsafe(checkpoint)
        raise KeyboardInterrupt

    @classmethod
    @contextlib.contextmanager
    def watched(cls) -> Iterator[None]:
        cls.seen = False
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)
        if previous is signal.SIG_IGN:  # started with Ctrl-C ignored (nohup, a background job): leave it so
            yield
            return
        previous_hook = sys.unraisablehook

        def unraisable(info: Any) -> None:
            if not (isinstance(info.exc_type, type) and issubclass(info.exc_type, KeyboardInterrupt)):
                previous_hook(info)

        signal.signal(signal.SIGINT, cls.handler)
        sys.unraisablehook = unraisable
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            sys.unraisablehook = previous_hook


def checkpoint() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed but swallowed on the way (see `CtrlC`): long loops call it."""
    if CtrlC.seen:
        raise KeyboardInterrupt
