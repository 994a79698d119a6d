"""Shared set-up of the payouts tests: usage rows in an embedded warehouse, the Stripe fake, gateways."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from foundation.warehouse_schema import USAGE_EVENTS, partner_merge_sql, partner_rows_json
from partners.prices import load_prices
from partners.spec import load_spec
from partners.terms import partner_terms
from partners.tiers import load_tiers
from services import warehouse
from services.payouts.stripe_gateway import StripeGateway
from tests.services.stripe_fake import TEST_KEY, FakeStripe, StripeServer

ROOT = Path(__file__).resolve().parents[2]


def usage_row(partner: str, period: str, minutes: int, rate: str, currency: str, tier: str) -> dict[str, Any]:
    return {
        "EVENT_ID": "CA" + uuid.uuid4().hex,
        "PARTNER_ID": partner,
        "COUNTRY": "DE",
        "CALL_STARTED_AT": f"{period}-15T10:00:00+00:00",
        "PERIOD": period,
        "BILLABLE_SECONDS": minutes * 60,
        "MINUTES": minutes,
        "TIER": tier,
        "CURRENCY": currency,
        "RATE": rate,
        "AMOUNT": str(Decimal(minutes) * Decimal(rate)),
        "RECEIVED_AT": f"{period}-15T10:00:01+00:00",
    }


_template = tempfile.TemporaryDirectory(prefix="payouts-warehouse-")
"""An embedded warehouse with the schema and nothing else, made once per test process (removed at its exit)."""


def connect_with_schema(directory: Path) -> Any:
    """A connection to the embedded warehouse under `directory`, its schema made by `ensure_schema`. A new folder
    starts as a copy of a template made once per process: making the schema compiles each of its statements with
    fakesnow's sqlglot, which every payouts test would otherwise pay; on a copy, ensure_schema finds it current."""
    template = Path(_template.name)
    if not any(template.iterdir()):
        conn = warehouse.connect(f"local:{template}")
        try:
            warehouse.ensure_schema(conn)
        finally:
            conn.close()
    directory = directory.resolve()
    if not directory.exists():
        shutil.copytree(template, directory)
    conn = warehouse.connect(f"local:{directory}")
    warehouse.ensure_schema(conn)
    return conn


def copy_warehouse(source: Path, target: Path) -> Path:
    """`target`: a copy of the closed embedded warehouse under `source` (a module's seeded start, made once and only
    ever copied), for one test to change."""
    shutil.copytree(source.resolve(), target.resolve())
    return target.resolve()


def seed(directory: Path, rows: list[dict[str, Any]]) -> None:
    conn = connect_with_schema(directory)
    try:
        warehouse.merge_rows(conn, USAGE_EVENTS, rows)
    finally:
        conn.close()


def terms_of(spec_path: Path, stripe_account: str | None = None, **changes: Any) -> dict[str, Any]:
    """The PARTNERS row a partner stack upserts for the spec at `spec_path` (changes: columns to override)."""
    row = partner_terms(load_spec(spec_path), load_tiers(), load_prices(), stripe_account)
    row.update(changes)
    return row


def seed_terms(directory: Path, rows: list[dict[str, Any]]) -> None:
    """Upsert terms rows with THE merge (foundation.warehouse_schema.partner_merge_sql), as `up` does."""
    conn = connect_with_schema(directory)
    try:
        conn.cursor().execute(partner_merge_sql(conn.database), (partner_rows_json(rows),))
    finally:
        conn.close()


def stripe_env(fake: FakeStripe) -> dict[str, str]:
    return {"STRIPE_API_KEY": TEST_KEY, "STRIPE_API_BASE": fake.base}


@contextlib.contextmanager
def stripe_for_commands(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    """The loopback Stripe, named to the commands a test runs by the environment variables they read."""
    with StripeServer() as fake:
        for key, value in stripe_env(fake).items():
            monkeypatch.setenv(key, value)
        yield fake


def gateway(fake: FakeStripe) -> StripeGateway:
    gw = StripeGateway.from_env(stripe_env(fake))
    gw.sleep = lambda _: None
    return gw
