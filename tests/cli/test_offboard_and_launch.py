"""`platformctl offboard-partner` and `platformctl launch-country`."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml

from fleet.repo import Repo
from tests.conftest import tree_snapshot


def stack_config(repo: Path, stack: str) -> dict:
    return yaml.safe_load((repo / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]


def test_offboarding_keeps_only_the_data(cli, repo_copy: Path, tmp_path: Path) -> None:
    run = cli("offboard-partner", "sakura-calls", "--no-apply", root=repo_copy)
    assert "wrote stacks/Pulumi.partner-sakura-calls.yaml" in run.out
    assert stack_config(repo_copy, "partner-sakura-calls")["platform:offboardedOn"] == datetime.date.today().isoformat()
    plan = cli("plan", "partner-sakura-calls", root=repo_copy).out
    assert "tenant-data-bucket" in plan and "tenant-schema" in plan and "tenant-data-key" in plan
    assert "tenant-namespace" not in plan and "tenant-consumer" not in plan
    assert "offboarded" in cli("partners", root=repo_copy).out
    again = cli("offboard-partner", "sakura-calls", "--no-apply", code=2, root=repo_copy)
    assert "already offboarded" in again.err


def test_offboard_dry_run_shows_the_plan_and_writes_nothing(cli, repo_copy: Path) -> None:
    before = tree_snapshot(repo_copy)
    run = cli("offboard-partner", "acme-voice", "--dry-run", "--show-same", root=repo_copy)
    # Against the partner's current plan: the tenant goes (deletes), its data stays (unchanged).
    assert "- tenant-namespace" in run.out and "  tenant-schema" in run.out and "+ " not in run.out
    changes_only = cli("offboard-partner", "acme-voice", "--dry-run", root=repo_copy).out
    assert "- tenant-namespace" in changes_only and "tenant-schema" not in changes_only
    assert "its data (buckets, keys, schema) is kept" in changes_only
    assert tree_snapshot(repo_copy) == before


def test_purge_is_refused_while_active_and_while_retention_runs(cli, repo_copy: Path) -> None:
    run = cli("offboard-partner", "acme-voice", "--purge", "--no-apply", code=2, root=repo_copy)
    assert "still active" in run.err and "90 days" in run.err
    cli("offboard-partner", "acme-voice", "--no-apply", root=repo_copy)
    run = cli("offboard-partner", "acme-voice", "--purge", "--no-apply", code=2, root=repo_copy)
    assert "DE, AT: 90 days" in run.err and "purging is refused" in run.err


def test_purge_after_retention_lifts_the_retain_flags(cli, repo_copy: Path) -> None:
    stack_file = repo_copy / "stacks" / "Pulumi.partner-sakura-calls.yaml"
    stack_file.write_text(stack_file.read_text() + "  platform:offboardedOn: '2020-01-01'\n")
    run = cli("offboard-partner", "sakura-calls", "--purge", "--no-apply", root=repo_copy)
    assert "retention ran out on 2020-06-29" in run.out  # JP: 180 days
    assert stack_config(repo_copy, "partner-sakura-calls")["platform:purgeData"] is True
    from foundation.stacks import parse_stack_name
    from platformctl.offline.planner import plan_stacks

    plans = plan_stacks(Repo(repo_copy), [parse_stack_name("partner-sakura-calls")])
    data = [r for r in plans["partner-sakura-calls"].recording.resources if r.type == "aws:s3/bucket:Bucket"]
    assert data and not any(r.retain_on_delete for r in data)


@pytest.mark.parametrize("partner", ["nobody", "../../etc/passwd", "ACME"])
def test_offboarding_an_unknown_or_hostile_id_exits_2(cli, repo_copy: Path, partner: str) -> None:
    before = tree_snapshot(repo_copy)
    cli("offboard-partner", partner, "--no-apply", code=2, root=repo_copy)
    assert tree_snapshot(repo_copy) == before


def test_launch_records_the_country_and_the_region_plan_carries_it(cli, repo_copy: Path) -> None:
    run = cli("launch-country", "CO", "--region", "sa-east", "--no-apply", root=repo_copy)
    assert "CO launched in sa-east" in run.out and "120 days" in run.out
    assert stack_config(repo_copy, "region-sa-east")["platform:launchedCountries"] == ["BR", "AR", "CL", "CO"]
    plan = cli("plan", "region-sa-east", root=repo_copy).out
    assert "region-country-co" in plan
    again = cli("launch-country", "co", "--region", "sa-east", "--no-apply", root=repo_copy)
    assert "already launched" in again.out


def test_launch_picks_the_only_serving_region(cli, repo_copy: Path) -> None:
    cli("launch-country", "FR", "--no-apply", root=repo_copy)
    assert stack_config(repo_copy, "region-eu-paris")["platform:launchedCountries"] == ["FR"]


def test_launch_dry_run_writes_nothing(cli, repo_copy: Path) -> None:
    before = tree_snapshot(repo_copy)
    run = cli("launch-country", "IT", "--dry-run", root=repo_copy)
    assert "region-country-it" in run.out
    assert tree_snapshot(repo_copy) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ZZ"], "unknown country"),
        (["DE", "--region", "us-east"], "DE requires data residency and may only be served from: eu-central"),
        (["US"], "several regions"),
        (["FR", "--region", "eu-mars"], "unknown region"),
    ],
)
def test_launch_refusals_exit_2(cli, repo_copy: Path, args: list[str], message: str) -> None:
    before = tree_snapshot(repo_copy)
    run = cli("launch-country", *args, "--no-apply", code=2, root=repo_copy)
    assert message in run.err
    assert tree_snapshot(repo_copy) == before


def test_launching_a_preferred_country_elsewhere_warns(cli, repo_copy: Path) -> None:
    run = cli("launch-country", "JP", "--region", "ap-singapore", "--no-apply", root=repo_copy)
    assert "JP prefers data residency in ap-tokyo" in run.err
