"""`platformctl billing connect` and `platformctl payouts run`: parse arguments, call the library, print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.groups import Commands, command_group
from services.payouts.money import PERIOD_HELP

if TYPE_CHECKING:
    from platformctl.billing import Connection
    from platformctl.developer_accounts import DeveloperConnection

billing_app = command_group(
    "billing",
    "Partner billing: Stripe Connect accounts.\n\nExample: platformctl billing connect acme-voice --yes",
)
payouts_app = command_group(
    "payouts",
    "Revenue-share statements and Stripe Connect transfers.\n\nExample: platformctl payouts run --period 2026-11",
)


CreateFlag = Annotated[bool, typer.Option("--yes", help="Create the account without asking.")]
LiveFlag = Annotated[bool, typer.Option("--live", help="Allow a live STRIPE_API_KEY.")]
LinkFlag = Annotated[
    bool, typer.Option("--link", help="Make a fresh onboarding link (Stripe's links are single use, minutes long).")
]


def _print_connection(result: Connection | DeveloperConnection, label: str, noun: str, payee_id: str) -> None:
    """What `billing connect` and `connect-developer` found or made, in the same lines."""
    from cli.context import out
    from cli.render import plain
    from platformctl.billing import STRIPE_ACCOUNT_KEY

    verb = "created" if result.created else "found"
    plain(
        out,
        f"{label}: {verb} Stripe account {result.account} ({result.country}, {result.currency}, "
        f"{result.service_agreement} service agreement; transfers: {result.transfers})",
    )
    for path in result.recorded:
        plain(out, f"recorded {STRIPE_ACCOUNT_KEY} in {path}")
    if result.link:
        plain(out, f"onboarding link for the {noun} (single use, expires within minutes): {result.link}")
    if result.transfers != "active":
        plain(out, f"payouts to {payee_id} are held until it finishes onboarding; they are paid by the next run after")


@billing_app.command("connect")
def connect(
    partner: Annotated[str, typer.Argument(help="Partner id.")],
    yes: CreateFlag = False,
    live: LiveFlag = False,
    link: LinkFlag = False,
) -> None:
    """Find or create the partner's Stripe Connect Express account; record it in its stack file; print an onboarding
    link while the account cannot receive transfers yet.

    A partner outside the platform's country gets the recipient service agreement (Stripe's cross-border payouts);
    a country Stripe cannot pay across borders is refused (platformctl/stripe_connect.yaml). Needs STRIPE_API_KEY
    (STRIPE_API_BASE for another endpoint). Running it again finds the same account.

    Example: platformctl billing connect acme-voice --yes; later: platformctl billing connect acme-voice --link
    """
    import os

    from cli.context import confirm, err, open_repo
    from cli.render import plain
    from platformctl import billing
    from services.payouts.stripe_gateway import StripeGateway

    repo = open_repo()
    plan = billing.account_request(repo, partner)
    gateway = StripeGateway.from_env(os.environ, live=live)
    if not plan["existing"]:
        confirm(yes, f"find or create a Stripe Express account for {partner} ({plan['country']}, {plan['currency']})")
    result = billing.connect(repo, partner, gateway, link=link)
    _print_connection(result, partner, "partner", partner)
    for warning in result.warnings:
        plain(err, f"warning: {warning}", "yellow")


@billing_app.command("connect-developer")
def connect_developer(
    developer: Annotated[str, typer.Argument(help="Developer id (the `developer.id` of its integration specs).")],
    yes: CreateFlag = False,
    live: LiveFlag = False,
    link: LinkFlag = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Find or create a marketplace developer's Stripe Connect Express account; record it in each of its
    integrations' stack files; print an onboarding link while the account cannot receive transfers yet.

    The account is opened in the developer's country (its specs' developer.country), in that country's currency
    (the developer's payout currency), under the recipient service agreement outside the platform's country; a
    country Stripe cannot pay across borders is refused (platformctl/stripe_connect.yaml). The integration stacks'
    next `up` writes the account to the developer's warehouse row, from where the payouts job pays it. Needs
    STRIPE_API_KEY (STRIPE_API_BASE for another endpoint). Running it again finds the same account.

    Example: platformctl billing connect-developer tempo-labs --yes; later: platformctl billing connect-developer
    tempo-labs --link --json
    """
    import os

    from cli.context import confirm, err, open_repo, out
    from cli.render import plain
    from platformctl import developer_accounts
    from services.payouts.stripe_gateway import StripeGateway

    repo = open_repo()
    request = developer_accounts.account_request(repo, developer)
    gateway = StripeGateway.from_env(os.environ, live=live)
    if not request["existing"]:
        confirm(
            yes,
            f"find or create a Stripe Express account for developer {developer} "
            f"({request['country']}, {request['currency']})",
        )
    result = developer_accounts.connect_developer(
        repo, developer, gateway, link=link, warn=lambda m: plain(err, f"warning: {m}", "yellow")
    )
    if as_json:
        out.print(json.dumps(result.as_dict(), indent=2), markup=False)
        return
    _print_connection(result, f"developer {developer}", "developer", developer)


