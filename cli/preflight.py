"""`platformctl preflight STACK`: ask the AWS account whether a real deploy of the stack can succeed."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.groups import Commands
from foundation.errors import PlatformError


def preflight(
    stack: Annotated[str, typer.Argument(metavar="STACK", help="global, region-<code> or partner-<id>.")],
) -> None:
    """Check the AWS account against the stack's offline plan: regions enabled, zones, EKS version, quotas.

    Uses boto3's standard credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...); AWS_ENDPOINT_URL points it elsewhere.

    Example: platformctl preflight region-eu-central
    """
    from cli import render
    from cli.context import err, open_repo, out
    from platformctl import preflight as library

    checks = library.preflight(open_repo(), stack)
    styles = {"ok": "green", "FAIL": "red", "skip": "yellow"}
    for check in checks:
        render.plain(out, str(check), styles[check.status])
    failed = library.failures(checks)
    if failed:
        raise PlatformError(f"{len(failed)} preflight check(s) failed for {stack}")
    skipped = [c for c in checks if c.status == "skip"]
    if skipped:
        render.plain(err, f"{len(skipped)} check(s) could not run against this endpoint", "yellow")


COMMANDS: Commands = {"preflight": preflight}
