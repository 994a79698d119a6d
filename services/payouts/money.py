"""Statement arithmetic, pure: integer minor units, Decimal rates and shares, one rounding per statement.

gross_minor  = sum over rate groups of minutes x rate (exact Decimal), rounded half-even to the minor unit ONCE;
payout_minor = floor(gross_minor x revenue_share): the platform never overpays;
due_minor    = payout_minor + the signed adjustment lines (credits, corrections, carries), all in minor units.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from foundation.currencies import minor_exponent, to_minor
from foundation.errors import InputError
from foundation.naming import PARTNER_ID_PATTERN
from foundation.yamlio import load_yaml_file, validation_problems

PERIOD_PATTERN = r"^([0-9]{4})-(0[1-9]|1[0-2])$"
# ASCII digits, matched whole (re.match with `$` also takes "2026-11\n", `\d` takes "２０２６"): the period is the
# transfer's idempotency key and transfer_group, so a second spelling of one month would pay it twice.
_PERIOD = re.compile(PERIOD_PATTERN)
MAX_ADJUSTMENTS = 1000

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


def previous_period(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def next_period(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    return f"{year + 1}-01" if month == 12 else f"{year}-{month + 1:02d}"


def _integer(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number of minor units (an integer, not a float or string)")
    return value


MinorUnits = Annotated[int, BeforeValidator(_integer), Field(ge=-(10**15), le=10**15)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Adjustment(_Frozen):
    kind: Literal["credit", "correction", "carry"]
    """credit: owed to the partner; correction: fixes an earlier statement; carry: unpaid from an earlier period."""
    amount_minor: MinorUnits
    """Signed amount in the statement currency's minor unit (positive: the partner gets more)."""
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
    """Why, in words a partner reads on the statement (a credit note number, a ticket)."""


class AdjustmentLine(Adjustment):
    partner: Annotated[str, StringConstraints(pattern=PARTNER_ID_PATTERN)]
    """The partner the line belongs to."""
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    """Must be the partner's statement currency (checked when the statement is built)."""


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


def gross_minor(usage: Iterable[tuple[int, Decimal]], currency: str) -> int:
    """(minutes, rate) groups -> the period's gross in minor units, rounded half-even once."""
    total = sum((Decimal(minutes) * rate for minutes, rate in usage), Decimal(0))
    return to_minor(total, currency)


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
