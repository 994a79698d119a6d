"""The warehouse URL, the schema from the one definition module, idempotent batch writes (fakesnow)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from foundation.currencies import to_minor
from foundation.errors import InputError, PlatformError
from foundation.warehouse_schema import (
    API_REQUESTS,
    INSTALLS,
    PARTNERS,
    TABLES,
    USAGE_EVENTS,
    VIEWS,
    partner_merge_sql,
    partner_rows_json,
)
from services.warehouse import KEY_ENV, LOCAL_DATABASE, connect, ensure_schema, merge_rows, snowflake_params
from tests.conftest import Plan


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[Any]:
    connection = connect(f"local:{tmp_path / 'wh'}")
    ensure_schema(connection)
    yield connection
    connection.close()


def _columns(conn: Any, table: str) -> list[tuple[str, str]]:
    cur = conn.cursor()
    cur.execute(
        "SELECT COLUMN_NAME, DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (table,),
    )
    return cur.fetchall()


def test_ensure_schema_creates_every_table_and_view_and_is_repeatable(conn: Any) -> None:
    ensure_schema(conn)
    for table in TABLES:
        assert [name for name, _ in _columns(conn, table.name)] == [c.name for c in table.columns]
    cur = conn.cursor()
    for view in VIEWS:
        cur.execute(f"SELECT * FROM {LOCAL_DATABASE}.{view.schema}.{view.name}")
        cur.fetchall()


def _statements(conn: Any) -> list[str]:
    """The statements fakesnow is asked to run on `conn` from now on (a list that grows)."""
    seen: list[str] = []
    cursor = conn.cursor

    def recording_cursor(*args: Any, **kwargs: Any) -> Any:
        cur = cursor(*args, **kwargs)
        execute = cur.execute

        def recorded(command: str, *rest: Any, **options: Any) -> Any:
            seen.append(command)
            return execute(command, *rest, **options)

        cur.execute = recorded
        return cur

    conn._conn.cursor = recording_cursor
    return seen


def _current_schema(conn: Any) -> str:
    cur = conn.cursor()
    cur.execute("SELECT CURRENT_SCHEMA()")
    return str(cur.fetchone()[0])


CURRENT_SCHEMA_STATEMENTS = [f"USE SCHEMA {LOCAL_DATABASE}.ANALYTICS"]
"""What ensure_schema runs through fakesnow on a current embedded warehouse: the session's schema, nothing else."""


def _information_schema_columns(conn: Any) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    cur.execute(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, "
        "NUMERIC_SCALE, IS_NULLABLE FROM INFORMATION_SCHEMA.COLUMNS ORDER BY 1, 2, ORDINAL_POSITION"
    )
    return [tuple(row) for row in cur.fetchall()]


def test_ensure_schema_on_a_current_warehouse_skips_the_ddl_and_leaves_the_connection_as_the_ddl_would(
    tmp_path: Path,
) -> None:
    made = connect(f"local:{tmp_path / 'wh'}")
    ensure_schema(made)
    after_ddl = _current_schema(made), _information_schema_columns(made)
    made.close()
    again = connect(f"local:{tmp_path / 'wh'}")
    try:
        statements = _statements(again)
        ensure_schema(again)
        assert statements == CURRENT_SCHEMA_STATEMENTS
        # The same session schema, and the same INFORMATION_SCHEMA (VARCHAR(64) reads 64, as on Snowflake).
        assert (_current_schema(again), _information_schema_columns(again)) == after_ddl
        assert after_ddl[0] == "ANALYTICS"
        assert ("RAW", "USAGE_EVENTS", "EVENT_ID", "TEXT", 64) in [row[:5] for row in after_ddl[1]]
    finally:
        again.close()


def test_a_fakesnow_that_records_text_lengths_otherwise_gets_the_tables_no_op_creates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services import warehouse

    made = connect(f"local:{tmp_path / 'wh'}")
    ensure_schema(made)
    after_ddl = _information_schema_columns(made)
    made.close()
    monkeypatch.setattr(warehouse, "_fakesnow_text_lengths_statement", lambda: None)
    again = connect(f"local:{tmp_path / 'wh'}")
    try:
        statements = _statements(again)
        ensure_schema(again)
        assert statements == [*(table.create_sql(LOCAL_DATABASE) for table in TABLES), *CURRENT_SCHEMA_STATEMENTS]
        assert _information_schema_columns(again) == after_ddl
    finally:
        again.close()


