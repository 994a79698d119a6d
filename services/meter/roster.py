"""The partners a region meters, with what a minute costs each: partner specs + the price book."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from foundation.currencies import MINOR_UNITS, to_minor
from foundation.errors import InputError
from foundation.naming import RESERVED_PARTNER_IDS
from partners.prices import PriceBook, load_prices
from partners.spec import load_spec


@dataclass(frozen=True)
class Partner:
    id: str
    """Partner id (the spec's `id`, the Kong consumer's custom_id)."""
    tier: str
    """Billed tier."""
    currency: str
    """Billing currency (ISO 4217)."""
    rate: Decimal
    """Price of one call minute in `currency`."""
    base_fee_minor: int
    """Monthly base fee in minor units."""
    countries: frozenset[str]
    """Countries the partner sells in."""

    def roster_row(self) -> dict[str, object]:
        return {
            "PARTNER_ID": self.id,
            "TIER": self.tier,
            "BASE_FEE_MINOR": self.base_fee_minor,
            "CURRENCY": self.currency,
            "MINOR_UNITS": MINOR_UNITS[self.currency],
            "ACTIVE": True,
        }


def load_roster(partners_dir: Path, region: str | None = None, prices: PriceBook | None = None) -> dict[str, Partner]:
    """Every partners/<id>.yaml (not the tier table, the price book or examples), priced from the price book.

    With `region`, only the partners homed there: usage never leaves its region.
    """
    book = prices or load_prices(partners_dir / "prices.yaml")
    roster: dict[str, Partner] = {}
    for path in sorted(partners_dir.glob("*.yaml")):
        if path.stem in RESERVED_PARTNER_IDS:
            continue
        spec = load_spec(path, f"partners/{path.name}")
        if spec.id != path.stem:
            raise InputError.single(f"partners/{path.name}", "id", f"is {spec.id!r}, the file name says {path.stem!r}")
        if region is not None and spec.home_region != region:
            continue
        price = book.price(spec.tier, spec.billing.currency)
        roster[spec.id] = Partner(
            id=spec.id,
            tier=spec.tier,
            currency=spec.billing.currency,
            rate=price.per_minute,
            base_fee_minor=to_minor(price.base_fee, spec.billing.currency),
            countries=frozenset(spec.countries),
        )
    return roster
