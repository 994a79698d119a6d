"""What `validate` checks beyond types: pairing of specs and stacks, stack meaning, domains."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml

from fleet.checks import domain_problems, fleet_domain_problems
from tests.conftest import ROOT

EXAMPLE = ROOT / "partners" / "examples" / "pampas-voz.yaml"


def set_config(root: Path, stack: str, **values) -> None:
    path = root / "stacks" / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(path.read_text()) or {}
    doc.setdefault("config", {}).update({k.replace("__", ":"): v for k, v in values.items()})
    path.write_text(yaml.safe_dump(doc))


def test_the_example_fleet_is_valid(cli) -> None:
    assert cli("validate").out.strip() == "valid"


def test_specs_and_stacks_come_in_pairs(cli, repo_copy: Path) -> None:
    (repo_copy / "stacks" / "Pulumi.partner-sunrise-telecom.yaml").unlink()
    (repo_copy / "stacks" / "Pulumi.partner-ghost.yaml").write_text("config: {}\n")
    (repo_copy / "stacks" / "Pulumi.region-xx-nowhere.yaml").write_text("config: {}\n")
    run = cli("validate", code=2, root=repo_copy)
    assert "partners/sunrise-telecom.yaml: spec without a stack file" in run.err
    assert "stacks/Pulumi.partner-ghost.yaml: stack file without a spec" in run.err
    assert "stacks/Pulumi.region-xx-nowhere.yaml: region 'xx-nowhere' is not in regions/regions.yaml" in run.err


@pytest.mark.parametrize(
    ("stack", "values", "field", "message"),
    [
        ("region-sa-east", {"platform__launchedCountries": ["BR", "ZZ"]}, "launchedCountries.1", "unknown country"),
        ("region-sa-east", {"platform__launchedCountries": ["BR", "BR"]}, "launchedCountries.1", "more than once"),
        ("region-sa-east", {"platform__purgeData": True}, "purgeData", "partner stacks only"),
        ("region-sa-east", {"platform__launchedCountries": ["BR", "DE"]}, "launchedCountries.1", "residency"),
        ("global", {"platform__kongAdminToken": "kong-admin-plaintext"}, "kongAdminToken", "in clear"),
        ("partner-acme-voice", {"platform__offboardedOn": "9999-12-31"}, "offboardedOn", "in the future"),
        ("partner-acme-voice", {"platform__offboardedOn": "2026-13-01"}, "offboardedOn", "not a YYYY-MM-DD"),
        ("partner-acme-voice", {"platform__purgeData": True}, "purgeData", "active partner"),
        ("partner-acme-voice", {"aws__region": "us-east-1"}, "aws:region", "home region"),
        ("partner-acme-voice", {"platform__launchedCountries": ["DE"]}, "launchedCountries", "region stacks only"),
    ],
)
def test_stack_files_are_checked_for_meaning(cli, repo_copy: Path, stack, values, field, message) -> None:
    set_config(repo_copy, stack, **values)
    run = cli("validate", code=2, root=repo_copy)
    assert f"stacks/Pulumi.{stack}.yaml" in run.err and field in run.err and message in run.err


def test_purge_only_once_retention_allows(cli, repo_copy: Path) -> None:
    recent = (datetime.date.today() - datetime.timedelta(days=3)).isoformat()
    set_config(repo_copy, "partner-acme-voice", platform__offboardedOn=recent, platform__purgeData=True)
    run = cli("validate", code=2, root=repo_copy)
    assert "may not be purged before" in run.err
    set_config(repo_copy, "partner-acme-voice", platform__offboardedOn="2001-01-01")
    cli("validate", root=repo_copy)


def test_offboarding_dates_at_the_end_of_time_do_not_overflow(cli, repo_copy: Path) -> None:
    set_config(repo_copy, "partner-acme-voice", platform__offboardedOn="9999-12-31")
    run = cli("offboard-partner", "acme-voice", "--purge", "--no-apply", code=2, root=repo_copy)
    assert "in the future" in run.err


def test_offboarding_dates_are_year_month_day_not_week_dates(cli, repo_copy: Path) -> None:
    set_config(repo_copy, "partner-acme-voice", platform__offboardedOn="2026-W01-1")
    assert "is not a YYYY-MM-DD date" in cli("validate", code=2, root=repo_copy).err
    cli("offboard-partner", "acme-voice", "--purge", "--no-apply", code=2, root=repo_copy)


def write_spec(root: Path, partner_id: str, domain: str) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc.update(id=partner_id, domain=domain)
    (root / "partners" / f"{partner_id}.yaml").write_text(yaml.safe_dump(doc))
    (root / "stacks" / f"Pulumi.partner-{partner_id}.yaml").write_text("config:\n  aws:region: sa-east-1\n")


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ("VOICE.acme.example.", "is the same as voice.acme.example"),
        ("eu.voice.acme.example", "overlaps voice.acme.example"),
        ("acme.example", "overlaps voice.acme.example"),
        ("api.voice-platform.example", "platform's own zone"),
        ("voice-platform.example", "platform's own zone"),
        ("tenant.cluster.local", "internal or reserved"),
        ("kong.platform.svc", "internal or reserved"),
        ("evil.localhost", "internal or reserved"),
    ],
)
def test_a_domain_belongs_to_one_tenant(cli, repo_copy: Path, domain: str, message: str) -> None:
    write_spec(repo_copy, "pampas-voz", domain)
    run = cli("validate", code=2, root=repo_copy)
    assert "domain" in run.err and message in run.err


def test_domain_rules_directly() -> None:
    assert domain_problems("10.0.0.1", "zone.example", "s")  # an address, not a name
    assert not domain_problems("voice.partner.com", "zone.example", "s")
    clash = fleet_domain_problems({"a": ("x.example.com", "a.yaml"), "b": ("X.Example.com.", "b.yaml")}, "")
    assert {p.source for p in clash} == {"a.yaml", "b.yaml"} and all("is the same as" in p.message for p in clash)


def test_a_region_stack_targets_its_own_aws_region(cli, repo_copy: Path) -> None:
    set_config(repo_copy, "region-eu-west", aws__region="us-east-1")
    run = cli("validate", code=2, root=repo_copy)
    assert "stacks/Pulumi.region-eu-west.yaml: config.aws:region" in run.err and "eu-west-1" in run.err


def test_a_symlinked_stack_file_is_refused(cli, repo_copy: Path, tmp_path: Path) -> None:
    target = repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml"
    outside = tmp_path / "outside.yaml"
    outside.write_text(target.read_text())
    target.unlink()
    target.symlink_to(outside)
    run = cli("validate", code=2, root=repo_copy)
    assert "symbolic link" in run.err


def test_the_global_stack_must_exist(cli, repo_copy: Path) -> None:
    (repo_copy / "stacks" / "Pulumi.global.yaml").unlink()
    run = cli("validate", code=2, root=repo_copy)
    assert "stacks/Pulumi.global.yaml: missing" in run.err
