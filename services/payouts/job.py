"""The monthly payouts job: the period's usage -> one statement and at most one Stripe transfer per partner.

Exactly once, whatever fails: a partner-period whose statement records a transfer is "already paid"; before a
transfer is created, Stripe is asked whether one exists for the partner and period (transfer_group + metadata), so
a run that crashed after the transfer and before the statement write is repaired without paying twice; the create
itself carries the Idempotency-Key `payout:<partner>:<period>`, so the client's retries after a 5xx or a dropped
connection replay the first result. A partner that cannot be paid (no account, below Stripe's minimum) gets a
statement without a transfer, and its amount is carried into the next period's statement as a signed line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from foundation.errors import InputError, PlatformError
from foundation.warehouse_schema import USAGE_EVENTS, view
from partners.spec import PartnerSpec
from partners.tiers import TierTable
from services.payouts import money
from services.payouts.money import Adjustment, AdjustmentLine
from services.payouts.statements import StatementStore
from services.payouts.stripe_gateway import StripeError, StripeGateway, transfer_idempotency_key

PAID = "paid"
"""A transfer was made in this run."""
REPAIRED = "repaired"
"""The transfer existed (an earlier run crashed before the statement write); the statement is written now."""
ALREADY_PAID = "already paid"
EXTERNAL = "external"
"""Paid outside Stripe (payout_method bank_transfer): the statement is written, finance pays it."""
CARRIED = "carried"
"""Not paid this period; the amount moves to the next period's statement."""
FAILED = "failed"
"""Stripe could not be asked or refused; nothing was written, the next run settles it."""
WOULD_PAY = "would pay"
"""Dry run."""
NOT_PAID = frozenset({CARRIED, FAILED})


@dataclass
class Outcome:
    partner: str
    status: str
    statement: dict[str, Any]
    reason: str = ""
    location: str = ""
    due_minor: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "partner": self.partner,
            "status": self.status,
            "reason": self.reason,
            "due_minor": self.due_minor,
            "location": self.location,
            "warnings": self.warnings,
            "statement": self.statement,
        }


@dataclass
class Report:
    period: str
    region: str | None
    statements: str
    dry_run: bool
    outcomes: list[Outcome]

    @property
    def not_paid(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in NOT_PAID]

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "region": self.region,
            "statements": self.statements,
            "dry_run": self.dry_run,
            "partners": [o.as_dict() for o in self.outcomes],
            "not_paid": [o.partner for o in self.not_paid],
        }


@dataclass(frozen=True)
class Usage:
    currency: str
    minutes: int
    rates: tuple[tuple[int, Decimal], ...]
    """(minutes, rate) per distinct per-minute rate of the period."""


def read_usage(conn: Any, period: str) -> dict[str, Usage]:
    """Per partner: minutes (USAGE_BY_PERIOD, the view statements read) and the minutes per metered rate."""
    database = conn.database
    cur = conn.cursor()
    by_period = view("USAGE_BY_PERIOD")
    cur.execute(
        f"SELECT PARTNER_ID, CURRENCY, MINUTES FROM {database}.{by_period.schema}.{by_period.name} WHERE PERIOD = %s",
        (period,),
    )
    totals: dict[str, tuple[str, int]] = {}
    currencies: dict[str, set[str]] = {}
    for partner, currency, minutes in cur.fetchall():
        currencies.setdefault(partner, set()).add(currency)
        totals[partner] = (currency, int(minutes))
    cur.execute(
        f"SELECT PARTNER_ID, CAST(RATE AS VARCHAR), SUM(CAST(MINUTES AS NUMBER(38,0))) FROM "
        f"{USAGE_EVENTS.fqn(database)} WHERE PERIOD = %s GROUP BY PARTNER_ID, RATE ORDER BY PARTNER_ID, RATE",
        (period,),
    )
    rates: dict[str, list[tuple[int, Decimal]]] = {}
    for partner, rate, minutes in cur.fetchall():
        rates.setdefault(partner, []).append((int(minutes), Decimal(str(rate)).normalize()))
    usage = {}
    for partner, (currency, minutes) in totals.items():
        if len(currencies[partner]) > 1:
            raise money_error(f"{partner} has usage in {', '.join(sorted(currencies[partner]))} in {period}")
        usage[partner] = Usage(currency, minutes, tuple(rates.get(partner, ())))
    return usage


