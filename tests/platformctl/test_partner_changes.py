"""Partner changes: the validated bytes are written, offboarded partners come back only when asked, a region move
shows its replacements, reserved ids are no partner."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import ROOT

EXAMPLE = ROOT / "partners" / "examples" / "pampas-voz.yaml"


def stack_text(root: Path, stack: str) -> str:
    return (root / "stacks" / f"Pulumi.{stack}.yaml").read_text()


def test_the_validated_bytes_are_the_bytes_written(cli, repo_copy: Path, tmp_path: Path) -> None:
    spec = tmp_path / "pampas.yaml"
    raw = b"# Pampas Voz, signed off 2026-11-01\n" + EXAMPLE.read_bytes().replace(b"\n", b"   \n", 1)
    spec.write_bytes(raw)
    cli("onboard-partner", str(spec), "--no-apply", root=repo_copy)
    assert (repo_copy / "partners" / "pampas-voz.yaml").read_bytes() == raw


def test_update_refuses_an_offboarded_partner_unless_reactivated(cli, repo_copy: Path) -> None:
    cli("offboard-partner", "acme-voice", "--no-apply", root=repo_copy)
    spec = str(repo_copy / "partners" / "acme-voice.yaml")
    run = cli("onboard-partner", spec, "--update", "--no-apply", code=2, root=repo_copy)
    assert "was offboarded on" in run.err and "--reactivate" in run.err
    cli("onboard-partner", spec, "--update", "--reactivate", "--no-apply", root=repo_copy)
    config = yaml.safe_load(stack_text(repo_copy, "partner-acme-voice"))["config"]
    assert "platform:offboardedOn" not in config


def test_an_offboarding_after_a_reactivation_keeps_the_numbers_unless_asked(cli, repo_copy: Path) -> None:
    spec = str(repo_copy / "partners" / "acme-voice.yaml")
    cli("offboard-partner", "acme-voice", "--release-numbers", "--no-apply", root=repo_copy)
    cli("onboard-partner", spec, "--update", "--reactivate", "--no-apply", root=repo_copy)
    assert "platform:releaseNumbers" not in yaml.safe_load(stack_text(repo_copy, "partner-acme-voice"))["config"]
    path = repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml"
    path.write_text(path.read_text() + "  platform:releaseNumbers: true\n  platform:purgeData: true\n")
    cli("offboard-partner", "acme-voice", "--no-apply", root=repo_copy)
    config = yaml.safe_load(stack_text(repo_copy, "partner-acme-voice"))["config"]
    assert "platform:releaseNumbers" not in config and "platform:purgeData" not in config


def test_a_region_move_says_so_and_shows_deletes_and_creates(cli, repo_copy: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load((repo_copy / "partners" / "sunrise-telecom.yaml").read_text())
    assert doc["home_region"] == "us-east"
    doc["home_region"] = "us-west"
    moved = tmp_path / "moved.yaml"
    moved.write_text(yaml.safe_dump(doc))
    run = cli("onboard-partner", str(moved), "--update", "--dry-run", root=repo_copy)
    assert "moves from us-east to us-west" in run.err
    assert "to replace (delete, then create)" in run.out
    # The tenant's Kubernetes objects move cluster too: they are replaced, not shown as unchanged.
    from fleet.repo import Repo
    from platformctl.dry_run import dry_run_plan
    from platformctl.partner_changes import onboarding_change, read_spec_inputs

    repo = Repo(repo_copy)
    result = dry_run_plan(repo, onboarding_change(repo, read_spec_inputs([moved]), update=True))
    ops = {s["urn"].rsplit("::", 1)[1]: s["op"] for s in result.document["stacks"]["partner-sunrise-telecom"]["steps"]}
    assert ops["tenant-namespace"] == "replace" and ops["tenant-default-deny"] == "replace"


def test_reserved_ids_are_no_partner(cli, repo_copy: Path) -> None:
    run = cli("offboard-partner", "tiers", "--no-apply", code=2, root=repo_copy)
    assert "ID" in run.err