@payouts_app.command("run")
def run(
    period: Annotated[str, typer.Option("--period", help=PERIOD_HELP)],
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="The region whose warehouse this is (recorded on statements); every partner "
            "with usage metered here is paid, wherever it is homed now.",
        ),
    ] = None,
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
    """Build each partner's statements from the warehouse (terms from PARTNERS, gross from USAGE_BY_PERIOD), transfer
    each month once (idempotency key payout:<partner>:<period>), store the statements.

    Held months (no Stripe account, onboarding unfinished) and failed ones are retried by every later run until paid.
    Exit 1 if any month is not paid (held, failed, usage without terms); they are listed. Exit 2 for a period that
    is not closed yet.

    Example: platformctl payouts run --period 2026-11 --region eu-central --statements s3://BUCKET/statements
    """
    from cli.context import err, open_repo, out
    from cli.render import plain
    from foundation.errors import PlatformError
    from platformctl import billing
    from services.payouts.money import format_minor

    report = billing.run_payouts(
        open_repo(),
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
        for column in (
            "partner",
            "period",
            "currency",
            "minutes",
            "gross",
            "share",
            "payout",
            "due",
            "status",
            "detail",
        ):
            table.add_column(column)
        for o in report.outcomes:
            s = o.statement
            currency = s.get("currency") or ""
            table.add_row(
                o.partner,
                o.period,
                currency,
                str(s.get("minutes", "")),
                format_minor(s["gross_minor"], currency) if currency else "",
                s.get("share", ""),
                format_minor(s["payout_minor"], currency) if currency else "",
                format_minor(o.due_minor, currency) if currency else "",
                o.status,
                o.reason,
            )
        for o in report.developers:  # marketplace developers: their installs' share, no minutes
            s, currency = o.statement, o.statement.get("currency") or ""
            table.add_row(
                o.partner,
                o.period,
                currency,
                f"{len(s.get('lines') or [])} installs",
                "",
                "",
                format_minor(s["payout_minor"], currency) if currency else "",
                format_minor(o.due_minor, currency) if currency else "",
                o.status,
                o.reason,
            )
        if report.outcomes or report.developers:
            out.print(table)
        else:
            plain(out, f"nothing to pay for {report.period}")
        if not report.dry_run:
            plain(out, f"statements: {report.statements}")
    for o in report.outcomes:
        for warning in o.warnings:
            plain(err, f"warning: {o.partner}: {warning}", "yellow")
    for note in report.webhooks:
        plain(err, f"webhooks: {note}", "yellow")
    for o in report.not_paid:
        plain(err, f"not paid: {o.partner} {o.period}: {o.reason}", "red")
    if report.not_paid:
        names = ", ".join(f"{o.partner} ({o.period}: {o.status})" for o in report.not_paid)
        raise PlatformError(f"{len(report.not_paid)} month(s) not paid up to {report.period}: {names}")


COMMANDS: Commands = {"billing": billing_app, "payouts": payouts_app}
