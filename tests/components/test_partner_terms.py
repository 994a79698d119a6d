"""PartnerTermsRow (each partner stack's PARTNERS row) under the SDK's mocks; its planned SQL run on fakesnow."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from foundation.warehouse_schema import PARTNER_TERMS, partner_merge_statement, partner_offboard_sql
from foundation.yamlio import dump_yaml, load_yaml_file
from tests.conftest import ROOT, Plan

EXECUTE = "snowflake:index/execute:Execute"
STACK = "partner-acme-voice"


def _executes(plan: Plan, stack: str = STACK) -> tuple[Any, Any]:
    parent = plan.one(stack, "platform:partner_terms:PartnerTermsRow", "terms")
    parts = {r.name: r for r in plan.resources(stack, EXECUTE) if r.parent == parent.urn}
    assert set(parts) == {"terms-upsert", "terms-offboard"}
    return parts["terms-upsert"], parts["terms-offboard"]


def _plan_partner(fleet: Plan, root: Path) -> Plan:
    """Plan the partner stack in `root` (a copy with the partner's stack file or spec edited), reading `global` and
    its home region from the session's fleet rather than planning them again: neither reads a partner's stack file
    or spec (a stack's plan depends on the program, its own config and spec and the stacks it reads: the inputs of
    its cache key, platformctl/offline/keys.py), so both plan the same in `root`. Read-only: the planner takes
    their outputs (`known`) and changes nothing in them."""
    from fleet.repo import Repo
    from foundation.stacks import parse_stack_name
    from platformctl.offline.planner import plan_stacks

    known = {name: fleet.plans[name].recording for name in ("global", "region-eu-central")}
    return Plan(plan_stacks(Repo(root), [parse_stack_name(STACK)], known=known))


def _terms(partner_id: str, root: Path = ROOT, **overrides: Any) -> dict[str, Any]:
    from fleet.repo import Repo
    from partners.terms import partner_terms

    repo = Repo(root)
    return partner_terms(repo.spec(partner_id), repo.tiers(), repo.prices(), **overrides)


def test_every_partner_upserts_its_terms_in_its_home_regions_warehouse(fleet: Plan) -> None:
    from fleet.repo import Repo

    partners = [s for s in fleet.plans if s.startswith("partner-")]
    assert partners
    for stack in partners:
        partner_id = stack.removeprefix("partner-")
        home = Repo(ROOT).spec(partner_id).home_region
        database = fleet.outputs(f"region-{home}")["snowflake_database"]
        upsert, offboard = _executes(fleet, stack)
        assert upsert.inputs["execute"] == partner_merge_statement(database, [_terms(partner_id)])
        assert upsert.inputs["revert"] == "SELECT 1"  # a replaced upsert (terms changed) leaves the row alone
        # A destroy marks the row offboarded (never deletes it), and runs before the upsert's no-op revert.
        assert offboard.inputs["revert"] == partner_offboard_sql(database, partner_id)
        assert offboard.inputs["execute"] == "SELECT 1"
        assert upsert.urn in offboard.dependencies
        # Both on the home region's account, as its admin, with a warehouse to run DML on.
        provider = fleet.one(stack, "pulumi:providers:snowflake", "snowflake-terms")
        assert upsert.provider.startswith(provider.urn) and offboard.provider.startswith(provider.urn)
        assert provider.inputs["accountName"] == fleet.outputs(f"region-{home}")["snowflake_account"]
        assert provider.inputs["warehouse"] == fleet.outputs(f"region-{home}")["snowflake_partner_warehouse"]
        assert provider.inputs["role"] == "ACCOUNTADMIN" and provider.inputs["privateKey"] == "[secret]"
        assert "previewFeaturesEnabled" not in provider.inputs  # Execute is not a preview feature


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Any]:
    """fakesnow with the region's schema (the same definitions the SnowflakeWarehouse component deploys)."""
    from fakesnow.instance import FakeSnow

    from services.warehouse import ensure_schema

    warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)
    (tmp_path / "wh").mkdir()
    instance = FakeSnow(db_path=tmp_path / "wh")
    conn = instance.connect(database="PLATFORM_EU_CENTRAL")
    ensure_schema(conn)
    yield conn
    conn.close()
    instance.duck_conn.close()


def _row(conn: Any, partner_id: str) -> dict[str, Any]:
    cur = conn.cursor()
    cur.execute("SELECT * FROM PLATFORM_EU_CENTRAL.RAW.PARTNERS WHERE PARTNER_ID = %s", (partner_id,))
    rows = cur.fetchall()
    assert len(rows) == 1
    return dict(zip([d[0] for d in cur.description], rows[0], strict=True))


def _set_config(root: Path, stack: str, values: dict[str, object]) -> None:
    path = root / "stacks" / f"Pulumi.{stack}.yaml"
    doc = load_yaml_file(path, path.name)
    doc["config"].update(values)
    path.write_text(dump_yaml(doc))


