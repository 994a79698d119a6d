"""Statement arithmetic, pure: integer minor units, Decimal shares; and when a period may be paid.

gross_minor  = the warehouse's USAGE_BY_PERIOD.GROSS_MINOR (foundation.warehouse_schema.GROSS_MINOR_SQL), the one
               definition: read, never recomputed here;
payout_minor = floor(gross_minor x revenue_share): the platform never overpays;
due_minor    = payout_minor + the signed adjustment lines (credits, corrections, carries), all in minor units.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from foundation.currencies import minor_exponent
from foundation.errors import InputError
from foundation.naming import PARTNER_ID_PATTERN
from foundation.yamlio import load_yaml_file, validation_problems

PERIOD_PATTERN = r"^([0-9]{4})-(0[1-9]|1[0-2])$"
# ASCII digits, matched whole (re.match with `$` also takes "2026-11\n", `\d` takes "２０２６"): the period is the
# transfer's idempotency key and transfer_group, so a second spelling of one month would pay it twice.
_PERIOD = re.compile(PERIOD_PATTERN)
MAX_ADJUSTMENTS = 1000
CLOSE_WINDOW = dt.timedelta(days=1)
"""How long after a period ends (UTC) before it may be paid (at most 3 days, by policy). Calls that end by midnight
reach the meter through Twilio's status callbacks within minutes and the spool flushes within seconds, so one day is
ample; the regional CronJob runs at 06:00 UTC on the 2nd, after it. The meter accepts late events for much longer
(35 days); one that lands in a period already stated becomes a `late_usage` line on the partner's next statement."""

# Stripe publishes no per-currency minimum for a Connect transfer; the per-currency floor it documents is the
# "Minimum and maximum charge amounts" table (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts,
# read 2026-11-29), and a transfer smaller than that costs more to move than it is worth. Amounts in minor units.
# A currency not in the table (ARS, CLP, COP, ...) has no documented minimum: such payouts are held (carried) with
# that reason rather than guessed at.
STRIPE_MINIMUM_MINOR: dict[str, int] = {
    "AUD": 50,
    "BRL": 50,
    "CAD": 50,
    "CHF": 50,
    "DKK": 250,
    "EUR": 50,
    "GBP": 30,
    "INR": 50,
    "JPY": 50,
    "MXN": 1000,
    "NOK": 300,
    "NZD": 50,
    "SEK": 300,
    "SGD": 50,
    "USD": 50,
}


def check_period(period: str, field: str = "--period") -> str:
    if not isinstance(period, str) or not _PERIOD.fullmatch(period) or period.startswith("0000"):
        raise InputError.single(field, "", "must be YYYY-MM, e.g. 2026-11")
    return period


PREVIOUS = "previous"
"""`--period previous`: the latest period whose close window has passed (what the monthly CronJob passes)."""
PERIOD_HELP = (
    f"YYYY-MM, or '{PREVIOUS}' (the latest payable month). A month is payable once it has ended (UTC) and the "
    f"{CLOSE_WINDOW.days}-day close window has passed (earlier: exit 2); months before it that are not settled "
    "(held, failed, never run) are settled by the same run."
)


def period_end(period: str) -> dt.datetime:
    """The first instant after the period (UTC)."""
    following = next_period(period)
    return dt.datetime(int(following[:4]), int(following[5:]), 1, tzinfo=dt.UTC)


def check_payable(period: str, now: dt.datetime, field: str = "--period") -> str:
    """A period is payable once it has ended and the close window has passed; earlier is bad input."""
    payable_from = period_end(period) + CLOSE_WINDOW
    if now < payable_from:
        raise InputError.single(
            field,
            "",
            f"{period} is not closed: it may be paid from {payable_from:%Y-%m-%d %H:%M} UTC "
            f"(its end plus the {CLOSE_WINDOW.days}-day close window)",
        )
    return period


def latest_payable(now: dt.datetime) -> str:
    """`--period previous`: the latest period whose close window has passed."""
    period = previous_period(f"{now:%Y-%m}")
    while now < period_end(period) + CLOSE_WINDOW:
        period = previous_period(period)
    return period


