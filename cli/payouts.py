"""`platformctl billing connect` and `platformctl payouts run`: parse arguments, call the library, print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.groups import command_group

billing_app = command_group(
    "billing",
    "Partner billing: Stripe Connect accounts.",
)
payouts_app = command_group(
    "payouts",
    "Revenue-share statements and Stripe Connect transfers.",
)


@billing_app.command("connect")
def connect(
    partner: Annotated[str, typer.Argument(help="Partner id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Create the account without asking.")] = False,
    live: Annotated[bool, typer.Option("--live", help="Allow a live STRIPE_API_KEY.")] = False,
) -> None:
    """Find or create the partner's Stripe Connect Express account; record it in its stack file.

    Needs STRIPE_API_KEY (STRIPE_API_BASE for another endpoint). Running it again finds the same account.

    Example: platformctl billing connect acme-voice --yes
    """
    import os

    from cli.app import _confirm, _repo, out
    from cli.render import plain
    from platformctl import billing
    from services.payouts.stripe_gateway import StripeGateway

    repo = _repo()
    plan = billing.connect_plan(repo, partner)
    gateway = StripeGateway.from_env(os.environ, live=live)
    if not plan["existing"]:
        _confirm(yes, f"find or create a Stripe Express account for {partner} ({plan['country']}, {plan['currency']})")
    result = billing.connect(repo, partner, gateway)
    verb = "created" if result.created else "found"
    plain(out, f"{partner}: {verb} Stripe account {result.account} ({result.country}, {result.currency})")
    if result.recorded:
        plain(out, f"recorded platform:stripeAccount in stacks/Pulumi.partner-{partner}.yaml")


@payouts_app.command("run")
def run(
    period: Annotated[str, typer.Option("--period", help="YYYY-MM: the month to pay.")],
    region: Annotated[str | None, typer.Option("--region", help="Pay only partners homed in this region.")] = None,
    warehouse: Annotated[
        str,
        typer.Option(
            "--warehouse", envvar="PAYOUTS_WAREHOUSE_URL", help="local:DIR (embedded fakesnow) or snowflake://..."
        ),
    ] = "local:.platformctl/warehouse",
    statements: Annotated[
        str,
        typer.Option(
            "--statements",
            envvar="PAYOUTS_STATEMENTS",
            help="DIR or s3://BUCKET/PREFIX (default .platformctl/statements in the repository).",
        ),
    ] = "",
    adjustments: Annotated[
        Path | None, typer.Option("--adjustments", help="YAML of signed adjustment lines for this period.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the statements; write and call nothing.")] = False,
    live: Annotated[bool, typer.Option("--live", help="Allow a live STRIPE_API_KEY.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Build each partner's statement for the period, transfer its revenue share once, store the statement.

    Exit 1 if any partner was not paid (no account, below Stripe's minimum, Stripe failing); they are listed.

    Example: platformctl payouts run --period 2026-11 --region eu-central --statements s3://BUCKET/statements
    """
    from cli.app import _repo, err, out
    from cli.render import plain
    from foundation.errors import PlatformError
    from platformctl import billing
    from services.payouts.money import format_minor

    if adjustments is not None and not adjustments.is_file():
        from foundation.errors import InputError

        raise InputError.single("--adjustments", "", f"{adjustments} is not a file")
    report = billing.run(
        _repo(),
        period,
        region=region,
        warehouse_url=warehouse,
        statements=statements,
        adjustments_file=adjustments,
        dry_run=dry_run,
        live=live,
    )
    if as_json:
        out.print(json.dumps(report.as_dict(), indent=2), markup=False)
    else:
        from rich.table import Table

        table = Table(title=f"Payouts {report.period}{' (dry run)' if report.dry_run else ''}")
        for column in ("partner", "currency", "minutes", "gross", "share", "payout", "due", "status", "detail"):
            table.add_column(column)
        for o in report.outcomes:
            s = o.statement
            currency = s.get("currency", "")
            table.add_row(
                o.partner,
                currency,
                str(s.get("minutes", "")),
                format_minor(s["gross_minor"], currency) if currency else "",
                s.get("share", ""),
                format_minor(s["payout_minor"], currency) if currency else "",
                format_minor(o.due_minor, currency) if currency else "",
                o.status,
                o.reason,
            )
        if report.outcomes:
            out.print(table)
        else:
            plain(out, f"nothing to pay for {report.period}")
        if not report.dry_run:
            plain(out, f"statements: {report.statements}")
    for o in report.outcomes:
        for warning in o.warnings:
            plain(err, f"warning: {o.partner}: {warning}", "yellow")
    if report.not_paid:
        names = ", ".join(o.partner for o in report.not_paid)
        raise PlatformError(f"{len(report.not_paid)} partner(s) not paid for {report.period}: {names}")


def register(app: typer.Typer) -> None:
    app.add_typer(billing_app)
    app.add_typer(payouts_app)
