"""The marketplace's terms tables and their one merge each, run on fakesnow (the engine the tests share)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foundation.naming import install_id
from foundation.warehouse_schema import (
    DEVELOPERS,
    INSTALL_TERMS,
    INSTALLS,
    INTEGRATIONS,
    active_installs_sql,
    developer_merge_statement,
    install_merge_sql,
    install_merge_statement,
    install_remove_sql,
    integration_merge_statement,
    rows_json,
)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[Any]:
    from services.warehouse import connect, ensure_schema

    connection = connect(f"local:{tmp_path / 'wh'}")
    ensure_schema(connection)
    yield connection
    connection.close()


def _install(partner: str = "acme-voice", integration: str = "calsync", **over: Any) -> dict[str, Any]:
    row = {
        "INSTALL_ID": install_id(partner, integration),
        "PARTNER_ID": partner,
        "INTEGRATION_ID": integration,
        "DEVELOPER_ID": "tempo-labs",
        "CURRENCY": "EUR",
        "MINOR_UNITS": 2,
        "MONTHLY_MINOR": 900,
        "DEVELOPER_CURRENCY": "EUR",
        "DEVELOPER_MONTHLY_MINOR": 900,
    }
    return row | over


def _rows(conn: Any, sql: str, *params: Any) -> list[dict[str, Any]]:
    cur = conn.cursor()
    cur.execute(sql, params or None)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _set_date(conn: Any, column: str, day: str) -> None:
    conn.cursor().execute(f"UPDATE {INSTALLS.fqn(conn.database)} SET {column} = '{day}'")


def test_an_install_is_dated_once_keeps_its_price_and_is_removed_never_deleted(conn: Any) -> None:
    db = conn.database
    conn.cursor().execute(install_merge_statement(db, [_install()]))
    (row,) = _rows(conn, f"SELECT * FROM {INSTALLS.fqn(db)}")
    assert row["INSTALLED_ON"] == dt.datetime.now(dt.UTC).date() and row["REMOVED_ON"] is None
    _set_date(conn, "INSTALLED_ON", "2026-10-15")
    # The listed price changes: the install keeps the price it was installed at.
    conn.cursor().execute(install_merge_sql(db), (rows_json(INSTALLS, INSTALL_TERMS, [_install(MONTHLY_MINOR=1200)]),))
    (row,) = _rows(conn, f"SELECT * FROM {INSTALLS.fqn(db)}")
    assert (row["MONTHLY_MINOR"], row["INSTALLED_ON"]) == (900, dt.date(2026, 10, 15))
    conn.cursor().execute(install_remove_sql(db, "acme-voice/calsync"))
    conn.cursor().execute(install_remove_sql(db, "acme-voice/calsync"))  # again: the first date stays
    (row,) = _rows(conn, f"SELECT * FROM {INSTALLS.fqn(db)}")
    assert row["REMOVED_ON"] is not None
    _set_date(conn, "REMOVED_ON", "2026-11-03")
    # Active in a period: installed by its last day, not removed before its first day.
    sql = active_installs_sql(db)
    assert [r["INSTALL_ID"] for r in _rows(conn, sql, "2026-10-31", "2026-10-01")] == ["acme-voice/calsync"]
    assert [r["INSTALL_ID"] for r in _rows(conn, sql, "2026-11-30", "2026-11-01")] == ["acme-voice/calsync"]
    assert _rows(conn, sql, "2026-12-31", "2026-12-01") == []
    assert _rows(conn, sql, "2026-09-30", "2026-09-01") == []
    # A re-install is dated and priced anew.
    conn.cursor().execute(install_merge_statement(db, [_install(MONTHLY_MINOR=1200)]))
    (row,) = _rows(conn, f"SELECT * FROM {INSTALLS.fqn(db)}")
    assert row["REMOVED_ON"] is None and row["MONTHLY_MINOR"] == 1200
    assert row["INSTALLED_ON"] == dt.datetime.now(dt.UTC).date()


def test_a_currency_change_reprices_the_install(conn: Any) -> None:
    db = conn.database
    conn.cursor().execute(install_merge_statement(db, [_install()]))
    conn.cursor().execute(install_merge_statement(db, [_install(CURRENCY="USD", MONTHLY_MINOR=1000)]))
    (row,) = _rows(conn, f"SELECT CURRENCY, MONTHLY_MINOR FROM {INSTALLS.fqn(db)}")
    assert row == {"CURRENCY": "USD", "MONTHLY_MINOR": 1000}


def test_the_developers_price_is_kept_from_install_like_the_partners(conn: Any) -> None:
    db = conn.database
    developer = f"SELECT DEVELOPER_CURRENCY, DEVELOPER_MONTHLY_MINOR FROM {INSTALLS.fqn(db)}"
    conn.cursor().execute(install_merge_statement(db, [_install()]))
    # The listed price is raised: the install keeps what the developer earns on, as it keeps what the partner pays.
    raised = _install(MONTHLY_MINOR=3000, DEVELOPER_MONTHLY_MINOR=3000)
    conn.cursor().execute(install_merge_statement(db, [raised]))
    assert _rows(conn, developer) == [{"DEVELOPER_CURRENCY": "EUR", "DEVELOPER_MONTHLY_MINOR": 900}]
    # The partner's currency changes: both prices are fixed anew, at the same moment.
    conn.cursor().execute(install_merge_statement(db, [raised | {"CURRENCY": "USD"}]))
    assert _rows(conn, developer) == [{"DEVELOPER_CURRENCY": "EUR", "DEVELOPER_MONTHLY_MINOR": 3000}]
    # Removed and installed again at a lower price: priced anew.
    conn.cursor().execute(install_remove_sql(db, "acme-voice/calsync"))
    conn.cursor().execute(install_merge_statement(db, [raised | {"CURRENCY": "USD", "DEVELOPER_MONTHLY_MINOR": 500}]))
    assert _rows(conn, developer) == [{"DEVELOPER_CURRENCY": "EUR", "DEVELOPER_MONTHLY_MINOR": 500}]


def test_a_row_written_before_the_developers_price_existed_takes_it_at_its_next_upsert(conn: Any) -> None:
    db = conn.database
    conn.cursor().execute(install_merge_statement(db, [_install()]))
    conn.cursor().execute(f"UPDATE {INSTALLS.fqn(db)} SET DEVELOPER_CURRENCY = NULL, DEVELOPER_MONTHLY_MINOR = NULL")
    _set_date(conn, "INSTALLED_ON", "2026-10-15")
    conn.cursor().execute(install_merge_statement(db, [_install(MONTHLY_MINOR=1200, DEVELOPER_MONTHLY_MINOR=1200)]))
    (row,) = _rows(conn, f"SELECT * FROM {INSTALLS.fqn(db)}")
    # The developer's price is filled (then kept); the partner's price and the install date are untouched.
    assert (row["DEVELOPER_CURRENCY"], row["DEVELOPER_MONTHLY_MINOR"]) == ("EUR", 1200)
    assert (row["MONTHLY_MINOR"], row["INSTALLED_ON"]) == (900, dt.date(2026, 10, 15))
    conn.cursor().execute(install_merge_statement(db, [_install(DEVELOPER_MONTHLY_MINOR=3000)]))
    (row,) = _rows(conn, f"SELECT DEVELOPER_MONTHLY_MINOR FROM {INSTALLS.fqn(db)}")
    assert row == {"DEVELOPER_MONTHLY_MINOR": 1200}


def test_developer_and_integration_rows_upsert_and_keep_a_recorded_account(conn: Any) -> None:
    db = conn.database
    developer = {
        "DEVELOPER_ID": "tempo-labs",
        "LEGAL_NAME": "Tempo Labs GmbH",
        "COUNTRY": "DE",
        "CURRENCY": "EUR",
        "MINOR_UNITS": 2,
        "STRIPE_ACCOUNT": "acct_1",
        "HOME_REGION": "eu-central",
    }
    conn.cursor().execute(developer_merge_statement(db, [developer]))
    conn.cursor().execute(developer_merge_statement(db, [developer | {"STRIPE_ACCOUNT": None, "LEGAL_NAME": "T L"}]))
    (row,) = _rows(conn, f"SELECT * FROM {DEVELOPERS.fqn(db)}")
    assert (row["STRIPE_ACCOUNT"], row["LEGAL_NAME"]) == ("acct_1", "T L")
    terms = {
        "INTEGRATION_ID": "calsync",
        "DEVELOPER_ID": "tempo-labs",
        "DEVELOPER_SHARE": "0.7000",
        "CURRENCY": "EUR",
        "MINOR_UNITS": 2,
        "MONTHLY_MINOR": 900,
        "HOME_REGION": "eu-central",
    }
    conn.cursor().execute(integration_merge_statement(db, [terms]))
    conn.cursor().execute(integration_merge_statement(db, [terms | {"MONTHLY_MINOR": 950}]))
    (row,) = _rows(conn, f"SELECT MONTHLY_MINOR, CAST(DEVELOPER_SHARE AS VARCHAR) AS S FROM {INTEGRATIONS.fqn(db)}")
    assert row["MONTHLY_MINOR"] == 950 and row["S"].startswith("0.7")


def test_a_row_with_other_columns_is_refused_and_a_hostile_value_stays_a_value(conn: Any) -> None:
    with pytest.raises(ValueError, match="INSTALLS row has the columns"):
        rows_json(INSTALLS, INSTALL_TERMS, [_install() | {"EXTRA": 1}])
    hostile = "x'); DROP TABLE RAW.INSTALLS; -- \\' \""
    conn.cursor().execute(install_merge_statement(conn.database, [_install(DEVELOPER_ID=hostile)]))
    conn.cursor().execute(install_remove_sql(conn.database, "a'b); DROP TABLE RAW.INSTALLS; --"))
    (row,) = _rows(conn, f"SELECT DEVELOPER_ID, REMOVED_ON FROM {INSTALLS.fqn(conn.database)}")
    assert row == {"DEVELOPER_ID": hostile, "REMOVED_ON": None}