def previous_period(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def next_period(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    return f"{year + 1}-01" if month == 12 else f"{year}-{month + 1:02d}"


def month_bounds(period: str) -> tuple[str, str]:
    """(last day, first day) of a YYYY-MM period: what ACTIVE_INSTALLS_SQL binds, in its order."""
    year, month = int(period[:4]), int(period[5:])
    return dt.date(year, month, calendar.monthrange(year, month)[1]).isoformat(), f"{period}-01"


def _integer(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number of minor units (an integer, not a float or string)")
    return value


MinorUnits = Annotated[int, BeforeValidator(_integer), Field(ge=-(10**15), le=10**15)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Adjustment(_Frozen):
    kind: Literal["credit", "correction", "carry", "late_usage", "integration"]
    """credit: owed to the partner; correction: fixes an earlier statement; carry: unpaid from an earlier period;
    late_usage: usage metered into an earlier period after its statement was settled; integration: a marketplace
    install's monthly price (negative; the job's own, from RAW.INSTALLS)."""
    amount_minor: MinorUnits
    """Signed amount in the statement currency's minor unit (positive: the partner gets more)."""
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
    """Why, in words a partner reads on the statement (a credit note number, a ticket)."""


class AdjustmentLine(Adjustment):
    partner: Annotated[str, StringConstraints(pattern=PARTNER_ID_PATTERN)]
    """The partner the line belongs to."""
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    """Must be the partner's statement currency (checked when the statement is built)."""

    @field_validator("kind")
    @classmethod
    def _not_the_jobs(cls, value: str) -> str:
        if value == "integration":
            raise ValueError("integration lines come from the installs in the warehouse, not from a file")
        return value


class AdjustmentsFile(_Frozen):
    period: Annotated[str, StringConstraints(pattern=PERIOD_PATTERN)]
    """The statement period the lines belong to (must match --period)."""
    adjustments: Annotated[list[AdjustmentLine], Field(max_length=MAX_ADJUSTMENTS)] = []
    """Signed lines, in the order they appear on the statements."""


def load_adjustments(path: Path, period: str) -> list[AdjustmentLine]:
    display = str(path)
    doc = load_yaml_file(path, display)
    if not isinstance(doc, dict):
        raise InputError.single(display, "", "an adjustments file is a mapping with `period` and `adjustments`")
    try:
        parsed = AdjustmentsFile.model_validate(doc)
    except ValidationError as exc:
        raise InputError(validation_problems(display, exc)) from None
    if parsed.period != period:
        raise InputError.single(display, "period", f"is {parsed.period}, the run is for {period}")
    return list(parsed.adjustments)


def payout_minor(gross: int, share: Decimal) -> int:
    """floor(gross x share): a fraction of a minor unit always stays with the platform."""
    if not (Decimal(0) <= share <= Decimal(1)):
        raise ValueError(f"a revenue share is between 0 and 1, not {share}")
    return int((Decimal(gross) * share).to_integral_value(rounding=ROUND_FLOOR))


def due_minor(payout: int, adjustments: Iterable[Adjustment]) -> int:
    return payout + sum(a.amount_minor for a in adjustments)


def below_minimum(amount_minor: int, currency: str) -> str | None:
    """Why `amount_minor` cannot be transferred (None: it can)."""
    if amount_minor <= 0:
        return f"nothing to pay ({format_minor(amount_minor, currency)})"
    minimum = STRIPE_MINIMUM_MINOR.get(currency)
    if minimum is None:
        return f"Stripe documents no minimum amount for {currency}; held for review"
    if amount_minor < minimum:
        return f"{format_minor(amount_minor, currency)} is below Stripe's minimum of {format_minor(minimum, currency)}"
    return None


def format_minor(amount_minor: int, currency: str) -> str:
    exponent = minor_exponent(currency)
    return f"{Decimal(amount_minor).scaleb(-exponent):.{exponent}f} {currency}"
