"""`platformctl warehouse sync`: the partners' terms rows written with the stacks' own MERGE, on fakesnow."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from foundation.warehouse_schema import PARTNERS
from services.warehouse import LOCAL_DATABASE, connect


def partners_table(directory: Path) -> dict[str, dict[str, Any]]:
    conn = connect(f"local:{directory}")
    try:
        cur = conn.cursor()
        names = [c.name for c in PARTNERS.columns]
        cur.execute(f"SELECT {', '.join(names)} FROM {PARTNERS.fqn(LOCAL_DATABASE)}")
        return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}
    finally:
        conn.close()


def test_sync_writes_every_partner_then_updates_a_tier_change(cli, repo_copy: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    first = cli("warehouse", "sync", "--warehouse", f"local:{warehouse}", root=repo_copy)
    assert "acme-voice: new" in first.out and "wrote 3 partner row(s)" in first.out
    rows = partners_table(warehouse)
    assert set(rows) == {"acme-voice", "sakura-calls", "sunrise-telecom"}
    acme = rows["acme-voice"]
    assert (acme["TIER"], acme["CURRENCY"], acme["MINOR_UNITS"], acme["HOME_REGION"]) == (
        "professional",
        "EUR",
        2,
        "eu-central",
    )
    assert str(acme["RATE"]).rstrip("0") == "0.015" and acme["BASE_FEE_MINOR"] == 99900
    assert acme["OFFBOARDED_ON"] is None and acme["ONBOARDED_ON"] == datetime.date.today()
    spec = repo_copy / "partners" / "acme-voice.yaml"
    spec.write_text(spec.read_text().replace("tier: professional", "tier: enterprise"))
    dry = cli("warehouse", "sync", "--warehouse", f"local:{warehouse}", "--dry-run", "--json", root=repo_copy)
    changes = {p["partner"]: p["change"] for p in json.loads(dry.out)["partners"]}
    assert changes == {"acme-voice": "updated", "sakura-calls": "unchanged", "sunrise-telecom": "unchanged"}
    assert partners_table(warehouse)["acme-voice"]["TIER"] == "professional", "a dry run writes nothing"
    cli("warehouse", "sync", "--warehouse", f"local:{warehouse}", root=repo_copy)
    after = partners_table(warehouse)
    assert after["acme-voice"]["TIER"] == "enterprise"
    assert str(after["acme-voice"]["REVENUE_SHARE"]) != str(acme["REVENUE_SHARE"])  # the tier table's share
    assert after["acme-voice"]["ONBOARDED_ON"] == acme["ONBOARDED_ON"], "the first upsert's date is kept"
    assert len(after) == 3


def test_an_offboarded_partner_keeps_its_row(cli, repo_copy: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    cli("warehouse", "sync", "--warehouse", f"local:{warehouse}", root=repo_copy)
    cli("offboard-partner", "sakura-calls", "--no-apply", root=repo_copy)
    run = cli("warehouse", "sync", "--warehouse", f"local:{warehouse}", root=repo_copy)
    assert f"offboarded {datetime.date.today().isoformat()}" in run.out
    rows = partners_table(warehouse)
    assert rows["sakura-calls"]["OFFBOARDED_ON"] == datetime.date.today()
    assert rows["acme-voice"]["OFFBOARDED_ON"] is None


def test_the_stripe_account_comes_from_the_stack_file(cli, repo_copy: Path, tmp_path: Path) -> None:
    stack = repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml"
    stack.write_text(stack.read_text() + "  platform:stripeAccount: acct_1FakeAcme\n")
    cli("warehouse", "sync", "--warehouse", f"local:{tmp_path / 'wh'}", root=repo_copy)
    rows = partners_table(tmp_path / "wh")
    assert rows["acme-voice"]["STRIPE_ACCOUNT"] == "acct_1FakeAcme"
    assert rows["sunrise-telecom"]["STRIPE_ACCOUNT"] is None


def test_bad_input_exits_2_and_writes_nothing(cli, repo_copy: Path, tmp_path: Path) -> None:
    assert "--warehouse" in cli("warehouse", "sync", "--warehouse", "postgres://x", code=2, root=repo_copy).err
    stack = repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml"
    stack.write_text(stack.read_text() + "  platform:stripeAccount: not-an-account\n")
    run = cli("warehouse", "sync", "--warehouse", f"local:{tmp_path / 'wh'}", code=2, root=repo_copy)
    assert "Pulumi.partner-acme-voice.yaml" in run.err and "platform:stripeAccount" in run.err
    assert not (tmp_path / "wh").exists()


def test_help_has_an_example(cli) -> None:
    assert "Example: platformctl warehouse sync" in cli("warehouse", "sync", "--help").out


def test_sync_writes_the_marketplace_rows_and_dates_a_dropped_install_removed(
    cli, repo_copy: Path, tmp_path: Path
) -> None:
    import yaml

    from tests.integrations.conftest import EXAMPLE

    cli("integration", "submit", str(EXAMPLE), "--yes", root=repo_copy)
    cli("integration", "approve", "calsync", "--reviewer", "Dana Reviewer", root=repo_copy)
    cli("integration", "publish", "calsync", "--no-apply", root=repo_copy)
    spec = repo_copy / "partners" / "acme-voice.yaml"
    doc = yaml.safe_load(spec.read_text())
    installed = tmp_path / "acme.yaml"
    installed.write_text(yaml.safe_dump(doc | {"integrations": ["calsync"]}))
    cli("onboard-partner", str(installed), "--update", "--no-apply", root=repo_copy)
    warehouse = tmp_path / "wh"
    cli("warehouse", "sync", "--warehouse", f"local:{warehouse}", root=repo_copy)

    def rows(sql: str) -> list[tuple[Any, ...]]:
        conn = connect(f"local:{warehouse}")
        try:
            cur = conn.cursor()
            cur.execute(sql.format(db=LOCAL_DATABASE))
            return list(cur.fetchall())
        finally:
            conn.close()

    installs = "SELECT INSTALL_ID, CURRENCY, MONTHLY_MINOR, REMOVED_ON FROM {db}.RAW.INSTALLS"
    assert rows(installs) == [("acme-voice/calsync", "EUR", 900, None)]
    assert rows("SELECT DEVELOPER_ID, CURRENCY, HOME_REGION FROM {db}.RAW.DEVELOPERS") == [
        ("tempo-labs", "EUR", "eu-central")
    ]
    assert rows("SELECT INTEGRATION_ID, MONTHLY_MINOR FROM {db}.RAW.INTEGRATIONS") == [("calsync", 900)]
    # The partner drops it: the row stays, dated removed.
    uninstalled = tmp_path / "acme-plain.yaml"
    uninstalled.write_text(yaml.safe_dump(doc | {"integrations": []}))
    cli("onboard-partner", str(uninstalled), "--update", "--no-apply", root=repo_copy)
    cli("warehouse", "sync", "--warehouse", f"local:{warehouse}", root=repo_copy)
    ((install, _, _, removed),) = rows(installs)
    assert install == "acme-voice/calsync" and removed == datetime.datetime.now(datetime.UTC).date()
