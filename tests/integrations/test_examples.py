"""Every example integration goes through the whole life cycle and its stack plans with no policy violation."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import ROOT

EXAMPLES = sorted((ROOT / "integrations" / "examples").glob("*.yaml"))


def test_every_example_is_reviewed_published_and_planned_clean(cli, repo_copy: Path, tmp_path: Path) -> None:
    ids = []
    for example in EXAMPLES:
        integration_id = yaml.safe_load(example.read_text())["id"]
        ids.append(integration_id)
        cli("integration", "submit", str(example), "--yes", root=repo_copy)
        cli("integration", "approve", integration_id, "--reviewer", "Dana Reviewer", root=repo_copy)
        cli("integration", "publish", integration_id, "--no-apply", root=repo_copy)
    assert len(ids) >= 3
    plan_file = tmp_path / "plan.json"
    cli("plan", *(f"integration-{i}" for i in ids), "--json", str(plan_file), root=repo_copy)
    document = json.loads(plan_file.read_text())
    assert document["violations"] == []
    for integration_id in ids:
        steps = document["stacks"][f"integration-{integration_id}"]["steps"]
        assert any(s["newState"]["type"] == "kubernetes:core/v1:Namespace" for s in steps)
