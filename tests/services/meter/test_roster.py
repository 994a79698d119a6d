"""The meter's roster: PARTNERS rows read from the warehouse, handed from the flusher to the HTTP process."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from foundation.warehouse_schema import PARTNERS, partner_merge_sql, partner_offboard_sql, partner_rows_json
from services.meter.roster import (
    UNKNOWN_PARTNER_REFRESH_SECONDS,
    Partner,
    RosterFeed,
    load_roster,
    read_roster,
    roster_path,
    write_roster,
)
from services.warehouse import LOCAL_DATABASE, connect, ensure_schema


def terms(partner: str, region: str = "eu-central", **over: Any) -> dict[str, Any]:
    row = {
        "PARTNER_ID": partner,
        "TIER": "starter",
        "CURRENCY": "EUR",
        "MINOR_UNITS": 2,
        "BASE_FEE_MINOR": 4900,
        "RATE": "0.0125",
        "REVENUE_SHARE": "0.2",
        "PAYOUT_METHOD": "stripe_connect",
        "STRIPE_ACCOUNT": None,
        "HOME_REGION": region,
        "OFFBOARDED_ON": None,
        "MONTHLY_MINUTES_QUOTA": 10000,
    }
    return row | over


@pytest.fixture
def conn(tmp_path: Path) -> Any:
    connection = connect(f"local:{tmp_path / 'wh'}")
    ensure_schema(connection)
    yield connection
    connection.close()


def upsert(conn: Any, *rows: dict[str, Any]) -> None:
    conn.cursor().execute(partner_merge_sql(LOCAL_DATABASE), (partner_rows_json(list(rows)),))


def test_the_roster_is_the_regions_active_rows_at_their_terms(conn: Any) -> None:
    upsert(
        conn,
        terms("alpha-voice"),
        terms("beta-voice", TIER="enterprise", CURRENCY="JPY", MINOR_UNITS=0, RATE="1.5", BASE_FEE_MINOR=50000),
        terms("tokyo-voice", region="ap-tokyo"),
        terms("gone-voice"),
    )
    conn.cursor().execute(partner_offboard_sql(LOCAL_DATABASE, "gone-voice"))
    roster = read_roster(conn, "eu-central")
    assert roster == {
        "alpha-voice": Partner("alpha-voice", "starter", "EUR", Decimal("0.0125"), 4900, 10000),
        "beta-voice": Partner("beta-voice", "enterprise", "JPY", Decimal("1.5"), 50000, 10000),
    }
    assert set(read_roster(conn, None)) == {"alpha-voice", "beta-voice", "tokyo-voice"}
    # A re-tiered partner is metered at its new rate from the next read.
    upsert(conn, terms("alpha-voice", TIER="professional", RATE="0.015"))
    assert read_roster(conn, "eu-central")["alpha-voice"].rate == Decimal("0.015")


def test_the_quota_comes_from_partners_and_a_row_without_one_has_none(conn: Any) -> None:
    upsert(conn, terms("alpha-voice", MONTHLY_MINUTES_QUOTA=250), terms("beta-voice", MONTHLY_MINUTES_QUOTA=None))
    roster = read_roster(conn, "eu-central")
    assert (roster["alpha-voice"].minutes_quota, roster["beta-voice"].minutes_quota) == (250, None)


def test_a_row_the_meter_cannot_price_is_left_out(conn: Any) -> None:
    upsert(conn, terms("alpha-voice"), terms("odd-voice", CURRENCY="XTS"))
    assert set(read_roster(conn, "eu-central")) == {"alpha-voice"}


def test_the_handover_file_round_trips_and_a_broken_one_is_no_roster(tmp_path: Path) -> None:
    path = roster_path(tmp_path / "spool.db")
    assert load_roster(path) is None
    roster = {"alpha-voice": Partner("alpha-voice", "starter", "EUR", Decimal("0.0125"), 4900, 10000)}
    write_roster(path, roster)
    assert load_roster(path) == roster
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file left behind"
    path.write_text("{not json")
    assert load_roster(path) is None


class _Value:
    def __init__(self) -> None:
        self.value = 0


def test_unknown_partner_requests_are_rate_limited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("services.meter.roster.time.monotonic", lambda: clock[0])
    wanted = threading.Event()
    feed = RosterFeed(roster_path(tmp_path / "spool.db"), _Value(), wanted)
    assert feed.request() and wanted.is_set()
    wanted.clear()
    clock[0] += UNKNOWN_PARTNER_REFRESH_SECONDS / 2
    assert not feed.request() and not wanted.is_set()
    clock[0] += UNKNOWN_PARTNER_REFRESH_SECONDS
    assert feed.request()


def test_a_currency_change_waits_for_the_next_month_then_takes_effect(conn: Any) -> None:
    this_month = f"{dt.datetime.now(dt.UTC):%Y-%m}"
    following = f"{dt.datetime.now(dt.UTC) + dt.timedelta(days=32 - dt.datetime.now(dt.UTC).day):%Y-%m}"
    upsert(conn, terms("alpha-voice"))
    upsert(conn, terms("alpha-voice", CURRENCY="USD", RATE="0.014", BASE_FEE_MINOR=5200, MONTHLY_MINUTES_QUOTA=99))
    alpha = read_roster(conn, "eu-central")["alpha-voice"]
    # This month stays EUR at the EUR price; the quota (not a price) changes at once.
    assert (alpha.currency, alpha.rate, alpha.base_fee_minor, alpha.minutes_quota) == (
        "EUR",
        Decimal("0.0125"),
        4900,
        99,
    )
    assert alpha.pending == ("USD", Decimal("0.014"), 5200, following)
    assert alpha.for_period(this_month) is alpha
    assert (alpha.for_period(following).currency, alpha.for_period(following).rate) == ("USD", Decimal("0.014"))
    assert load_roster_round_trip(alpha) == alpha
    upsert(conn, terms("alpha-voice", CURRENCY="USD", RATE="0.014", BASE_FEE_MINOR=5200))  # again: still pending
    assert read_roster(conn, "eu-central")["alpha-voice"].pending == ("USD", Decimal("0.014"), 5200, following)
    upsert(conn, terms("alpha-voice"))  # changed back before it took effect: nothing pending
    assert read_roster(conn, "eu-central")["alpha-voice"].pending is None
    upsert(conn, terms("alpha-voice", CURRENCY="USD", RATE="0.014", BASE_FEE_MINOR=5200))
    conn.cursor().execute(f"UPDATE {PARTNERS.fqn(LOCAL_DATABASE)} SET PENDING_FROM = %s", (this_month,))  # time passes
    assert read_roster(conn, "eu-central")["alpha-voice"].for_period(this_month).currency == "USD"
    upsert(conn, terms("alpha-voice", CURRENCY="USD", RATE="0.014", BASE_FEE_MINOR=5200))  # its month has come
    row = (
        conn.cursor()
        .execute(
            f"SELECT CURRENCY, MINOR_UNITS, BASE_FEE_MINOR, TO_VARCHAR(RATE), PENDING_CURRENCY, PENDING_FROM "
            f"FROM {PARTNERS.fqn(LOCAL_DATABASE)}"
        )
        .fetchall()
    )
    assert [tuple(str(v) if v is not None else None for v in r) for r in row] == [
        ("USD", "2", "5200", "0.014000", None, None)
    ]


def load_roster_round_trip(partner: Partner) -> Partner:
    return Partner.from_json(partner.as_json())


def test_a_warehouse_made_before_pending_terms_gets_them_from_ensure_schema(tmp_path: Path) -> None:
    from dataclasses import replace

    old = replace(PARTNERS, columns=tuple(c for c in PARTNERS.columns if not c.name.startswith("PENDING_")))
    connection = connect(f"local:{tmp_path / 'wh'}")
    try:
        connection.cursor().execute(f"CREATE SCHEMA IF NOT EXISTS {LOCAL_DATABASE}.RAW")
        connection.cursor().execute(old.create_sql(LOCAL_DATABASE))  # the table as an older version made it
        row = terms("alpha-voice")
        names, marks = ", ".join([*row, "ONBOARDED_ON"]), ", ".join(["%s"] * len(row))
        connection.cursor().execute(
            f"INSERT INTO {PARTNERS.fqn(LOCAL_DATABASE)} ({names}) VALUES ({marks}, CURRENT_DATE())",
            tuple(row.values()),
        )
        ensure_schema(connection)
        upsert(connection, terms("alpha-voice", CURRENCY="USD", RATE="0.014"))
        alpha = read_roster(connection, "eu-central")["alpha-voice"]
        assert (alpha.currency, alpha.pending and alpha.pending[0]) == ("EUR", "USD")
    finally:
        connection.close()
