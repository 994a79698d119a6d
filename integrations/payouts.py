"""An integration's money as warehouse rows: its installs (what each partner is charged), its developer and its payout
terms (the developer's share and the listed price in the developer's payout currency).

The currency rule (the lead's decision): the partner is charged the listed monthly price in the partner's billing
currency (fixed at install); the developer is paid in its payout currency, its country's currency, and each install
active in a period earns it share x the listed monthly price in that currency, fixed at the same moment (the install's
row carries both prices). The automated review refuses a priced
spec whose pricing lacks the developer's payout currency, and `onboard-partner` an install whose pricing lacks the
partner's, so both prices always exist. A free integration (no pricing) is 0 for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from foundation.currencies import MINOR_UNITS
from foundation.errors import InputError
from foundation.naming import install_id
from foundation.warehouse_schema import DEVELOPER_TERMS, INSTALL_TERMS, INTEGRATION_TERMS
from integrations.spec import IntegrationSpec
from regions.catalog import Catalog

if TYPE_CHECKING:  # the partner program imports this module for install_row: the review rules are no input of it
    from integrations.rules import ReviewRules


def developer_home(catalog: Catalog, spec: IntegrationSpec, source: str = "") -> tuple[str, str]:
    """(home region, payout currency) of the spec's developer: the first region serving its country in the catalog,
    and that country's currency. A country no region serves is bad input (the review refuses it at submit)."""
    country = spec.developer.country
    regions = catalog.regions_serving(country)
    if not regions or country not in catalog.countries:
        raise InputError.single(
            source or f"integrations/{spec.id}.yaml",
            "developer.country",
            f"{country}: no region serves it, so no warehouse can pay the developer (regions/regions.yaml)",
        )
    return regions[0], catalog.country(country).currency


def listed_price(spec: IntegrationSpec, currency: str) -> int:
    """The monthly price per install in `currency` (minor units); 0 for a free integration."""
    if spec.pricing is None:
        return 0
    if currency not in spec.pricing.monthly:
        raise InputError.single(f"integrations/{spec.id}.yaml", "pricing.monthly", f"lists no price in {currency}")
    return spec.pricing.monthly[currency]


def install_row(catalog: Catalog, spec: IntegrationSpec, partner_id: str, partner_currency: str) -> dict[str, Any]:
    """The INSTALLS row of `partner_id` installing `spec`: priced in the partner's currency (what it is charged) and
    in the developer's payout currency (what the developer earns its share of); the install MERGE keeps both as they
    were at install, so a later price change reaches neither side of an existing install."""
    _, developer_currency = developer_home(catalog, spec)
    row = {
        "INSTALL_ID": install_id(partner_id, spec.id),
        "PARTNER_ID": partner_id,
        "INTEGRATION_ID": spec.id,
        "DEVELOPER_ID": spec.developer.id,
        "CURRENCY": partner_currency,
        "MINOR_UNITS": MINOR_UNITS[partner_currency],
        "MONTHLY_MINOR": listed_price(spec, partner_currency),
        "DEVELOPER_CURRENCY": developer_currency,
        "DEVELOPER_MONTHLY_MINOR": listed_price(spec, developer_currency),
    }
    assert tuple(row) == INSTALL_TERMS, "install_row and INSTALLS disagree on the columns"
    return row


def developer_row(catalog: Catalog, spec: IntegrationSpec, stripe_account: str | None) -> dict[str, Any]:
    home, currency = developer_home(catalog, spec)
    row = {
        "DEVELOPER_ID": spec.developer.id,
        "LEGAL_NAME": spec.developer.legal_name,
        "COUNTRY": spec.developer.country,
        "CURRENCY": currency,
        "MINOR_UNITS": MINOR_UNITS[currency],
        "STRIPE_ACCOUNT": stripe_account or None,
        "HOME_REGION": home,
    }
    assert tuple(row) == DEVELOPER_TERMS, "developer_row and DEVELOPERS disagree on the columns"
    return row


def integration_row(catalog: Catalog, spec: IntegrationSpec, rules: ReviewRules) -> dict[str, Any]:
    home, currency = developer_home(catalog, spec)
    row = {
        "INTEGRATION_ID": spec.id,
        "DEVELOPER_ID": spec.developer.id,
        "DEVELOPER_SHARE": f"{rules.revenue_share[spec.revenue_share].developer:f}",
        "CURRENCY": currency,
        "MINOR_UNITS": MINOR_UNITS[currency],
        "MONTHLY_MINOR": listed_price(spec, currency),
        "HOME_REGION": home,
    }
    assert tuple(row) == INTEGRATION_TERMS, "integration_row and INTEGRATIONS disagree on the columns"
    return row
