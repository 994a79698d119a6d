"""Statement arithmetic: one half-even rounding per statement, floor of the share, signed adjustments."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from foundation.errors import InputError
from services.payouts import money


def test_gross_rounds_once_half_even_not_per_call() -> None:
    # 1003 EUR minutes at 0.015 = 15.045 EUR = 1504.5 cents -> 1504 (half to even), where rounding each of
    # 1003 one-minute calls (1.5 cents -> 2) would have given 2006.
    assert money.gross_minor([(1003, Decimal("0.015"))], "EUR") == 1504
    assert money.gross_minor([(1, Decimal("0.015"))] * 1003, "EUR") == 1504
    assert money.gross_minor([(1001, Decimal("0.015"))], "EUR") == 1502  # 1501.5 -> 1502
    assert money.gross_minor([(335, Decimal("1.5"))], "JPY") == 502  # 502.5 yen -> 502
    assert money.gross_minor([(333, Decimal("1.5"))], "JPY") == 500  # 499.5 yen -> 500


def test_payout_is_floored_the_platform_never_overpays() -> None:
    assert money.payout_minor(1504, Decimal("0.30")) == 451  # 451.2
    assert money.payout_minor(502, Decimal("0.40")) == 200  # 200.8
    assert money.payout_minor(13574, Decimal("0.20")) == 2714  # 2714.8
    assert money.payout_minor(0, Decimal("0.40")) == 0
    with pytest.raises(ValueError):
        money.payout_minor(100, Decimal("1.5"))


def test_adjustments_are_signed_lines() -> None:
    lines = [
        money.Adjustment(kind="credit", amount_minor=120, reason="CN-1"),
        money.Adjustment(kind="correction", amount_minor=-20, reason="T-9"),
    ]
    assert money.due_minor(451, lines) == 551


def test_minimums_per_currency() -> None:
    assert money.below_minimum(49, "EUR") is not None
    assert money.below_minimum(50, "EUR") is None
    assert money.below_minimum(49, "JPY") is not None
    assert money.below_minimum(0, "USD") is not None
    assert "no minimum" in (money.below_minimum(10_000, "CLP") or "")


def test_periods() -> None:
    assert money.previous_period("2026-01") == "2025-12"
    assert money.next_period("2026-12") == "2027-01"
    for bad in ("2026-13", "2026-1", "26-01", "2026-01-01", "../x", ""):
        with pytest.raises(InputError):
            money.check_period(bad)


@pytest.mark.parametrize("bad", ["2026-11\n", "\uff12\uff10\uff12\uff16-11", "\u0662\u0660\u0662\u0666-11", "0000-01"])
def test_a_month_has_one_spelling(bad: str) -> None:
    # The period is the transfer's idempotency key and transfer_group: a second spelling of one month (a trailing
    # newline, non-ASCII digits) would be a second key, a second statement path and a second carry of the same debt.
    with pytest.raises(InputError):
        money.check_period(bad)


LINE = {"partner": "acme-voice", "currency": "EUR", "kind": "credit", "amount_minor": 5, "reason": "CN-1"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount_minor": 1.5}, "amount_minor"),
        ({"amount_minor": "5"}, "amount_minor"),
        ({"partner": "../etc"}, "partner"),
        ({"y": 1}, "y"),
        ({"kind": "gift"}, "kind"),
        ({"reason": "a\nb"}, "reason"),
        ({"period": "2026-09"}, "period"),
    ],
)
def test_bad_adjustments_files_name_the_field(tmp_path: Path, change: dict[str, object], field: str) -> None:
    import yaml

    period = change.pop("period", "2026-10")
    path = tmp_path / "adj.yaml"
    path.write_text(yaml.safe_dump({"period": period, "adjustments": [{**LINE, **change}]}))
    with pytest.raises(InputError) as caught:
        money.load_adjustments(path, "2026-10")
    assert field in str(caught.value.problems)


def test_a_good_adjustments_file(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "adj.yaml"
    path.write_text(yaml.safe_dump({"period": "2026-10", "adjustments": [LINE, {**LINE, "amount_minor": -7}]}))
    assert [line.amount_minor for line in money.load_adjustments(path, "2026-10")] == [5, -7]
