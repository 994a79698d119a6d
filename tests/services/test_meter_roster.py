"""The meter's roster: PARTNERS rows read from the warehouse, handed from the flusher to the HTTP process."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from foundation.warehouse_schema import partner_merge_sql, partner_offboard_sql, partner_rows_json
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
