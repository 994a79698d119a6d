"""`platformctl meter serve` and `platformctl usage`: parse arguments, call the library, print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.groups import Commands, command_group

meter_app = command_group(
    "meter",
    "The usage meter (Twilio status callbacks and Kong logs into the warehouse).\n\n"
    "Example: platformctl meter serve --port 8787",
)

WarehouseOption = Annotated[
    str,
    typer.Option(
        "--warehouse", help="local:DIR (embedded fakesnow) or snowflake://ACCOUNT/DATABASE?user=&role=&warehouse="
    ),
]


@meter_app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8787,
    warehouse: Annotated[
        str,
        typer.Option(
            "--warehouse",
            envvar="METER_WAREHOUSE_URL",
            help="local:DIR (embedded fakesnow) or snowflake://ACCOUNT/DB?...",
        ),
    ] = "local:.platformctl/warehouse",
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            envvar="METER_PUBLIC_URL",
            help="Base URL Twilio calls and signs (default http://HOST:PORT).",
        ),
    ] = None,
    spool: Annotated[
        Path | None, typer.Option("--spool", help="Spool file (default .platformctl/meter/spool.db in the repository).")
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="Meter only partners homed in this region code (default: all).")
    ] = None,
    max_pending: Annotated[
        int, typer.Option("--max-pending", min=1, help="Events waiting for the warehouse before answering 503.")
    ] = 1_000_000,
) -> None:
    """Run the meter (the code `platform-services meter serve` runs). Needs TWILIO_AUTH_TOKEN and METER_KONG_TOKEN.

    It meters the warehouse's active PARTNERS rows (of --region), read at start and every 30 s. With a local:
    warehouse the repository's terms are written there first (`platformctl warehouse sync`), so a checkout meters
    its partners out of the box; a snowflake:// warehouse gets them from the partner stacks.

    Example: platformctl meter serve --port 8787 --public-url https://meter.eu-central.voice-platform.example
    """
    from cli.context import CtrlC, open_repo
    from platformctl.warehouse_sync import sync
    from services.meter.server import ServeConfig, check
    from services.meter.server import serve as run
    from services.warehouse import anchored

    repo = open_repo()
    url = anchored(warehouse, repo.root)
    config = ServeConfig(
        host=host,
        port=port,
        warehouse_url=url,
        public_url=public_url,
        spool_path=spool or repo.state_dir / "meter" / "spool.db",
        region=region,
        max_pending=max_pending,
        interrupted=lambda: CtrlC.seen,
    )
    check(config)  # bad arguments exit 2 before the warehouse is written
    if url.startswith("local:"):
        sync(repo, url)
    run(config)


def usage(
    period: Annotated[str | None, typer.Option("--period", help="YYYY-MM (default: this month, UTC).")] = None,
    partner: Annotated[str | None, typer.Option("--partner", help="One partner id.")] = None,
    warehouse: WarehouseOption = "local:.platformctl/warehouse",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Usage per partner for one period, from the warehouse views.

    Example: platformctl usage --period 2026-11 --json
    """
    from cli.context import open_repo, out
    from cli.render import plain
    from platformctl.usage import usage_report

    report = usage_report(warehouse, period, partner, base=open_repo().root)
    if as_json:
        out.print(json.dumps(report, indent=2), markup=False)
        return
    from rich.table import Table

    table = Table(title=f"Usage {report['period']}")
    for column in ("partner", "calls", "billable s", "minutes", "currency", "gross (minor)", "API requests"):
        table.add_column(column, justify="left" if column in ("partner", "currency") else "right")
    for partner_id, row in report["partners"].items():
        table.add_row(
            partner_id,
            str(row["calls"]),
            str(row["billable_seconds"]),
            str(row["minutes"]),
            row["currency"] or "-",
            str(row["gross_minor"]),
            str(row["api_requests"]),
        )
    if not report["partners"]:
        plain(out, f"no usage in {report['period']}")
        return
    out.print(table)


COMMANDS: Commands = {"meter": meter_app, "usage": usage}
