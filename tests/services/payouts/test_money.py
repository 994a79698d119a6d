"""Statement arithmetic: one half-even rounding per statement, floor of the share, signed adjustments."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from foundation.errors import InputError
from services.payouts import money


def test_gross_is_the_warehouse_view_rounded_once_half_even(tmp_path: Path) -> None:
    # The one definition (USAGE_BY_PERIOD.GROSS_MINOR): 1003 EUR minutes at 0.015 = 15.045 EUR = 1504.5 cents -> 1504
    # (half to even), where rounding each of 1003 one-minute calls (1.5 cents -> 2) would have given 2006.
    from services import warehouse
    from services.payouts.job import read_usage
    from tests.services.payouts_harness import seed, usage_row

    rows = [usage_row("acme-voice", "2026-10", 1, "0.015", "EUR", "professional") for _ in range(1003)]
    rows += [usage_row("beta-voice", "2026-10", 1001, "0.015", "EUR", "professional")]  # 1501.5 -> 1502
    rows += [usage_row("sakura-calls", "2026-10", 335, "1.5", "JPY", "enterprise")]  # 502.5 yen -> 502
    rows += [usage_row("tokyo-calls", "2026-10", 333, "1.5", "JPY", "enterprise")]  # 499.5 yen -> 500
    seed(tmp_path / "wh", rows)
    conn = warehouse.connect(f"local:{tmp_path / 'wh'}")
    try:
        usage = read_usage(conn, "2026-10")
    finally:
        conn.close()
    gross = {partner: months["2026-10"][0].gross_minor for partner, months in usage.items()}
    assert gross == {"acme-voice": 1504, "beta-voice": 1502, "sakura-calls": 502, "tokyo-calls": 500}
    assert not hasattr(money, "gross_minor")  # no second definition


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


def test_a_period_is_payable_after_its_end_and_the_close_window() -> None:
    import datetime as dt

    def at(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)

    assert dt.timedelta(days=3) >= money.CLOSE_WINDOW
    with pytest.raises(InputError, match="not closed"):
        money.check_payable("2026-12", at("2026-12-06T08:00"))  # the month is still open
    with pytest.raises(InputError, match="not closed"):
        money.check_payable("2027-03", at("2026-12-06T08:00"))  # a future month
    with pytest.raises(InputError, match="2026-12-02 00:00"):
        money.check_payable("2026-11", at("2026-12-01T23:59"))  # ended, inside the close window
    assert money.check_payable("2026-11", at("2026-12-02T00:00")) == "2026-11"
    assert money.latest_payable(at("2026-12-06T08:00")) == "2026-11"
    assert money.latest_payable(at("2026-12-01T06:00")) == "2026-10"
    assert money.latest_payable(at("2026-12-02T06:00")) == "2026-11"  # the CronJob's hour
    assert money.latest_payable(at("2027-01-02T00:00")) == "2026-12"


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
