"""The price book (`partners/prices.yaml`): per-minute rate and base fee by billing currency and tier."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from foundation.currencies import MINOR_UNITS
from foundation.errors import InputError, Problem
from foundation.yamlio import load_yaml_file, validation_problems
from partners.tiers import TIER_NAMES

PRICES_FILE = Path(__file__).resolve().parent / "prices.yaml"
RATE_DECIMALS = 6
"""Decimals a per-minute rate may carry: finer than any minor unit, coarse enough for NUMBER(18,6)."""


def _decimal_string(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("money must be written as a quoted decimal string, not a float")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("money must be a quoted decimal string")
    return value


Rate = Annotated[
    Decimal, BeforeValidator(_decimal_string), Field(gt=0, decimal_places=RATE_DECIMALS, allow_inf_nan=False)
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Price(_Frozen):
    per_minute: Rate
    """Price of one billed call minute (each call rounded up to the minute)."""
    base_fee: Rate
    """Monthly base fee; must be expressible in the currency's minor units."""


CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class PriceBook(_Frozen):
    currencies: dict[CurrencyCode, dict[str, Price]]
    """Prices by ISO 4217 currency, then by tier."""

    def price(self, tier: str, currency: str) -> Price:
        try:
            return self.currencies[currency][tier]
        except KeyError:
            raise InputError.single("partners/prices.yaml", f"currencies.{currency}.{tier}", "no price") from None

    def rate(self, tier: str, currency: str) -> Decimal:
        return self.price(tier, currency).per_minute


def load_prices(path: Path = PRICES_FILE, required_currencies: frozenset[str] = frozenset()) -> PriceBook:
    """Read the price book; every currency in `required_currencies` must be priced for every tier."""
    book = _load_cached(path.resolve())
    missing = sorted(required_currencies - set(book.currencies))
    if missing:
        raise InputError.single(path, "currencies", f"no prices for {', '.join(missing)} (used by catalog countries)")
    return book


@cache
def _load_cached(path: Path) -> PriceBook:
    doc = load_yaml_file(path)
    if not isinstance(doc, dict):
        raise InputError.single(path, "", "the price book must be a mapping with `currencies`")
    try:
        book = PriceBook.model_validate(doc)
    except ValidationError as exc:
        raise InputError(validation_problems(str(path), exc)) from None
    problems = []
    for currency, tiers in book.currencies.items():
        where = f"currencies.{currency}"
        if currency not in MINOR_UNITS:
            problems.append(
                Problem(str(path), where, "not in the ISO 4217 minor-unit table (foundation/currencies.py)")
            )
            continue
        unknown = sorted(set(tiers) - set(TIER_NAMES))
        missing = [t for t in TIER_NAMES if t not in tiers]
        if unknown:
            problems.append(Problem(str(path), where, f"unknown tiers {', '.join(unknown)}"))
        if missing:
            problems.append(Problem(str(path), where, f"missing tiers {', '.join(missing)}"))
        for tier, price in tiers.items():
            exponent = price.base_fee.as_tuple().exponent
            if isinstance(exponent, int) and -exponent > MINOR_UNITS[currency]:
                problems.append(
                    Problem(
                        str(path),
                        f"{where}.{tier}.base_fee",
                        f"{currency} has {MINOR_UNITS[currency]} minor-unit decimals; the fee has more",
                    )
                )
    if problems:
        raise InputError(problems)
    return book