def test_the_planned_sql_upserts_updates_and_offboards_the_row(warehouse: Any, repo_copy: Path, fleet: Plan) -> None:
    cur = warehouse.cursor()
    upsert, offboard = _executes(fleet)
    cur.execute(upsert.inputs["execute"])
    row = _row(warehouse, "acme-voice")
    assert row["TIER"] == "professional" and row["CURRENCY"] == "EUR" and row["MINOR_UNITS"] == 2
    assert row["BASE_FEE_MINOR"] == 99900 and row["RATE"] == Decimal("0.015")
    assert row["REVENUE_SHARE"] == Decimal("0.30") and row["STRIPE_ACCOUNT"] is None
    assert row["HOME_REGION"] == "eu-central" and row["OFFBOARDED_ON"] is None
    onboarded = row["ONBOARDED_ON"]
    assert isinstance(onboarded, dt.date)
    cur.execute(upsert.inputs["execute"])  # every `up` runs it again: still one row
    assert _row(warehouse, "acme-voice")["ONBOARDED_ON"] == onboarded

    # `platformctl billing connect` records the account: the next plan's upsert carries it and updates the row.
    _set_config(repo_copy, STACK, {"platform:stripeAccount": "acct_1QxYz2AbCdEf"})
    changed, same_offboard = _executes(_plan_partner(fleet, repo_copy))
    assert changed.inputs["execute"] != upsert.inputs["execute"]
    assert same_offboard.inputs == offboard.inputs  # not replaced: a change of terms never offboards
    cur.execute(changed.inputs["execute"])
    assert _row(warehouse, "acme-voice")["STRIPE_ACCOUNT"] == "acct_1QxYz2AbCdEf"

    # A replaced upsert's revert changes nothing; a destroy's offboard revert keeps the row, dated.
    cur.execute(upsert.inputs["revert"])
    assert _row(warehouse, "acme-voice")["OFFBOARDED_ON"] is None
    cur.execute(offboard.inputs["revert"])
    row = _row(warehouse, "acme-voice")
    assert row["OFFBOARDED_ON"] == dt.date.today() and row["ONBOARDED_ON"] == onboarded
    cur.execute(offboard.inputs["revert"])  # a second destroy does not move the date
    assert _row(warehouse, "acme-voice")["OFFBOARDED_ON"] == dt.date.today()


def test_an_offboarded_partners_stack_keeps_the_row_with_its_date(repo_copy: Path, fleet: Plan, warehouse: Any) -> None:
    _set_config(repo_copy, STACK, {"platform:offboardedOn": "2026-11-30"})
    upsert, _ = _executes(_plan_partner(fleet, repo_copy))
    assert upsert.inputs["execute"] == partner_merge_statement(
        "PLATFORM_EU_CENTRAL", [_terms("acme-voice", repo_copy, offboarded_on=dt.date(2026, 11, 30))]
    )
    warehouse.cursor().execute(upsert.inputs["execute"])
    assert _row(warehouse, "acme-voice")["OFFBOARDED_ON"] == dt.date(2026, 11, 30)


def test_a_hostile_company_name_never_reaches_the_sql(repo_copy: Path, fleet: Plan, warehouse: Any) -> None:
    spec = repo_copy / "partners" / "acme-voice.yaml"
    hostile = "Acme'); DROP TABLE PLATFORM_EU_CENTRAL.RAW.PARTNERS; -- \\' \""
    spec.write_text(spec.read_text().replace("company_name: Acme Voice GmbH", f"company_name: {json.dumps(hostile)}"))
    from fleet.repo import Repo

    assert Repo(repo_copy).spec("acme-voice").company_name == hostile
    upsert, offboard = _executes(_plan_partner(fleet, repo_copy))
    assert "DROP" not in upsert.inputs["execute"] + offboard.inputs["revert"]
    # The row holds only values that cannot carry a quote (ids, codes, decimals); its columns are the terms'.
    assert set(_terms("acme-voice", repo_copy)) == set(PARTNER_TERMS)
    warehouse.cursor().execute(upsert.inputs["execute"])
    assert _row(warehouse, "acme-voice")["TIER"] == "professional"


@pytest.mark.parametrize(
    "account", ["acct_x'); DROP TABLE PARTNERS; --", "acct_", "sk_live_abc", "acct_a b", "ACCT_abc", "acct_" + "a" * 65]
)
def test_a_bad_stripe_account_is_refused_naming_the_file_and_key(repo_copy: Path, fleet: Plan, account: str) -> None:
    from foundation.errors import InputError

    _set_config(repo_copy, STACK, {"platform:stripeAccount": account})
    with pytest.raises(InputError) as err:
        _plan_partner(fleet, repo_copy)
    message = str(err.value)
    assert "stacks/Pulumi.partner-acme-voice.yaml" in message and "platform:stripeAccount" in message
    assert "DROP" not in message