def money_error(message: str) -> Exception:
    return PlatformError(message)


def _rate_field(rates: Iterable[tuple[int, Decimal]]) -> str | list[str]:
    values = sorted({f"{rate:f}" for _, rate in rates})
    if not values:
        return "0"
    return values[0] if len(values) == 1 else values


def build_statement(
    spec: PartnerSpec, period: str, usage: Usage | None, share: Decimal, adjustments: list[Adjustment]
) -> tuple[dict[str, Any], int]:
    """The statement (the issue's fields, in its order) and the amount due."""
    currency = usage.currency if usage else spec.billing.currency
    gross = money.gross_minor(usage.rates if usage else (), currency)
    payout = money.payout_minor(gross, share)
    statement = {
        "partner": spec.id,
        "period": period,
        "currency": currency,
        "minutes": usage.minutes if usage else 0,
        "rate": _rate_field(usage.rates if usage else ()),
        "gross_minor": gross,
        "share": f"{share:f}",
        "payout_minor": payout,
        "adjustments": [a.model_dump() for a in adjustments],
        "transfer": None,
    }
    return statement, money.due_minor(payout, adjustments)


def _carry_in(store: StatementStore, spec: PartnerSpec, period: str) -> Adjustment | None:
    previous = money.previous_period(period)
    earlier = store.get(previous, spec.id)
    if not earlier or earlier.get("transfer") is not None:
        return None
    try:
        owed = int(earlier["payout_minor"]) + sum(int(a["amount_minor"]) for a in earlier.get("adjustments") or [])
    except (KeyError, TypeError, ValueError):
        raise money_error(f"{store.where}: the {previous} statement of {spec.id} is not a statement") from None
    if owed == 0:
        return None
    return Adjustment(kind="carry", amount_minor=owed, reason=f"not paid in {previous}, carried")


def _transfer_record(transfer: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": transfer["id"],
        "amount_minor": int(transfer["amount"]),
        "currency": str(transfer["currency"]).upper(),
        "destination": transfer["destination"],
        "transfer_group": transfer.get("transfer_group"),
        "idempotency_key": transfer_idempotency_key(
            (transfer.get("metadata") or {}).get("partner", ""), transfer.get("transfer_group") or ""
        ),
        "created": dt.datetime.fromtimestamp(int(transfer.get("created") or 0), dt.UTC).isoformat(),
    }


def run_payouts(
    *,
    conn: Any,
    period: str,
    partners: list[PartnerSpec],
    tiers: TierTable,
    accounts: Callable[[], Mapping[str, str | None]],
    store: StatementStore,
    gateway: StripeGateway | None,
    adjustments: Sequence[AdjustmentLine] = (),
    region: str | None = None,
    dry_run: bool = False,
) -> Report:
    """Pay every partner in `partners` for `period` (see the module docstring). `gateway` None only when dry.

    `accounts` gives each partner's Stripe account (None: none); it is called once, after every input is checked
    and before anything is paid.
    """
    money.check_period(period)
    if gateway is None and not dry_run:
        raise ValueError("a real run needs a Stripe gateway")
    usage = read_usage(conn, period)
    specs = {spec.id: spec for spec in partners}
    outcomes: list[Outcome] = []
    for partner in sorted(set(usage) - set(specs)):
        if region is None:
            outcomes.append(
                Outcome(partner, FAILED, {}, reason="usage in the warehouse but no partner spec; nothing paid")
            )
    lines: dict[str, list[Adjustment]] = {}
    for index, line in enumerate(adjustments):
        where = f"adjustments[{index}]"
        if line.partner not in specs:
            raise InputError.single("--adjustments", f"{where}.partner", f"{line.partner!r} is not paid by this run")
        expected = usage[line.partner].currency if line.partner in usage else specs[line.partner].billing.currency
        if line.currency != expected:
            raise InputError.single("--adjustments", f"{where}.currency", f"the statement is in {expected}")
        lines.setdefault(line.partner, []).append(
            Adjustment(kind=line.kind, amount_minor=line.amount_minor, reason=line.reason)
        )
    account_of = accounts()
    for partner_id in sorted(specs):
        spec = specs[partner_id]
        carry = _carry_in(store, spec, period)
        own = ([carry] if carry else []) + lines.get(partner_id, [])
        if partner_id not in usage and not own:
            continue
        outcomes.append(
            _settle(
                spec, period, usage.get(partner_id), tiers, own, account_of.get(partner_id), store, gateway, dry_run
            )
        )
    return Report(period, region, store.where, dry_run, outcomes)


