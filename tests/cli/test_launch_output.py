"""What a change's dry run shows: the changes (like `pulumi preview`), unchanged resources on request; and a
launch outside the country's usual region says why it is allowed (issue 18, item 18)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import tree_snapshot

UNCHANGED = "region-meter-key"
"""A resource of every region stack that a country launch leaves as it is."""


def test_a_launch_dry_run_shows_what_changes_and_unchanged_only_on_request(cli, repo_copy: Path) -> None:
    before = tree_snapshot(repo_copy)
    run = cli("launch-country", "FR", "--region", "sa-east", "--dry-run", root=repo_copy)
    assert "+ region-country-fr " in run.out and "+ region-country-fr-settings" in run.out
    assert "region  platform:regional_deployment:RegionalDeployment" in run.out  # where the new one sits
    assert UNCHANGED not in run.out
    totals = re.search(r"1 stack\(s\): 2 to create, (\d+) unchanged", run.out)
    assert totals is not None
    hidden = re.search(r"(\d+) unchanged resource\(s\) not shown \(--show-same shows them\)", run.out)
    # All but the stack resource itself (the tree's root) and the component the new resources sit in.
    assert hidden is not None and int(hidden.group(1)) == int(totals.group(1)) - 2
    assert len(run.out.splitlines()) < 12

    full = cli("launch-country", "FR", "--region", "sa-east", "--dry-run", "--show-same", root=repo_copy)
    assert UNCHANGED in full.out and "not shown" not in full.out
    assert len(full.out.splitlines()) > int(totals.group(1))
    assert tree_snapshot(repo_copy) == before


def test_plan_against_an_earlier_plan_hides_unchanged_resources_too(cli, repo_copy: Path, tmp_path: Path) -> None:
    earlier = tmp_path / "earlier.json"
    cli("plan", "partner-acme-voice", "--json", str(earlier), root=repo_copy)
    spec = repo_copy / "partners" / "acme-voice.yaml"
    spec.write_text(spec.read_text().replace("voice_greeting: ", "voice_greeting: Hello again. "))
    run = cli("plan", "partner-acme-voice", "--against", str(earlier), root=repo_copy)
    assert "~ " in run.out and "tenant-namespace" not in run.out and "not shown" in run.out
    full = cli("plan", "partner-acme-voice", "--against", str(earlier), "--show-same", root=repo_copy)
    assert "tenant-namespace" in full.out


def test_a_launch_outside_the_usual_region_says_which_region_serves_it_and_why(cli, repo_copy: Path) -> None:
    run = cli("launch-country", "FR", "--region", "sa-east", "--no-apply", root=repo_copy)
    assert (
        "warning: FR is normally served from eu-paris; sa-east is allowed because FR's data residency is optional"
        in run.err
    )
    usual = cli("launch-country", "FR", "--no-apply", root=repo_copy)
    assert "warning" not in usual.err and "FR launched in eu-paris" in usual.out
