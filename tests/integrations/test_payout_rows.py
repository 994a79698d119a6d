"""The marketplace's money rows in the plan: each installing partner's INSTALLS row in its home region, the
developer's DEVELOPERS/INTEGRATIONS rows and the other partners' installs in the developer's home region; and the SQL
they carry, run on fakesnow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foundation.warehouse_schema import (
    active_installs_sql,
    developer_merge_statement,
    install_merge_statement,
    install_remove_sql,
    integration_merge_statement,
)
from tests.integrations.test_lifecycle import _approved, _partner_with

EXECUTE = "snowflake:index/execute:Execute"


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Any]:
    from services.warehouse import connect, ensure_schema

    conn = connect(f"local:{tmp_path / 'wh'}")
    ensure_schema(conn)
    yield conn
    conn.close()


def _executes(document: dict[str, Any], stack: str) -> dict[str, dict[str, Any]]:
    steps = document["stacks"][stack]["steps"]
    return {s["urn"].rsplit("::", 1)[1]: s["newState"] for s in steps if s["newState"]["type"] == EXECUTE}


def test_installs_and_developer_rows_are_planned_in_the_right_warehouses(
    cli, repo_copy: Path, tmp_path: Path, warehouse: Any
) -> None:
    _approved(cli, repo_copy)
    cli("integration", "publish", "calsync", "--no-apply", root=repo_copy)
    for partner in ("acme-voice", "sunrise-telecom"):  # eu-central in EUR; us-east in USD
        cli(
            "onboard-partner",
            str(_partner_with(repo_copy, tmp_path, partner, ["calsync"])),
            "--update",
            "--no-apply",
            root=repo_copy,
        )
    plan_file = tmp_path / "plan.json"
    stacks = ["partner-acme-voice", "partner-sunrise-telecom", "integration-calsync"]
    cli("plan", *stacks, "--json", str(plan_file), root=repo_copy)
    document = json.loads(plan_file.read_text())
    assert document["violations"] == []
    eu, us = "PLATFORM_EU_CENTRAL", "PLATFORM_US_EAST"

    acme = _executes(document, "partner-acme-voice")
    row = {
        "INSTALL_ID": "acme-voice/calsync",
        "PARTNER_ID": "acme-voice",
        "INTEGRATION_ID": "calsync",
        "DEVELOPER_ID": "tempo-labs",
        "CURRENCY": "EUR",
        "MINOR_UNITS": 2,
        "MONTHLY_MINOR": 900,
        "DEVELOPER_CURRENCY": "EUR",
        "DEVELOPER_MONTHLY_MINOR": 900,
    }
    assert acme["install-calsync-upsert"]["inputs"]["execute"] == install_merge_statement(eu, [row])
    assert acme["install-calsync-upsert"]["inputs"]["revert"] == "SELECT 1"
    assert acme["install-calsync-remove"]["inputs"]["revert"] == install_remove_sql(eu, "acme-voice/calsync")
    sunrise = _executes(document, "partner-sunrise-telecom")
    usd = row | {
        "INSTALL_ID": "sunrise-telecom/calsync",
        "PARTNER_ID": "sunrise-telecom",
        "CURRENCY": "USD",
        "MONTHLY_MINOR": 1000,
    }
    assert sunrise["install-calsync-upsert"]["inputs"]["execute"] == install_merge_statement(us, [usd])

    # The developer (DE) is paid from eu-central: its rows go there, with sunrise-telecom's install (homed in
    # us-east); acme-voice's row there is its own stack's (one writer per row).
    calsync = _executes(document, "integration-calsync")
    developer = {
        "DEVELOPER_ID": "tempo-labs",
        "LEGAL_NAME": "Tempo Labs GmbH",
        "COUNTRY": "DE",
        "CURRENCY": "EUR",
        "MINOR_UNITS": 2,
        "STRIPE_ACCOUNT": None,
        "HOME_REGION": "eu-central",
    }
    terms = {
        "INTEGRATION_ID": "calsync",
        "DEVELOPER_ID": "tempo-labs",
        "DEVELOPER_SHARE": "0.70",
        "CURRENCY": "EUR",
        "MINOR_UNITS": 2,
        "MONTHLY_MINOR": 900,
        "HOME_REGION": "eu-central",
    }
    assert calsync["terms-developer"]["inputs"]["execute"] == developer_merge_statement(eu, [developer])
    assert calsync["terms-integration"]["inputs"]["execute"] == integration_merge_statement(eu, [terms])
    assert calsync["terms-install-sunrise-telecom-upsert"]["inputs"]["execute"] == install_merge_statement(eu, [usd])
    assert not any("acme-voice" in name for name in calsync)

    # The developer's region's warehouse, as the two stacks leave it: both installs active this month.
    cur = warehouse.cursor()
    db = warehouse.database
    for sql in (
        acme["install-calsync-upsert"]["inputs"]["execute"],
        calsync["terms-developer"]["inputs"]["execute"],
        calsync["terms-integration"]["inputs"]["execute"],
        calsync["terms-install-sunrise-telecom-upsert"]["inputs"]["execute"],
    ):
        cur.execute(sql.replace(eu, db))
    cur.execute(active_installs_sql(db), ("2999-12-31", "2000-01-01"))
    assert [r[0] for r in cur.fetchall()] == ["acme-voice/calsync", "sunrise-telecom/calsync"]

    # Offboarded: its installs leave both stacks (their removal Executes then date the rows removed).
    import yaml

    stack_file = repo_copy / "stacks" / "Pulumi.partner-sunrise-telecom.yaml"
    doc = yaml.safe_load(stack_file.read_text())
    doc["config"]["platform:offboardedOn"] = "2026-11-30"
    stack_file.write_text(yaml.safe_dump(doc))
    cli("plan", "partner-sunrise-telecom", "integration-calsync", "--json", str(plan_file), root=repo_copy)
    document = json.loads(plan_file.read_text())
    assert not [n for n in _executes(document, "partner-sunrise-telecom") if n.startswith("install-")]
    assert not [n for n in _executes(document, "integration-calsync") if "sunrise-telecom" in n]
