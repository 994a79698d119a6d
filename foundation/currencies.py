"""ISO 4217 minor-unit exponents: the one table that turns a currency amount into integer minor units.

Source: ISO 4217 list one (SIX Group, "Current currency & funds code list", list-one.xml), the
`CcyMnrUnts` column, checked 2026-11. CLP and JPY have no minor unit in use; COP and ARS keep 2 in the
standard even though cash has no centavos, and the standard is what Stripe and banks settle in.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from foundation.errors import InputError

MINOR_UNITS: dict[str, int] = {
    "ARS": 2,
    "AUD": 2,
    "BHD": 3,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CLP": 0,
    "COP": 2,
    "DKK": 2,
    "EUR": 2,
    "GBP": 2,
    "INR": 2,
    "ISK": 0,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "MXN": 2,
    "NOK": 2,
    "NZD": 2,
    "SEK": 2,
    "SGD": 2,
    "USD": 2,
}


def minor_exponent(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise InputError.single("currency", "", f"{currency!r} has no ISO 4217 minor-unit entry") from None


def to_minor(amount: Decimal, currency: str) -> int:
    """Round a currency amount to integer minor units, half to even, once (callers sum unrounded first)."""
    scaled = amount.scaleb(minor_exponent(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
