"""The tier table."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from foundation.errors import InputError
from partners.tiers import TIERS_FILE, load_tiers


def test_product_plan_figures() -> None:
    tiers = load_tiers()
    assert [tiers[t].base_fee for t in ("starter", "professional", "enterprise")] == [
        Decimal("299"),
        Decimal("999"),
        Decimal("4999"),
    ]
    assert [tiers[t].per_minute_rate for t in ("starter", "professional", "enterprise")] == [
        Decimal("0.02"),
        Decimal("0.015"),
        Decimal("0.01"),
    ]
    assert [tiers[t].revenue_share for t in ("starter", "professional", "enterprise")] == [
        Decimal("0.20"),
        Decimal("0.30"),
        Decimal("0.40"),
    ]
    assert all(isinstance(tiers[t].base_fee, Decimal) for t in ("starter", "professional", "enterprise"))


def test_money_written_as_float_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "tiers.yaml"
    bad.write_text(TIERS_FILE.read_text().replace('base_fee: "299.00"', "base_fee: 299.00", 1))
    with pytest.raises(InputError) as caught:
        load_tiers(bad)
    assert caught.value.problems[0].field == "tiers.starter.base_fee"
    assert "not a float" in caught.value.problems[0].message


def test_quota_grows_with_tier() -> None:
    tiers = load_tiers()
    pods = [tiers[t].quota.pods for t in ("starter", "professional", "enterprise")]
    assert pods == sorted(pods) and len(set(pods)) == 3


def test_monthly_minutes_quota_grows_with_tier() -> None:
    tiers = load_tiers()
    quotas = [tiers[t].monthly_minutes_quota for t in ("starter", "professional", "enterprise")]
    assert quotas == sorted(quotas) and len(set(quotas)) == 3 and quotas[0] > 0
