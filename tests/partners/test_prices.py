"""The price book and the ISO 4217 minor-unit table."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from foundation.currencies import MINOR_UNITS, to_minor
from foundation.errors import InputError
from partners.prices import PRICES_FILE, load_prices
from partners.tiers import TIER_NAMES, load_tiers
from regions.catalog import load_catalog


def test_every_catalog_currency_is_priced_for_every_tier() -> None:
    used = frozenset(c.currency for c in load_catalog().countries.values())
    book = load_prices(required_currencies=used)
    for currency in used:
        assert currency in MINOR_UNITS
        for tier in TIER_NAMES:
            assert isinstance(book.rate(tier, currency), Decimal)


def test_reference_currencies_carry_the_tier_table_prices() -> None:
    book, tiers = load_prices(), load_tiers()
    for currency in ("USD", "EUR"):
        for tier in TIER_NAMES:
            assert book.price(tier, currency).per_minute == tiers[tier].per_minute_rate
            assert book.price(tier, currency).base_fee == tiers[tier].base_fee


def test_a_currency_the_catalog_uses_but_the_book_lacks_is_refused() -> None:
    with pytest.raises(InputError, match="no prices for XTS"):
        load_prices(required_currencies=frozenset({"EUR", "XTS"}))


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (
            ('per_minute: "0.02",   base_fee: "299.00"}', 'per_minute: 0.02,   base_fee: "299.00"}'),
            "per_minute",
            "not a float",
        ),
        (('base_fee: "45000"}', 'base_fee: "45000.5"}'), "JPY.starter.base_fee", "minor-unit"),
        (
            ("  USD:\n    starter:", '  USD:\n    bronze: {per_minute: "1", base_fee: "1"}\n    starter:'),
            "USD",
            "unknown tiers",
        ),
        (
            ('{per_minute: "0.017",  base_fee: "259.00"}', '{per_minute: "0.017", base_fee: "259.00", vat: "1"}'),
            "vat",
            "unknown field",
        ),
        (
            ('per_minute: "0.015",  base_fee: "999.00"}', 'per_minute: "-1",  base_fee: "999.00"}'),
            "per_minute",
            "greater than 0",
        ),
        (
            ('per_minute: "0.01",   base_fee: "4999.00"}', 'per_minute: "0.0000001", base_fee: "4999.00"}'),
            "per_minute",
            "decimal",
        ),
        (("  INR:", '  XXX:\n    starter: {per_minute: "1", base_fee: "1"}\n  INR:'), "XXX", "minor-unit table"),
    ],
)
def test_bad_price_books_name_the_field(tmp_path: Path, edit: tuple[str, str], field: str, message: str) -> None:
    text = PRICES_FILE.read_text()
    assert edit[0] in text
    bad = tmp_path / "prices.yaml"
    bad.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(InputError) as caught:
        load_prices(bad)
    assert any(field in p.field and message in p.message for p in caught.value.problems), caught.value.problems


def test_rounding_to_minor_units_is_half_even_once() -> None:
    assert to_minor(Decimal("0.125"), "EUR") == 12
    assert to_minor(Decimal("0.135"), "EUR") == 14
    assert to_minor(Decimal("2.5"), "JPY") == 2
    assert to_minor(Decimal("3.5"), "CLP") == 4
    assert to_minor(Decimal("1.0005"), "KWD") == 1000
