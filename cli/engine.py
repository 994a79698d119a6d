"""`platformctl preview|up|destroy|refresh STACK`: the real engine (Automation API) on one stack."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import confirm, open_repo, out
from cli.groups import Commands
from cli.options import StackArg, YesFlag
from foundation.errors import PolicyError


def _engine_command(operation: str, stack_name: str, yes: bool) -> None:
    from platformctl import engine
    from platformctl.planning import select_stacks

    repo = open_repo()
    (stack,) = select_stacks(repo, [stack_name], False)
    if operation in ("up", "destroy") and not confirm(yes, f"{operation} {stack}"):
        raise typer.Abort()
    summary = engine.run_locked(repo, stack, operation, on_output=lambda line: out.print(line, end="", markup=False))  # type: ignore[arg-type]
    out.print(f"{operation} {stack}: " + (", ".join(f"{k} {v}" for k, v in summary.items()) or "no changes"))


def preview(stack: StackArg, yes: YesFlag = False) -> None:
    """`pulumi preview` of one stack through the Automation API.

    Example: platformctl preview global
    """
    _engine_command("preview", stack, yes)


def up(
    stack: StackArg,
    yes: YesFlag = False,
    dry_run_order: Annotated[
        bool,
        typer.Option(
            "--dry-run-order",
            help="Run nothing: print the order a first `up` creates the stack's resources in, from the offline "
            "plan's dependency graph, with each step's wait, the critical path and the expected duration.",
        ),
    ] = False,
) -> None:
    """`pulumi up` of one stack.

    Example: platformctl up region-eu-central --yes
    Example: platformctl up region-eu-central --dry-run-order
    """
    if dry_run_order:
        from cli.first_deploy import first_deploy_order
        from platformctl.first_deploy import first_deploy

        schedule, findings = first_deploy(open_repo(), stack)
        first_deploy_order(out, schedule, findings)
        if findings:
            raise PolicyError(f"{len(findings)} deploy-order finding(s): the first `up` of {stack} would stall")
        return
    _engine_command("up", stack, yes)


def destroy(stack: StackArg, yes: YesFlag = False) -> None:
    """`pulumi destroy` of one stack.

    Example: platformctl destroy partner-acme-voice --yes
    """
    _engine_command("destroy", stack, yes)


def refresh(stack: StackArg, yes: YesFlag = False) -> None:
    """`pulumi refresh` of one stack.

    Example: platformctl refresh global
    """
    _engine_command("refresh", stack, yes)


COMMANDS: Commands = {"preview": preview, "up": up, "destroy": destroy, "refresh": refresh}
