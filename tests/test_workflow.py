"""The pull-request workflow: valid for GitHub Actions, and wired to ci-preview the way the issue asks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.test_ci_preview import change, git, project_repo  # noqa: F401  (a git repository of the project)
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
    steps = doc["jobs"]["report"]["steps"]
    scripts = "\n".join(str(s.get("run", "")) + str(s.get("with", {}).get("script", "")) for s in steps)
    assert "platformctl merge-plans shards/*.json --json preview.json --markdown preview.md" in scripts
    assert "updateComment" in scripts and "createComment" in scripts
    assert sum("createComment" in str(s.get("with", {}).get("script", "")) for s in steps) == 1  # one comment
    marker = markdown(Preview(base="a" * 40, head="b" * 40, affected={})).splitlines()[0]
    assert marker in scripts  # the comment is found again by the marker ci-preview writes
    assert steps[-1]["if"] == "steps.preview.outputs.exit != '0'" and "exit 1" in steps[-1]["run"]


def test_many_affected_stacks_are_previewed_by_a_matrix_of_shards_and_merged() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    jobs = doc["jobs"]
    assert int(doc["env"]["SHARD_SIZE"]) == 40 and int(doc["env"]["MAX_SHARDS"]) == 8
    affected, preview, report = jobs["affected"], jobs["preview"], jobs["report"]
    assert affected["if"] == "github.event_name == 'pull_request'"
    split = next(s for s in affected["steps"] if s.get("id") == "split")
    assert "ci-preview" in split["run"] and "--list-affected" in split["run"] and "$SHARD_SIZE" in split["run"]
    assert affected["outputs"]["shards"] == "${{ steps.split.outputs.shards }}"
    assert preview["needs"] == "affected"
    assert preview["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.affected.outputs.shards) }}"
    assert preview["strategy"]["fail-fast"] is False
    run = "\n".join(str(s.get("run", "")) for s in preview["steps"])
    assert '--shard "${{ matrix.shard }}/${{ needs.affected.outputs.count }}"' in run
    upload = next(s for s in preview["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["name"] == "preview-shard-${{ matrix.shard }}"
    assert report["needs"] == ["affected", "preview"]
    download = next(s for s in report["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"]["pattern"] == "preview-shard-*" and download["with"]["path"] == "shards"
    assert report["permissions"]["pull-requests"] == "write" and "permissions" not in preview
    commenting = [j for j in jobs.values() if "createComment" in str(j.get("steps"))]
    assert commenting == [report]


def test_main_previews_with_the_policy_pack_then_updates() -> None:
    deploy = yaml.safe_load(WORKFLOW.read_text())["jobs"]["deploy"]
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert deploy["env"]["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"
    assert deploy["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"
    script = "\n".join(str(s.get("run", "")) for s in deploy["steps"])
    assert script.index("platformctl preview") < script.index("platformctl up")
    assert (ROOT / "policies" / "PulumiPolicy.yaml").is_file()  # `platformctl preview|up` pass it as a policy pack


@pytest.mark.parametrize(("size", "most", "shards"), [("40", "8", 1), ("5", "8", 4), ("5", "3", 3), ("19", "8", 1)])
def test_the_split_step_chooses_the_shards_from_the_affected_count(
    project_repo: Path,  # noqa: F811
    tmp_path: Path,
    size: str,
    most: str,
    shards: int,
) -> None:
    """The affected job's script, run by bash on a pull request that touches policies/ (all 19 stacks)."""
    if not (project_repo / ".venv").exists():
        change(project_repo, "every-stack", lambda repo: (repo / "policies" / "README.md").write_text("policies\n"))
        git(project_repo, "update-ref", "refs/remotes/origin/main", "base")
        # The job's `.venv/bin/platformctl`, linked after the commit (`.venv/` ignores directories, not links).
        (project_repo / ".venv").symlink_to(Path(sys.executable).parent.parent)
    step = next(s for s in yaml.safe_load(WORKFLOW.read_text())["jobs"]["affected"]["steps"] if s.get("id") == "split")
    output = tmp_path / "github-output"
    env = {**os.environ, "GITHUB_BASE_REF": "main", "GITHUB_OUTPUT": str(output), "SHARD_SIZE": size}
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", step["run"]],
        cwd=project_repo,
        env={**env, "MAX_SHARDS": most},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"19 affected stack(s): {shards} shard(s)" in done.stdout
    values = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert values == {
        "base": git(project_repo, "rev-parse", "origin/main"),  # every shard compares against this one commit
        "count": str(shards),
        "shards": json.dumps(list(range(1, shards + 1))).replace(" ", ""),
    }


def test_shards_share_one_base_and_a_failed_merge_still_replaces_the_comment() -> None:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    preview_run = next(s["run"] for s in jobs["preview"]["steps"] if "ci-preview" in s.get("run", ""))
    assert '--base "${{ needs.affected.outputs.base }}"' in preview_run  # not origin/<base>, which can move
    upload = next(s for s in jobs["preview"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["overwrite"] is True
    merge_run = next(s["run"] for s in jobs["report"]["steps"] if "merge-plans" in s.get("run", ""))
    assert "<!-- platformctl-ci-preview -->" in merge_run and "could not be completed" in merge_run
