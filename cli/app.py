"""`platformctl`: commands parse arguments, call the library and print. Exit codes: 0 ok, 1 failure, 2 bad input,
130 interrupted."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import traceback
import warnings
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from cli import (
    certs,
    ci,
    domains,
    engine,
    integrations,
    listings,
    meter,
    payouts,
    plan,
    preflight,
    shards,
    specs,
    telephony,
    warehouse,
    webhooks,
)
from cli.context import CtrlC, err, state
from cli.groups import command_group, keep_examples_as_written
from foundation.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    INTERRUPTED_LINE,
    InputError,
    PlatformError,
)

app = command_group(
    "platformctl",
    "Describe, review and change the voice platform's infrastructure.\n\nExample: platformctl plan --all",
)


@app.callback()
def main_options(
    root: Annotated[
        Path | None,
        typer.Option(
            "--root", help="The platform repository (default: $PLATFORMCTL_ROOT, else the nearest Pulumi.yaml upwards)."
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Describe, review and change the voice platform's infrastructure.

    Example: platformctl plan --all
    """
    state.root = root
    state.debug = debug


# ---------------------------------------------------------------- commands

COMMAND_MODULES: tuple[ModuleType, ...] = (
    plan,
    specs,
    ci,
    listings,
    telephony,
    domains,
    engine,
    preflight,
    meter,
    payouts,
    webhooks,
    shards,
    integrations,
    warehouse,
    certs,
)
"""Every command module, each with its `COMMANDS`, in the order `platformctl --help` lists them (commands first,
then groups, each in this order)."""

for module in COMMAND_MODULES:
    for name, command in module.COMMANDS.items():
        if isinstance(command, typer.Typer):
            app.add_typer(command, name=name)
        else:
            app.command(name)(command)


# ---------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error ends here and becomes an exit code."""
    with CtrlC.watched():
        code = _run(list(sys.argv[1:] if argv is None else argv))
        if CtrlC.seen:  # also when the interrupt was swallowed on the way and the command ran on
            code = EXIT_INTERRUPTED
        if code == EXIT_INTERRUPTED:
            _interrupted()
        return code


def _run(args: list[str]) -> int:
    debug = "--debug" in args
    try:
        command = keep_examples_as_written(typer.main.get_command(app))  # Ctrl-C can land here
        # Not standalone, Typer turns Ctrl-C (KeyboardInterrupt) into Exit(130) and *returns* an Exit's code rather
        # than raising it; a command's own return value is None. Either way a number here is the exit code.
        returned = command.main(args=args, prog_name="platformctl", standalone_mode=False)
        return returned if type(returned) is int else EXIT_OK
    except InputError as exc:
        _report(exc, [str(p) for p in exc.problems] or [str(exc)], debug)
        return EXIT_BAD_INPUT
    except PlatformError as exc:
        _report(exc, [str(exc)], debug)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        if CtrlC.seen:  # Ctrl-C at a confirmation prompt, which Click turns into Abort
            return EXIT_INTERRUPTED
        err.print("aborted")
        return EXIT_FAILURE
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument, bad value
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            err.print(f"error: {exc}", markup=False)
        return int(getattr(exc, "exit_code", EXIT_BAD_INPUT))
    except KeyboardInterrupt:  # outside Typer's own handling (while Typer itself starts up, say)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so in one line unless asked for the traceback
        _report(exc, [f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"], debug)
        return EXIT_FAILURE


def _interrupted() -> None:
    """The one line an interrupted command leaves (files it writes are replaced whole or not at all)."""
    err.print(INTERRUPTED_LINE, markup=False, highlight=False)


def _report(exc: BaseException, lines: list[str], debug: bool) -> None:
    from cli import render

    if CtrlC.seen and not debug:
        return  # a failure the interrupt caused (an import cut short, say): the one line is "interrupted"

    if debug:
        err.print("".join(traceback.format_exception(exc)), markup=False)
    for line in lines:
        render.plain(err, f"error: {line}", "red")


def entry() -> None:
    code = main()
    if code == EXIT_INTERRUPTED:
        # Leave without the interpreter's own shutdown, which after an interrupted plan waits on threads the SDK left
        # behind (it can hang) and collects what the interrupt cut short, logging every abandoned asyncio task and
        # closed coroutine with tracebacks after the one line already said. The exit handlers still run: they
        # release what `multiprocessing` holds (a stopped meter's semaphores). Files are replaced whole or not at
        # all, and the planning workers are already stopped: nothing else is owed.
        logging.getLogger("asyncio").disabled = True
        sys.unraisablehook = lambda info: None
        warnings.simplefilter("ignore")
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
