"""`platformctl verify-domain`: a partner's DNS proof of its domain, checked and recorded."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.groups import Commands


def verify_domain(partner: Annotated[str, typer.Argument(metavar="PARTNER", help="The partner's id.")]) -> None:
    """Check the TXT record _platform-challenge.<domain> against the partner stack's token, then record the domain as
    verified in the stack file (its certificate and routes follow on the next up).

    Example: platformctl verify-domain acme-voice
    """
    from cli.context import err, open_repo, out
    from cli.render import plain
    from platformctl.domains import verify_domain as verify

    plain(out, verify(open_repo(), partner, warn=lambda line: plain(err, f"warning: {line}", "yellow")))


COMMANDS: Commands = {"verify-domain": verify_domain}
