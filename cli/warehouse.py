"""`platformctl warehouse sync`: parse arguments, call the library, print."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.groups import Commands, command_group

warehouse_app = command_group(
    "warehouse",
    "The regional warehouse: partners' billing terms (PARTNERS).\n\nExample: platformctl warehouse sync --dry-run",
)


@warehouse_app.command("sync")
def sync(
    warehouse: Annotated[
        str,
        typer.Option(
            "--warehouse",
            envvar="PLATFORM_WAREHOUSE_URL",
            help="local:DIR (embedded fakesnow) or snowflake://ACCOUNT/DATABASE?user=&role=&warehouse=",
        ),
    ] = "local:.platformctl/warehouse",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of lines.")] = False,
) -> None:
    """Write every partner's billing terms from the repository into PARTNERS (insert or update, one row each).

    The same rows and the same MERGE a partner stack runs at `up`: tier, currency, base fee, per-minute rate,
    revenue share, payout method, Stripe account (platform:stripeAccount of its stack file), home region, and
    OFFBOARDED_ON from platform:offboardedOn (the row is kept). For local runs and tests; deployed, the stacks do it.

    Example: platformctl warehouse sync --warehouse local:.platformctl/warehouse --dry-run
    """
    from cli.context import open_repo, out
    from cli.render import plain
    from platformctl.warehouse_sync import sync as run

    report = run(open_repo(), warehouse, dry_run=dry_run)
    if as_json:
        out.print(json.dumps(report.as_dict(), indent=2, default=str), markup=False)
        return
    changes = report.changes()
    verb = "would write" if dry_run else "wrote"
    for row in report.rows:
        off = f", offboarded {row['OFFBOARDED_ON']}" if row["OFFBOARDED_ON"] else ""
        plain(
            out,
            f"{row['PARTNER_ID']}: {changes[row['PARTNER_ID']]} ({row['TIER']}, {row['CURRENCY']}, "
            f"{row['RATE']}/min, share {row['REVENUE_SHARE']}, {row['HOME_REGION']}{off})",
        )
    plain(out, f"{verb} {len(report.rows)} partner row(s) to {warehouse}")


COMMANDS: Commands = {"warehouse": warehouse_app}