def test_views_made_by_another_translator_are_made_again(conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB keeps fakesnow's translation of a view, not its Snowflake text: an upgraded fakesnow, sqlglot or DuckDB
    may translate it otherwise, so its views are made again."""
    from services import warehouse

    monkeypatch.setattr(warehouse, "_translator", lambda: "fakesnow=99.0 sqlglot=99.0 duckdb=99.0")
    statements = _statements(conn)
    ensure_schema(conn)
    assert sum(s.startswith("CREATE OR REPLACE VIEW") for s in statements) == len(VIEWS)
    statements.clear()
    ensure_schema(conn)
    assert statements == CURRENT_SCHEMA_STATEMENTS


@pytest.mark.parametrize(
    "drift",
    [
        f"DROP VIEW {LOCAL_DATABASE}.ANALYTICS.MRR",
        # Made by an older version: same name, another statement (and so no digest of today's statement).
        f"CREATE OR REPLACE VIEW {LOCAL_DATABASE}.ANALYTICS.MRR AS SELECT 1 AS PARTNER_ID",
        f"ALTER TABLE {LOCAL_DATABASE}.RAW.PARTNERS DROP COLUMN MONTHLY_MINUTES_QUOTA",
        f"DROP TABLE {LOCAL_DATABASE}.RAW.INSTALLS",
    ],
)
def test_ensure_schema_brings_a_drifted_warehouse_back(conn: Any, drift: str) -> None:
    made = {table.name: sorted(_columns(conn, table.name)) for table in (PARTNERS, INSTALLS)}
    mrr_columns = _columns(conn, "MRR")
    conn.cursor().execute(drift)
    statements = _statements(conn)
    ensure_schema(conn)
    assert len(statements) > 1  # the whole DDL ran again
    assert {table: sorted(_columns(conn, table)) for table in made} == made  # a column added back comes last
    assert _columns(conn, "MRR") == mrr_columns
    statements.clear()
    ensure_schema(conn)
    assert statements == CURRENT_SCHEMA_STATEMENTS


def test_a_view_in_a_tables_place_is_not_taken_for_the_table(conn: Any) -> None:
    from snowflake.connector.errors import ProgrammingError

    cur = conn.cursor()
    cur.execute(f"ALTER TABLE {LOCAL_DATABASE}.RAW.INSTALLS RENAME TO INSTALLS_KEPT")
    cur.execute(f"CREATE VIEW {LOCAL_DATABASE}.RAW.INSTALLS AS SELECT * FROM {LOCAL_DATABASE}.RAW.INSTALLS_KEPT")
    with pytest.raises(ProgrammingError, match="view"):  # the DDL ran, and the engine refuses to make the table
        ensure_schema(conn)


def test_component_deploys_the_same_tables_and_views(fleet: Plan) -> None:
    stack = "region-eu-central"
    deployed = {r.inputs["name"]: r.inputs for r in fleet.resources(stack, "snowflake:index/table:Table")}
    assert set(deployed) == {t.name for t in TABLES}
    for table in TABLES:
        assert [(c["name"], c["type"]) for c in deployed[table.name]["columns"]] == [
            (c.name, c.type) for c in table.columns
        ]
    views = {r.inputs["name"]: r.inputs["statement"] for r in fleet.resources(stack, "snowflake:index/view:View")}
    assert views == {v.name: v.statement("PLATFORM_EU_CENTRAL") for v in VIEWS}


def test_merge_is_insert_if_absent(conn: Any) -> None:
    row = {
        "EVENT_ID": "a" * 64,
        "PARTNER_ID": "acme-voice",
        "ROUTE": "voice-calls",
        "STATUS_CLASS": "2xx",
        "REQUESTED_AT": "2026-11-03T10:00:00+00:00",
        "PERIOD": "2026-11",
    }
    assert merge_rows(conn, API_REQUESTS, [row]) == 1
    assert merge_rows(conn, API_REQUESTS, [{**row, "ROUTE": "changed"}, {**row, "EVENT_ID": "b" * 64}]) == 1
    assert merge_rows(conn, API_REQUESTS, []) == 0
    cur = conn.cursor()
    cur.execute(f"SELECT EVENT_ID, ROUTE FROM {API_REQUESTS.fqn(LOCAL_DATABASE)} ORDER BY EVENT_ID")
    assert cur.fetchall() == [("a" * 64, "voice-calls"), ("b" * 64, "voice-calls")]


def test_hostile_strings_are_data_not_sql(conn: Any) -> None:
    row = {c.name: None for c in USAGE_EVENTS.columns} | {
        "EVENT_ID": "CA'; DROP TABLE RAW.USAGE_EVENTS; --",
        "PARTNER_ID": "x\"'\\",
        "COUNTRY": "DE",
        "CALL_STARTED_AT": "2026-11-20T10:00:00+00:00",
        "PERIOD": "2026-11",
        "BILLABLE_SECONDS": 1,
        "MINUTES": 1,
        "TIER": "starter",
        "CURRENCY": "EUR",
        "RATE": "0.02",
        "AMOUNT": "0.02",
        "RECEIVED_AT": "2026-11-20T10:00:01+00:00",
    }
    assert merge_rows(conn, USAGE_EVENTS, [row]) == 1
    cur = conn.cursor()
    cur.execute(f"SELECT EVENT_ID, PARTNER_ID FROM {USAGE_EVENTS.fqn(LOCAL_DATABASE)}")
    assert cur.fetchall() == [(row["EVENT_ID"], row["PARTNER_ID"])]


def test_mrr_rounds_half_to_even_like_the_statements(conn: Any) -> None:
    """One rounding rule for money: the MRR view agrees with foundation.currencies.to_minor on the halves."""
    now = dt.datetime.now(dt.UTC)
    # (partner, currency, minor units, minutes, rate): 10.5 cents, 11.5 cents, 2.5 yen, -> 10, 12, 2 half-even
    # (half away from zero: 11, 12, 3).
    cases = [
        ("half-down-even", "EUR", 2, 7, Decimal("0.015")),
        ("half-up-even", "USD", 2, 23, Decimal("0.005")),
        ("half-yen", "JPY", 0, 1, Decimal("2.5")),
    ]
    roster, usage = [], []
    for partner, currency, units, minutes, rate in cases:
        roster.append(
            {
                "PARTNER_ID": partner,
                "TIER": "starter",
                "CURRENCY": currency,
                "MINOR_UNITS": units,
                "BASE_FEE_MINOR": 1000,
                "RATE": str(rate),
                "REVENUE_SHARE": "0.2",
                "PAYOUT_METHOD": "stripe_connect",
                "STRIPE_ACCOUNT": None,
                "HOME_REGION": "eu-central",
                "OFFBOARDED_ON": None,
                "MONTHLY_MINUTES_QUOTA": 10000,
            }
        )
        usage.append(
            {c.name: None for c in USAGE_EVENTS.columns}
            | {
                "EVENT_ID": f"CA{partner}",
                "PARTNER_ID": partner,
                "COUNTRY": "DE",
                "BILLABLE_SECONDS": minutes * 60,
                "TIER": "starter",
                "RECEIVED_AT": now.isoformat(),
                "CALL_STARTED_AT": now.isoformat(),
                "PERIOD": now.strftime("%Y-%m"),
                "MINUTES": minutes,
                "CURRENCY": currency,
                "RATE": str(rate),
                "AMOUNT": str(minutes * rate),
            }
        )
    conn.cursor().execute(partner_merge_sql(LOCAL_DATABASE), (partner_rows_json(roster),))
    merge_rows(conn, USAGE_EVENTS, usage)
    cur = conn.cursor()
    cur.execute(f"SELECT CURRENCY, MRR_MINOR FROM {LOCAL_DATABASE}.ANALYTICS.MRR")
    mrr = {currency: int(value) for currency, value in cur.fetchall()}
    expected = {currency: 1000 + to_minor(minutes * rate, currency) for _, currency, _, minutes, rate in cases}
    assert mrr == expected == {"EUR": 1010, "USD": 1012, "JPY": 1002}


def test_a_second_process_cannot_open_a_warehouse_in_use(conn: Any, tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="in use"):
        connect(f"local:{tmp_path / 'wh'}")


@pytest.mark.parametrize("url", ["postgres://x/y", "local:", "snowflake://", "", "LOCAL:x"])
def test_unknown_urls_are_input_errors(url: str) -> None:
    with pytest.raises(InputError):
        connect(url)


def _pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_snowflake_url_uses_key_pair_auth_from_the_environment() -> None:
    params = snowflake_params(
        "snowflake://VOICEPLATFORM-EU_CENTRAL/PLATFORM_EU_CENTRAL?user=METER&role=PLATFORM_EU_CENTRAL_LOADER&warehouse=W",
        {KEY_ENV: _pem()},
    )
    assert params["account"] == "VOICEPLATFORM-EU_CENTRAL"
    assert params["database"] == "PLATFORM_EU_CENTRAL"
    assert params["role"] == "PLATFORM_EU_CENTRAL_LOADER"
    assert isinstance(params["private_key"], bytes) and "password" not in params


@pytest.mark.parametrize(
    ("url", "env", "message"),
    [
        ("snowflake://A/DB?user=U&role=R&warehouse=W", {}, "not set"),
        ("snowflake://A/DB?user=U&role=R&warehouse=W", {KEY_ENV: "-----BEGIN secret-----"}, "not a PEM"),
        ("snowflake://u:p@A/DB?user=U&role=R&warehouse=W", {}, "no credentials"),
        ("snowflake://A/DB;DROP?user=U&role=R&warehouse=W", {}, "identifier"),
        ("snowflake://A/DB?user=U&role=R", {}, "required"),
        ("snowflake://A/DB?user=U&role=R&warehouse=W&password=x", {}, "unknown URL parameters"),
    ],
)
def test_bad_snowflake_urls(url: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(InputError) as caught:
        snowflake_params(url, env)
    assert message in str(caught.value)
    assert "secret" not in str(caught.value)


def test_a_process_that_opened_the_embedded_warehouse_leaves_nothing_in_the_temporary_folder(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    temporary = tmp_path / "tmp"
    temporary.mkdir()
    script = (
        "import sys; from services import warehouse; c = warehouse.connect('local:' + sys.argv[1]); "
        "warehouse.ensure_schema(c); c.close()"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "wh")],
        env={**os.environ, "TMPDIR": str(temporary)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert list(temporary.iterdir()) == []  # fakesnow's stage folder (fakesnow_bucket_*) went with the process
