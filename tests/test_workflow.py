"""The pull-request workflow: valid for GitHub Actions, and wired to ci-preview the way the issue asks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "preview.yml"


def test_the_workflow_validates_against_the_github_actions_schema() -> None:
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert checker, "check-jsonschema is a dev dependency"
    done = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_workflow_would_be_caught(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:", 1))
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert checker
    done = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0


def test_pull_requests_get_one_edited_comment_and_a_failing_check() -> None:
    from platformctl.ci import Preview, markdown

    doc = yaml.safe_load(WORKFLOW.read_text())
    triggers = doc[True]  # YAML 1.1 reads the `on` key as a boolean
    assert set(triggers) == {"pull_request", "push"}
    steps = doc["jobs"]["preview"]["steps"]
    scripts = "\n".join(str(s.get("run", "")) + str(s.get("with", {}).get("script", "")) for s in steps)
    assert "platformctl ci-preview --base" in scripts
    assert "updateComment" in scripts and "createComment" in scripts
    marker = markdown(Preview(base="a" * 40, head="b" * 40, affected={})).splitlines()[0]
    assert marker in scripts  # the comment is found again by the marker ci-preview writes
    assert steps[-1]["if"] == "steps.preview.outputs.exit != '0'" and "exit 1" in steps[-1]["run"]


def test_main_previews_with_the_policy_pack_then_updates() -> None:
    deploy = yaml.safe_load(WORKFLOW.read_text())["jobs"]["deploy"]
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert deploy["env"]["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"
    assert deploy["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"
    script = "\n".join(str(s.get("run", "")) for s in deploy["steps"])
    assert script.index("platformctl preview") < script.index("platformctl up")
    assert (ROOT / "policies" / "PulumiPolicy.yaml").is_file()  # `platformctl preview|up` pass it as a policy pack
