"""Marketplace developers' payouts: per developer and period, its share of every install of its integrations active in
the period, paid from its home region by one Stripe transfer (key `payout:developer:<id>:<period>`).

Inputs are the region's warehouse alone: RAW.DEVELOPERS (payout currency, Stripe account), RAW.INTEGRATIONS (the
developer's share) and RAW.INSTALLS (which installs were active in the period: foundation.warehouse_schema.
ACTIVE_INSTALLS_SQL, and each one's listed monthly price in the developer's payout currency at install). The currency
rule (integrations/payouts.py): each active install earns share x the listed monthly price in the developer's payout
currency fixed at install, the same moment the partner's price was fixed, whatever the partner pays in (a price raised
later reaches new installs only, on both sides); the statement sums the exact products and rounds half-even to the
minor unit once.

The same rules as partner payouts, through the same code (services.payouts.transfers.pay): a month is stated once and
retried while pending, held (no account, `transfers` capability not active) or failed, by every later run, until
paid once; Stripe is asked first whether the month's transfer exists (a dropped answer is repaired, never paid
twice); an amount below Stripe's minimum is carried onto the developer's next new statement. A month after the
developer's first statement that no run stated (a run that never happened) is stated by the next run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from foundation.errors import InputError
from foundation.warehouse_schema import DEVELOPERS, INTEGRATIONS, active_installs_sql
from services.payouts import money
from services.payouts.report import ALREADY_PAID, CARRIED, FAILED, HELD, PAID, WOULD_PAY, PayoutResult
from services.payouts.statements import StatementStore
from services.payouts.stripe_gateway import DEVELOPER_METADATA, Payee, StripeError, StripeGateway
from services.payouts.transfers import not_onboarded, pay

RETRIED = frozenset({"pending", "held", "failed"})
"""Statement statuses a later run settles again."""


@dataclass(frozen=True)
class Developer:
    """A row of RAW.DEVELOPERS."""

    id: str
    currency: str
    stripe_account: str | None
    home_region: str


@dataclass(frozen=True)
class Listing:
    """An integration's payout terms (RAW.INTEGRATIONS)."""

    id: str
    developer: str
    share: Decimal
    currency: str
    monthly_minor: int


def read_developers(conn: Any) -> dict[str, Developer]:
    cur = conn.cursor()
    cur.execute(f"SELECT DEVELOPER_ID, CURRENCY, STRIPE_ACCOUNT, HOME_REGION FROM {DEVELOPERS.fqn(conn.database)}")
    return {row[0]: Developer(row[0], row[1], row[2] or None, row[3]) for row in cur.fetchall()}


def read_listings(conn: Any) -> dict[str, Listing]:
    cur = conn.cursor()
    cur.execute(
        "SELECT INTEGRATION_ID, DEVELOPER_ID, CAST(DEVELOPER_SHARE AS VARCHAR), CURRENCY, MONTHLY_MINOR "
        f"FROM {INTEGRATIONS.fqn(conn.database)}"
    )
    return {r[0]: Listing(r[0], r[1], Decimal(str(r[2])), r[3], int(r[4])) for r in cur.fetchall()}


@dataclass(frozen=True)
class ActiveInstall:
    """A row of RAW.INSTALLS active in a period."""

    id: str
    partner: str
    integration: str
    developer_currency: str | None
    """The developer's payout currency at install; None in a row written before the column existed."""
    developer_monthly_minor: int | None
    """The listed monthly price in `developer_currency` at install; None alike."""


def active_installs(conn: Any, period: str) -> list[ActiveInstall]:
    """Every install active in `period`, with the developer's price fixed at install."""
    cur = conn.cursor()
    cur.execute(active_installs_sql(conn.database), money.month_bounds(period))
    return [
        ActiveInstall(row[0], row[1], row[2], row[6] or None, None if row[7] is None else int(row[7]))
        for row in cur.fetchall()
    ]


