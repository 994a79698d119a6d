"""ci-preview's side planner (the child process that plans one exported tree)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from platformctl.ci.sides import plan_tree_main


def test_a_host_claimed_twice_is_found_when_another_stack_fails_to_plan(
    repo_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One stack that does not plan makes the child plan the stacks one by one; the fleet-wide unique-hosts
    check still runs across the stacks that did."""
    spec = repo_copy / "partners" / "sakura-calls.yaml"
    spec.write_text(spec.read_text().replace("domain: ai.sakura-calls.example", "domain: voice.acme.example"))
    for partner in ("acme-voice", "sakura-calls"):
        stack = repo_copy / "stacks" / f"Pulumi.partner-{partner}.yaml"
        stack.write_text(stack.read_text() + "  platform:domainVerified: voice.acme.example\n")
    broken = repo_copy / "stacks" / "Pulumi.region-eu-milan.yaml"
    broken.write_text(broken.read_text() + '  platform:kubernetesVersion: "1.20"\n')
    out = tmp_path / "side.json"
    stacks = ["global", "region-ap-tokyo", "region-eu-central", "region-eu-milan"]
    partners = ["partner-acme-voice", "partner-sakura-calls"]
    monkeypatch.chdir(repo_copy)
    monkeypatch.setattr(sys, "argv", ["plan_tree_main", str(out), *stacks, *partners])
    plan_tree_main()
    result = json.loads(out.read_text())
    assert list(result["errors"]) == ["region-eu-milan"]
    assert set(result["stacks"]) == {*stacks, *partners} - {"region-eu-milan"}
    unique = [v for v in result["violations"] if v["policy"] == "unique-hosts"]
    assert sorted(v["stack"] for v in unique) == partners  # once each, not doubled
