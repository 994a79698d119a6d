"""`platformctl plan`: output, JSON shape, secret redaction, --against diffs, policies, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import PlannedFleet, tree_snapshot

SPEC = "partners/acme-voice.yaml"


def test_single_stack_prints_a_tree(cli, repo_copy: Path) -> None:
    run = cli("plan", "partner-acme-voice", root=repo_copy)
    assert "partner-acme-voice" in run.out
    assert "tenant-namespace" in run.out and "kubernetes:core/v1:Namespace" in run.out
    # 49 + the terms row (4) + certificate sync and a cors plugin per route (6) + the webhooks API route, its cors (2)
    assert "1 stack(s): 61 to create" in run.out


def test_all_prints_a_summary_table_and_writes_the_preview_json(planned_fleet: PlannedFleet) -> None:
    run = planned_fleet.run
    assert "region-eu-central" in run.out and "19 stack(s)" in run.out
    doc = json.loads(planned_fleet.json.read_text())
    assert len(doc["stacks"]) == 19 and doc["violations"] == []
    stack = doc["stacks"]["partner-acme-voice"]
    assert stack["changeSummary"] == {"create": len(stack["steps"])}
    step = next(s for s in stack["steps"] if s["newState"]["type"] == "kubernetes:core/v1:Namespace")
    assert step["op"] == "create"
    assert set(step["newState"]) >= {"type", "urn", "custom", "parent", "provider", "inputs"}
    tenant_type = "platform:partner_tenant:PartnerTenant"
    assert (
        step["urn"]
        == f"urn:pulumi:partner-acme-voice::platform::{tenant_type}$kubernetes:core/v1:Namespace::tenant-namespace"
    )
    assert step["newState"]["parent"].endswith("platform:partner_tenant:PartnerTenant::tenant")
    assert step["newState"]["provider"].startswith(
        "urn:pulumi:partner-acme-voice::platform::pulumi:providers:kubernetes::k8s::"
    )
    assert stack["outputs"]["namespace"] == "partner-acme-voice"


def test_secrets_are_redacted_in_the_json(cli, repo_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    cli("plan", "partner-sakura-calls", "region-eu-central", "global", "--json", str(out), root=repo_copy)
    text = out.read_text()
    assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text
    doc = json.loads(text)
    key_auth = next(
        s for s in doc["stacks"]["partner-sakura-calls"]["steps"] if s["newState"]["type"].endswith("ConsumerKeyAuth")
    )
    assert key_auth["newState"]["inputs"]["key"] == "[secret]"
    assert doc["stacks"]["partner-sakura-calls"]["outputs"]["api_key"] == "[secret]"
    assert doc["stacks"]["region-eu-central"]["outputs"]["kubeconfig"] == "[secret]"
    assert doc["stacks"]["global"]["outputs"]["kong_cluster_key"] == "[secret]"


def test_against_an_identical_plan_everything_is_same(cli, repo_copy: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    cli("plan", "partner-acme-voice", "--json", str(old), root=repo_copy)
    new = tmp_path / "new.json"
    cli("plan", "partner-acme-voice", "--against", str(old), "--json", str(new), root=repo_copy)
    summary = json.loads(new.read_text())["stacks"]["partner-acme-voice"]["changeSummary"]
    assert list(summary) == ["same"]


def test_against_shows_updates_creates_and_deletes_with_changed_paths(cli, repo_copy: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    cli("plan", "partner-acme-voice", "--json", str(old), root=repo_copy)
    spec = repo_copy / SPEC
    spec.write_text(spec.read_text().replace("tier: professional", "tier: enterprise"))
    new = tmp_path / "new.json"
    run = cli("plan", "partner-acme-voice", "--against", str(old), "--json", str(new), root=repo_copy)
    stack = json.loads(new.read_text())["stacks"]["partner-acme-voice"]
    ops = {s["urn"].rsplit("::", 1)[1]: s for s in stack["steps"]}
    assert ops["tenant-quota"]["op"] == "update"
    assert "spec.hard.requests.cpu" in ops["tenant-quota"]["diffs"]
    assert ops["tenant-data-bucket"]["op"] == "create"  # enterprise: dedicated storage
    assert ops["tenant-acl-tier-professional"]["op"] == "delete"
    assert ops["tenant-acl-tier-enterprise"]["op"] == "create"
    assert ops["tenant-namespace"]["op"] == "update"  # the tier label
    assert stack["changeSummary"]["update"] >= 3 and stack["changeSummary"]["delete"] >= 1
    assert "~ tenant-quota" in run.out


def test_against_with_all_deletes_a_removed_partner(cli, planned_fleet: PlannedFleet, tmp_path: Path) -> None:
    old = planned_fleet.json  # `plan --all` of the unedited fleet; the copy's cache is as that plan left it
    repo_copy = Path(shutil.copytree(planned_fleet.root, tmp_path / "repo", symlinks=True))
    (repo_copy / "partners" / "sunrise-telecom.yaml").unlink()
    (repo_copy / "stacks" / "Pulumi.partner-sunrise-telecom.yaml").unlink()
    new = tmp_path / "new.json"
    cli("plan", "--all", "--against", str(old), "--json", str(new), root=repo_copy)
    stacks = json.loads(new.read_text())["stacks"]
    removed = stacks["partner-sunrise-telecom"]
    assert {s["op"] for s in removed["steps"]} == {"delete"}
    assert set(stacks["global"]["changeSummary"]) == {"same"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan"], "name at least one stack"),
        (["plan", "partner-nope"], "has no file in stacks/"),
        (["plan", "partner-../../etc"], "unknown stack name"),
        (["plan", "region-eu-mars"], "has no file in stacks/"),
        (["plan", "--all", "global"], "not both"),
        (["plan", "global", "--against", "missing.json"], "no such file"),
        (["plan", "global", "--workers", "0"], "--workers"),
    ],
)
def test_bad_arguments_exit_2(cli, repo_copy: Path, args: list[str], message: str) -> None:
    run = cli(*args, code=2, root=repo_copy)
    assert message in run.err


def test_against_a_file_that_is_not_a_plan(cli, repo_copy: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"stacks": {"global": {"steps": "nope"}}}')
    run = cli("plan", "global", "--against", str(bad), code=2, root=repo_copy)
    assert "stacks.global.steps" in run.err


def test_a_broken_spec_names_file_and_field(cli, repo_copy: Path) -> None:
    spec = repo_copy / SPEC
    spec.write_text(spec.read_text().replace("tier: professional", "tier: gold"))
    before = tree_snapshot(repo_copy)
    run = cli("plan", "partner-acme-voice", code=2, root=repo_copy)
    assert "partners/acme-voice.yaml: tier:" in run.err
    assert tree_snapshot(repo_copy) == before


def test_a_mandatory_policy_violation_exits_1_naming_resource_and_rule(cli, repo_copy: Path, monkeypatch) -> None:
    import components.partner_tenant as tenant

    # A component bug: the tenant's rate limit no longer comes from its tier.
    monkeypatch.setattr(tenant, "rate_limit_config", lambda limits: json.dumps({"second": 1, "minute": 1, "hour": 1}))
    run = cli("plan", "partner-acme-voice", code=1, root=repo_copy)
    assert "mandatory policy tier-consistency" in run.err
    assert "tenant-rate-limit" in run.err
    assert "1 mandatory policy violation" in run.err


def test_root_from_environment_and_not_a_repository(cli, repo_copy: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PLATFORMCTL_ROOT", str(repo_copy))
    assert "partner-acme-voice" in cli("stacks").out
    run = cli("stacks", code=2, root=tmp_path / "nowhere")
    assert "not a platform repository" in run.err


def test_internal_errors_are_one_line_unless_debug(cli, repo_copy: Path, monkeypatch) -> None:
    import platformctl.listings as listings

    def boom(repo):
        raise RuntimeError("kaput")

    monkeypatch.setattr(listings, "stacks", boom)
    run = cli("stacks", code=1, root=repo_copy)
    assert "internal error: RuntimeError: kaput (rerun with --debug" in run.err
    debug = cli("--debug", "stacks", code=1, root=repo_copy)
    assert "Traceback" in debug.err


def test_json_pointing_at_a_directory_is_bad_input_before_any_work(cli, repo_copy: Path, tmp_path: Path) -> None:
    run = cli("plan", "global", "--json", str(tmp_path), code=2, root=repo_copy)
    assert "--json" in run.err and "is a directory" in run.err


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ('{"stacks": {"global": {"steps": [{"urn": "u", "newState": []}]}}}', "steps.0.newState"),
        ('{"stacks": {"global": {"steps": [{"urn": "u", "newState": {"inputs": 3}}]}}}', "newState.inputs"),
        ('{"stacks": {"global": {"steps": [{"urn": "u", "op": 7}]}}}', "steps.0.op"),
        ("[" * 100000 + "]" * 100000, "nested too deeply"),
        ("\xff\xfe", "not a plan JSON file"),
    ],
)
def test_a_malformed_against_file_is_bad_input(cli, repo_copy: Path, tmp_path: Path, content: str, field: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="latin-1")
    run = cli("plan", "global", "--against", str(bad), code=2, root=repo_copy)
    assert field in run.err


def test_a_directory_as_against_is_bad_input(cli, repo_copy: Path, tmp_path: Path) -> None:
    run = cli("plan", "global", "--against", str(tmp_path), code=2, root=repo_copy)
    assert "is a directory" in run.err


def test_an_earlier_plan_is_read_within_bounds(cli, repo_copy: Path, tmp_path: Path, monkeypatch) -> None:
    import platformctl.planjson as planjson

    monkeypatch.setattr(planjson, "MAX_PLAN_BYTES", 100)
    big = tmp_path / "big.json"
    big.write_text('{"stacks": {}}' + " " * 200)
    run = cli("plan", "global", "--against", str(big), code=2, root=repo_copy)
    assert "larger than" in run.err


def test_a_json_file_that_cannot_be_written_is_bad_input(cli, repo_copy: Path, tmp_path: Path) -> None:
    run = cli("plan", "global", "--json", "/proc/self/plan.json", code=2, root=repo_copy)
    assert "--json" in run.err


def test_an_earlier_plan_with_a_urn_twice_is_bad_input(cli, repo_copy: Path, tmp_path: Path) -> None:
    bad = tmp_path / "twice.json"
    bad.write_text('{"stacks": {"global": {"steps": [{"urn": "u", "op": "create"}, {"urn": "u", "op": "create"}]}}}')
    run = cli("plan", "global", "--against", str(bad), code=2, root=repo_copy)
    assert "stacks.global.steps.1.urn" in run.err and "appears twice" in run.err


def test_a_large_plan_is_summed_by_kind_with_changed_stacks_listed() -> None:
    from cli.render import _by_kind

    summaries = {"global": {"create": 66}, "region-eu-west": {"same": 150}, "region-us-east": {"update": 2, "same": 9}}
    summaries |= {f"partner-p{i:03d}": {"create": 50} for i in range(100)}
    rows = _by_kind(summaries)
    assert list(rows) == [
        "region-us-east",  # the one stack that changes anything but creates
        "global stacks (1)",
        "region stacks (2)",
        "partner stacks (100)",
    ]
    assert rows["partner stacks (100)"] == {"create": 5000}
    assert rows["region stacks (2)"] == {"same": 159, "update": 2}


def test_a_stack_read_without_its_stack_file_is_bad_input(cli, repo_copy: Path, tmp_path: Path) -> None:
    (repo_copy / "stacks" / "Pulumi.region-eu-central.yaml").unlink()
    run = cli("plan", "partner-acme-voice", "--json", str(tmp_path / "plan.json"), code=2, root=repo_copy)
    assert "stacks/Pulumi.region-eu-central.yaml" in run.err
    assert "no stack file for region-eu-central, which partner-acme-voice read(s)" in run.err
    assert not (tmp_path / "plan.json").exists()
