"""What the payouts job reads of the warehouse for partners: terms (RAW.PARTNERS) and gross per period
(ANALYTICS.USAGE_BY_PERIOD, the one definition of gross)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from foundation.warehouse_schema import PARTNERS, USAGE_EVENTS, view


@dataclass(frozen=True)
class Terms:
    """A partner's row of RAW.PARTNERS."""

    partner: str
    tier: str
    currency: str
    share: Decimal
    payout_method: str
    stripe_account: str | None
    home_region: str
    offboarded_on: str | None
    problem: str = ""
    """Why the row cannot be used (empty: it can)."""


@dataclass(frozen=True)
class MonthUsage:
    """One partner's usage of one period in one currency (ANALYTICS.USAGE_BY_PERIOD)."""

    currency: str
    minutes: int
    gross_minor: int | None
    """USAGE_BY_PERIOD.GROSS_MINOR; None for a currency the warehouse has no minor-unit entry for."""
    rates: tuple[str, ...]


def read_terms(conn: Any) -> dict[str, Terms]:
    cur = conn.cursor()
    cur.execute(
        "SELECT PARTNER_ID, TIER, CURRENCY, CAST(REVENUE_SHARE AS VARCHAR), PAYOUT_METHOD, STRIPE_ACCOUNT, "
        f"HOME_REGION, CAST(OFFBOARDED_ON AS VARCHAR) FROM {PARTNERS.fqn(conn.database)}"
    )
    terms = {}
    for partner, tier, currency, share, method, account, home, offboarded in cur.fetchall():
        problem = ""
        try:
            parsed = Decimal(str(share))
        except InvalidOperation:
            parsed = Decimal(-1)
        if not Decimal(0) <= parsed <= Decimal(1):
            problem = f"its PARTNERS row has REVENUE_SHARE {share!r}, not a fraction between 0 and 1"
        elif method not in ("stripe_connect", "bank_transfer"):
            problem = f"its PARTNERS row has PAYOUT_METHOD {method!r}"
        terms[partner] = Terms(
            partner, tier, currency, parsed, method, account or None, home, offboarded or None, problem
        )
    return terms


def read_usage(conn: Any, through: str) -> dict[str, dict[str, list[MonthUsage]]]:
    """partner -> period -> usage per currency, for every period up to `through`, from USAGE_BY_PERIOD."""
    database = conn.database
    by_period = view("USAGE_BY_PERIOD")
    cur = conn.cursor()
    cur.execute(
        f"SELECT DISTINCT PARTNER_ID, PERIOD, CURRENCY, CAST(RATE AS VARCHAR) FROM {USAGE_EVENTS.fqn(database)} "
        "WHERE PERIOD <= %s",
        (through,),
    )
    rates: dict[tuple[str, str, str], set[Decimal]] = {}
    for partner, period, currency, rate in cur.fetchall():
        rates.setdefault((partner, period, currency), set()).add(Decimal(str(rate)).normalize())
    cur.execute(
        "SELECT PARTNER_ID, PERIOD, CURRENCY, MINUTES, GROSS_MINOR FROM "
        f"{database}.{by_period.schema}.{by_period.name} WHERE PERIOD <= %s ORDER BY PARTNER_ID, PERIOD, CURRENCY",
        (through,),
    )
    usage: dict[str, dict[str, list[MonthUsage]]] = {}
    for partner, period, currency, minutes, gross in cur.fetchall():
        shown = tuple(f"{r:f}" for r in sorted(rates.get((partner, period, currency), ())))
        usage.setdefault(partner, {}).setdefault(period, []).append(
            MonthUsage(currency, int(minutes), None if gross is None else int(gross), shown)
        )
    return usage


def rate_field(rates: Sequence[str]) -> str | list[str]:
    if not rates:
        return "0"
    return rates[0] if len(rates) == 1 else list(rates)
