"""submit -> approve -> publish -> install -> plan, and every refusal of the life cycle (exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import tree_snapshot
from tests.integrations.conftest import EXAMPLE, integration_file


def _partner_with(repo: Path, tmp_path: Path, partner: str, integrations: list[str]) -> Path:
    doc = yaml.safe_load((repo / "partners" / f"{partner}.yaml").read_text())
    doc["integrations"] = integrations
    path = tmp_path / f"{partner}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _approved(cli, repo: Path) -> None:
    cli("integration", "submit", str(EXAMPLE), "--yes", root=repo)
    cli("integration", "approve", "calsync", "--reviewer", "Dana Reviewer", root=repo)


def test_publish_refuses_an_unapproved_digest_and_a_changed_spec(cli, repo_copy: Path, tmp_path: Path) -> None:
    cli("integration", "submit", str(EXAMPLE), "--yes", root=repo_copy)
    before = tree_snapshot(repo_copy)
    run = cli("integration", "publish", "calsync", "--no-apply", code=2, root=repo_copy)
    assert "is not approved (it was never approved)" in run.err
    assert tree_snapshot(repo_copy) == before
    cli("integration", "approve", "calsync", "--reviewer", "Dana Reviewer", root=repo_copy)
    # A later change of the spec (resubmitted) keeps the old approval out: it was for another digest.
    changed = integration_file(tmp_path, description="Two-way sync, now with reminders.")
    cli("integration", "submit", str(changed), "--yes", root=repo_copy)
    run = cli("integration", "publish", "calsync", "--no-apply", code=2, root=repo_copy)
    assert "is not approved (it was never approved)" in run.err
    record = yaml.safe_load((repo_copy / "integrations" / "calsync.review.yaml").read_text())
    assert record["approval"] is None
    # Editing the file by hand (no resubmission) is caught too: the automated review judged another digest.
    (repo_copy / "integrations" / "calsync.yaml").write_bytes(EXAMPLE.read_bytes())
    run = cli("integration", "approve", "calsync", "--reviewer", "Dana", code=2, root=repo_copy)
    assert "changed since its automated review" in run.err
    assert not (repo_copy / "stacks" / "Pulumi.integration-calsync.yaml").exists()


def test_install_refusals(cli, repo_copy: Path, tmp_path: Path) -> None:
    acme = _partner_with(repo_copy, tmp_path, "acme-voice", ["calsync"])
    before = tree_snapshot(repo_copy)
    run = cli("onboard-partner", str(acme), "--update", "--no-apply", code=2, root=repo_copy)
    assert f"{acme}: integrations.0: no integration 'calsync' in the marketplace" in run.err
    _approved(cli, repo_copy)
    run = cli("onboard-partner", str(acme), "--update", "--no-apply", code=2, root=repo_copy)
    assert "'calsync' is not published (it is submitted)" in run.err
    cli("integration", "publish", "calsync", "--no-apply", root=repo_copy)
    sakura = _partner_with(repo_copy, tmp_path, "sakura-calls", ["calsync"])
    run = cli("onboard-partner", str(sakura), "--update", "--no-apply", code=2, root=repo_copy)
    assert "'calsync' is not offered in ap-tokyo (offered in: eu-central, us-east)" in run.err
    assert tree_snapshot(repo_copy) == {
        **before,
        **{k: v for k, v in tree_snapshot(repo_copy).items() if k.startswith("stacks/Pulumi.integration")},
    }


def test_submit_approve_publish_install_plan_suspend_retire(cli, repo_copy: Path, tmp_path: Path) -> None:
    _approved(cli, repo_copy)
    run = cli("integration", "publish", "calsync", "--no-apply", "--json", root=repo_copy)
    assert json.loads(run.out)["files"] == [
        "integrations/calsync.review.yaml",
        "stacks/Pulumi.integration-calsync.yaml",
    ]
    acme = _partner_with(repo_copy, tmp_path, "acme-voice", ["calsync"])
    cli("onboard-partner", str(acme), "--update", "--no-apply", root=repo_copy)
    status = json.loads(cli("integration", "status", "calsync", "--json", root=repo_copy).out)
    assert status[0]["state"] == "published" and status[0]["approved"] is True
    assert status[0]["installations"] == ["acme-voice"]

    plan_file = tmp_path / "plan.json"
    cli("plan", "integration-calsync", "--json", str(plan_file), root=repo_copy)
    document = json.loads(plan_file.read_text())
    assert document["violations"] == []
    steps = document["stacks"]["integration-calsync"]["steps"]
    consumers = [s["newState"]["inputs"] for s in steps if s["newState"]["type"] == "kong:index/consumer:Consumer"]
    assert consumers == [
        {"customId": "acme-voice/calsync", "username": "integration-calsync.acme-voice", "tags": consumers[0]["tags"]}
    ]

    # Retiring is refused while a partner has it installed.
    run = cli("integration", "retire", "calsync", "--no-apply", code=2, root=repo_copy)
    assert "still installed by acme-voice" in run.err

    cli("integration", "suspend", "calsync", "--no-apply", root=repo_copy)
    cli("plan", "integration-calsync", "--json", str(plan_file), root=repo_copy)
    steps = json.loads(plan_file.read_text())["stacks"]["integration-calsync"]["steps"]
    terminations = [
        json.loads(s["newState"]["inputs"]["configJson"])
        for s in steps
        if s["newState"]["inputs"].get("name") == "request-termination"
    ]
    assert len(terminations) == 3  # the integration's route and its two scope routes
    assert all(t["status_code"] == 503 and "suspended" in t["message"] for t in terminations)
    deployments = [s["newState"]["inputs"] for s in steps if s["newState"]["type"] == "kubernetes:apps/v1:Deployment"]
    assert deployments and all(d["spec"]["replicas"] == 0 for d in deployments)
    assert any(s["newState"]["type"] == "kong:index/consumer:Consumer" for s in steps)  # installs are kept

    # Publish resumes it; once no partner has it installed, it can be retired (for good: its id is not reused).
    cli("integration", "publish", "calsync", "--no-apply", root=repo_copy)
    plain = yaml.safe_load((repo_copy / "partners" / "acme-voice.yaml").read_text())
    plain.pop("integrations")
    (repo_copy / "partners" / "acme-voice.yaml").write_text(yaml.safe_dump(plain))
    run = cli("integration", "retire", "calsync", "--no-apply", "--json", root=repo_copy)
    assert "retired" in json.loads(run.out)["notes"][0]
    assert yaml.safe_load((repo_copy / "integrations" / "calsync.review.yaml").read_text())["state"] == "retired"
    run = cli("integration", "submit", str(EXAMPLE), "--yes", code=2, root=repo_copy)
    assert "was retired" in run.err


def test_validate_and_plan_refuse_a_published_spec_edited_after_its_approval(cli, repo_copy: Path) -> None:
    _approved(cli, repo_copy)
    cli("integration", "publish", "calsync", "--no-apply", root=repo_copy)
    cli("validate", root=repo_copy)
    spec = repo_copy / "integrations" / "calsync.yaml"
    spec.write_text(spec.read_text().replace("egress: [calendar.googleapis.example]", "egress: [evil.example]"))
    run = cli("validate", code=2, root=repo_copy)
    assert "integrations/calsync.yaml: changed since it was approved and published" in run.err
    run = cli("plan", "integration-calsync", code=2, root=repo_copy)
    assert "changed since it was approved and published" in run.err


def test_installing_through_onboard_partner_dry_run_plans_the_consumer(cli, repo_copy: Path, tmp_path: Path) -> None:
    _approved(cli, repo_copy)
    cli("integration", "publish", "calsync", "--no-apply", root=repo_copy)
    acme = _partner_with(repo_copy, tmp_path, "acme-voice", ["calsync"])
    before = tree_snapshot(repo_copy)
    run = cli("onboard-partner", str(acme), "--update", "--dry-run", root=repo_copy)
    assert "acme-voice: installs calsync: apply integration-calsync" in run.out
    assert "integration-install-acme-voice" in run.out  # the consumer, in the integration stack's plan
    assert tree_snapshot(repo_copy) == before


def test_an_integration_not_priced_in_the_partners_currency_is_not_installable(
    cli, repo_copy: Path, tmp_path: Path
) -> None:
    euro_only = integration_file(tmp_path, "euro.yaml", pricing={"monthly": {"EUR": 900}})
    cli("integration", "submit", str(euro_only), "--yes", root=repo_copy)
    cli("integration", "approve", "calsync", "--reviewer", "Dana", root=repo_copy)
    cli("integration", "publish", "calsync", "--no-apply", root=repo_copy)
    sunrise = _partner_with(repo_copy, tmp_path, "sunrise-telecom", ["calsync"])  # us-east, billed in USD
    run = cli("onboard-partner", str(sunrise), "--update", "--no-apply", code=2, root=repo_copy)
    assert "'calsync' is priced in EUR, not in the partner's billing currency USD" in run.err


def test_a_site_folder_that_cannot_be_made_is_bad_input(cli, tmp_path: Path) -> None:
    """Under a file, or in /proc: exit 2 naming --out, not an internal error."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (blocker / "site", Path("/proc/self/site")):
        run = cli("marketplace", "build", "--out", str(out), code=2)
        assert "--out" in run.err
