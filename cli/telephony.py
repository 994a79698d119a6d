"""`platformctl numbers`: the Twilio number slots of partners, planned or owned."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.groups import Commands


def numbers(
    partner: Annotated[str | None, typer.Argument(metavar="PARTNER", help="One partner's id (default: all).")] = None,
    owned: Annotated[
        bool, typer.Option("--owned", help="Show the numbers the real engine's state holds (needs the Pulumi CLI).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List each partner's Twilio number slots per country and type: planned, or with --owned the bought numbers.

    Example: platformctl numbers pampas-voz --json
    """
    from cli.context import listing, open_repo
    from platformctl import telephony

    listing(telephony.numbers(open_repo(), partner, owned), as_json, "Numbers")


COMMANDS: Commands = {"numbers": numbers}
