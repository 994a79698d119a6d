"""A partner's billing terms as the warehouse's PARTNERS row: the spec, the tier table and the price book, once.

The partner stack upserts this row at `up` (foundation.warehouse_schema.partner_merge_statement) and
`platformctl warehouse sync` writes the same rows locally: the meter and the statements read terms from there,
never from files baked into an image.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from foundation.currencies import MINOR_UNITS, to_minor
from foundation.warehouse_schema import PARTNER_TERMS
from partners.prices import PriceBook
from partners.spec import PartnerSpec
from partners.tiers import TierTable


def partner_terms(
    spec: PartnerSpec,
    tiers: TierTable,
    prices: PriceBook,
    stripe_account: str | None = None,
    offboarded_on: dt.date | None = None,
) -> dict[str, Any]:
    """The PARTNER_TERMS columns of `spec`'s row; money as decimal strings (exact through JSON)."""
    currency = spec.billing.currency
    price = prices.price(spec.tier, currency)
    row: dict[str, Any] = {
        "PARTNER_ID": spec.id,
        "TIER": spec.tier,
        "CURRENCY": currency,
        "MINOR_UNITS": MINOR_UNITS[currency],
        "BASE_FEE_MINOR": to_minor(price.base_fee, currency),
        "RATE": f"{price.per_minute:f}",
        "REVENUE_SHARE": f"{tiers[spec.tier].revenue_share:f}",
        "PAYOUT_METHOD": spec.billing.payout_method,
        "STRIPE_ACCOUNT": stripe_account or None,
        "HOME_REGION": spec.home_region,
        "OFFBOARDED_ON": offboarded_on.isoformat() if offboarded_on else None,
        "MONTHLY_MINUTES_QUOTA": tiers[spec.tier].monthly_minutes_quota,
    }
    assert tuple(row) == PARTNER_TERMS, "partner_terms and PARTNERS disagree on the columns"
    return row