def _settle(
    spec: PartnerSpec,
    period: str,
    usage: Usage | None,
    tiers: TierTable,
    adjustments: list[Adjustment],
    account: str | None,
    store: StatementStore,
    gateway: StripeGateway | None,
    dry_run: bool,
) -> Outcome:
    share = tiers[spec.tier].revenue_share
    statement, due = build_statement(spec, period, usage, share, adjustments)
    outcome = Outcome(spec.id, WOULD_PAY, statement, due_minor=due)
    currency = statement["currency"]
    if usage is not None and usage.currency != spec.billing.currency:
        outcome.warnings.append(f"metered in {usage.currency}, the spec now bills in {spec.billing.currency}")

    existing = store.get(period, spec.id)
    if existing is not None and existing.get("transfer") is not None:
        outcome.status, outcome.statement, outcome.location = ALREADY_PAID, existing, store.where
        paid = existing["transfer"].get("amount_minor")
        if paid != due:
            outcome.warnings.append(
                f"recorded {paid}, the warehouse now gives {due} (late usage?): settle it with a correction line"
            )
        outcome.reason = "already paid"
        return outcome
    if existing is not None and store.get(money.next_period(period), spec.id) is not None:
        outcome.status, outcome.statement = CARRIED, existing
        outcome.reason = f"carried into {money.next_period(period)}, which is already stated; pay it there"
        return outcome

    if spec.billing.payout_method == "bank_transfer":
        outcome.status, outcome.reason = EXTERNAL, "payout method bank_transfer: finance pays this statement"
        if not dry_run:
            statement["transfer"] = {"method": "bank_transfer", "amount_minor": due, "currency": currency}
            outcome.location = store.put(period, spec.id, statement)
        return outcome

    hold = money.below_minimum(due, currency)
    if account is None:
        hold = f"no Stripe account (run: platformctl billing connect {spec.id})"
    if hold is not None:
        outcome.status, outcome.reason = CARRIED, f"{hold}; carried to {money.next_period(period)}"
        if not dry_run:
            outcome.location = store.put(period, spec.id, statement)
        return outcome
    if dry_run or gateway is None:
        outcome.reason = f"{money.format_minor(due, currency)} to {account}"
        return outcome

    assert account is not None
    try:
        transfer = gateway.find_transfer(spec.id, period, account)
        status = REPAIRED
        if transfer is None:
            transfer = gateway.create_transfer(spec.id, period, account, due, currency)
            status = PAID
    except StripeError as exc:
        outcome.status, outcome.reason = FAILED, f"{exc}; nothing written, rerun to settle"
        return outcome
    if transfer.get("destination") not in (None, account):
        outcome.status = FAILED
        outcome.reason = (
            f"its {period} transfer {transfer.get('id')} went to {transfer.get('destination')}, not to its account "
            f"{account} now: already paid, nothing sent; check the account change before settling by hand"
        )
        return outcome
    if int(transfer["amount"]) != due:
        outcome.warnings.append(f"the transfer moved {transfer['amount']}, the statement now gives {due}")
    statement["transfer"] = _transfer_record(transfer)
    outcome.status = status
    outcome.reason = f"{money.format_minor(int(transfer['amount']), currency)} in {transfer['id']}"
    outcome.location = store.put(period, spec.id, statement)
    return outcome