def statement_lines(
    developer: Developer, listings: dict[str, Listing], installs: list[ActiveInstall]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The developer's lines (one per active install of its integrations: the share of RAW.INTEGRATIONS x the price
    in the developer's payout currency fixed at install) and the problems that stop paying them."""
    lines, problems = [], []
    for install in installs:
        integration = install.integration
        listing = listings.get(integration)
        if listing is None or listing.developer != developer.id:
            continue
        if listing.currency != developer.currency:
            problems.append(
                f"{integration} is listed in {listing.currency}, the developer is paid in {developer.currency}"
            )
            continue
        if install.developer_currency is None or install.developer_monthly_minor is None:
            # A row written before INSTALLS carried the developer's price (the install MERGE fills it at the row's
            # next upsert): the price at its install is not known, so the one listed now is the best there is.
            price = listing.monthly_minor
        elif install.developer_currency != developer.currency:
            problems.append(
                f"{install.id} was priced in {install.developer_currency}, the developer is paid in "
                f"{developer.currency}"
            )
            continue
        else:
            price = install.developer_monthly_minor
        lines.append(
            {
                "install": install.id,
                "partner": install.partner,
                "integration": integration,
                "price_minor": price,
                "share": f"{listing.share.normalize():f}",
            }
        )
    return lines, problems


def payout_of(lines: list[dict[str, Any]]) -> int:
    """sum(price x share) over the lines, exact, rounded half-even to the minor unit once."""
    total = sum((Decimal(line["price_minor"]) * Decimal(line["share"]) for line in lines), Decimal(0))
    return int(total.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def pay_developers(
    *,
    conn: Any,
    period: str,
    store: StatementStore,
    gateway: StripeGateway | None,
    region: str | None,
    dry_run: bool,
    now: dt.datetime,
) -> list[PayoutResult]:
    """Settle every developer of this warehouse (its home region's) for `period` and retry its open months."""
    developers = read_developers(conn)
    listings = read_listings(conn)
    installs = active_installs(conn, period)
    stated = store.index()
    results: list[PayoutResult] = []
    run = _Settling(store, gateway, dry_run, now, region)
    installs_in: dict[str, list[ActiveInstall]] = {period: installs}
    for developer in sorted(developers.values(), key=lambda d: d.id):
        if region is not None and developer.home_region != region:
            continue
        months = sorted(m for m in stated.get(developer.id, set()) if m <= period)
        statements = {m: store.get(m, developer.id) or {} for m in months}
        for month, found in statements.items():
            if (found.get("developer"), found.get("period")) != (developer.id, month):
                raise InputError.single(
                    f"{store.where}/{month}/{developer.id}.json",
                    "developer",
                    f"is not {developer.id}'s statement for {month} (a statement is never moved or copied)",
                )
        for month in months:
            if statements[month].get("status") in RETRIED and month != period:
                results.append(run.settle(developer, month, statements[month], [], statements))
        # A month after the developer's first statement that no run stated (the run never happened): stated now,
        # oldest first, like the partners' (nothing owed is dropped); one with nothing earned is left unstated.
        for month in _unstated(months, period):
            if month not in installs_in:  # one query per month and run, whichever developers need it
                installs_in[month] = active_installs(conn, month)
            lines, problems = statement_lines(developer, listings, installs_in[month])
            if lines or problems:
                outcome = run.new_month(developer, month, None, lines, problems, months, statements)
                if outcome is not None and outcome.status != FAILED:
                    months = sorted({*months, month})
                    statements[month] = outcome.statement
                results += [outcome] if outcome is not None else []
        previous = statements.get(period)
        lines, problems = statement_lines(developer, listings, installs)
        if previous is not None and previous.get("status") not in RETRIED:
            if period in statements:
                results.append(
                    PayoutResult(
                        f"developer:{developer.id}",
                        ALREADY_PAID if previous.get("status") == "paid" else CARRIED,
                        previous,
                        reason="already stated",
                        period=period,
                    )
                )
            continue
        outcome = run.new_month(developer, period, previous, lines, problems, months, statements)
        results += [outcome] if outcome is not None else []
    return results


def _unstated(months: list[str], period: str) -> list[str]:
    """The months after the first of `months` and before `period` that have no statement."""
    gaps: list[str] = []
    month = money.next_period(months[0]) if months else period
    while month < period:
        if month not in months:
            gaps.append(month)
        month = money.next_period(month)
    return gaps


@dataclass(frozen=True)
class _Settling:
    """What every month of one run is stated and paid with."""

    store: StatementStore
    gateway: StripeGateway | None
    dry_run: bool
    now: dt.datetime
    region: str | None
    """The region whose run this is (recorded on each statement), or None."""

    def new_month(
        self,
        developer: Developer,
        month: str,
        previous: dict[str, Any] | None,
        lines: list[dict[str, Any]],
        problems: list[str],
        months: list[str],
        statements: dict[str, dict[str, Any]],
    ) -> PayoutResult | None:
        """State `month` (or restate a retried one) taking the open carries of earlier months; None: nothing to
        state."""
        if problems:
            return PayoutResult(
                f"developer:{developer.id}", FAILED, previous or {}, reason="; ".join(problems), period=month
            )
        open_carries = [
            m
            for m in months
            if m < month and statements[m].get("status") == "carried" and not statements[m].get("carried_into")
        ]
        if not lines and not open_carries and previous is None:
            return None
        result = self.settle(developer, month, previous, lines, statements, open_carries)
        if previous is None:
            for source in open_carries:  # taken (write() records it too): a later month does not take them again
                statements[source]["carried_into"] = month
        return result

    def settle(
        self,
        developer: Developer,
        month: str,
        previous: dict[str, Any] | None,
        lines: list[dict[str, Any]],
        statements: dict[str, dict[str, Any]],
        carries: list[str] | None = None,
    ) -> PayoutResult:
        """State (or restate) one month and pay it if it can be paid. A restated month keeps its lines and carries; one
        whose transfer was requested keeps the request's amount (what its key moved or will move)."""
        store, gateway, dry_run, now, region = self.store, self.gateway, self.dry_run, self.now, self.region
        who = Payee("developer", developer.id)
        if previous:
            statement = dict(previous)
        else:
            carried_in: list[dict[str, Any]] = [
                {"from": m, "amount_minor": int(statements[m]["due_minor"])} for m in carries or []
            ]
            payout = payout_of(lines)
            statement = {
                "developer": developer.id,
                "period": month,
                "currency": developer.currency,
                "lines": lines,
                "carried_in": carried_in,
                "payout_minor": payout,
                "due_minor": payout + sum(int(c["amount_minor"]) for c in carried_in),
            }
        statement.update(
            {
                "status": "pending",
                "reason": "",
                "transfer": statement.get("transfer"),
                "requested": statement.get("requested"),
                "stripe_answer": statement.get("stripe_answer"),
                "carried_into": None,
                "region": region,
                "updated_at": now.isoformat(timespec="seconds"),
            }
        )
        due, currency = int(statement["due_minor"]), str(statement["currency"])
        result = PayoutResult(f"developer:{developer.id}", WOULD_PAY, statement, due_minor=due, period=month)

        def write() -> str:
            if not previous:
                for source in carries or []:  # the hand-over is recorded on the source first (a crash repeats it)
                    statements[source]["carried_into"] = month
                    store.put(source, developer.id, statements[source])
            return store.put(month, developer.id, statement)

        def record(status: str, statement_status: str, reason: str) -> PayoutResult:
            result.status, result.reason = status, reason
            statement["status"], statement["reason"] = statement_status, reason
            if not dry_run:
                result.location = write()
            return result

        hold = money.below_minimum(due, currency)
        if hold is not None:
            result.attention = currency not in money.STRIPE_MINIMUM_MINOR and due > 0
            return record(CARRIED, "carried", f"{hold}; carried onto the developer's next new statement")
        account = developer.stripe_account
        if account is None:
            return record(HELD, "held", f"no Stripe account (run: {who.connect_command})")
        if dry_run or gateway is None:
            result.reason = f"{money.format_minor(due, currency)} to {account}"
            return result
        try:
            details = gateway.retrieve_account(account)
        except StripeError as exc:
            return record(FAILED, "failed", f"{exc}; retried by the next run")
        owner = ((details or {}).get("metadata") or {}).get(DEVELOPER_METADATA)
        if details is None or owner != developer.id:
            return record(
                FAILED, "failed", f"its DEVELOPERS row names {account}, which is not its Stripe account; nothing sent"
            )
        hold_reason = not_onboarded(account, details, who)
        if hold_reason is not None:
            return record(HELD, "held", hold_reason)
        paid = pay(gateway, who, month, previous or None, statement, account, record, write)
        if paid.status == PAID:
            paid.reason = f"{paid.reason} ({len(statement['lines'])} installs)"
        return paid
