"""Exporting a commit's tree for ci-preview."""

from __future__ import annotations

import subprocess
from pathlib import Path

from platformctl.ci.git import export_tree


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_tool_state_committed_to_a_branch_is_not_exported(tmp_path: Path) -> None:
    """A branch that commits `.platformctl/` (a forged plan cache, say) does not get it into the tree ci-preview
    plans: the commit's own files are planned."""
    repo = tmp_path / "repo"
    (repo / ".platformctl" / "cache").mkdir(parents=True)
    (repo / ".platformctl" / "cache" / "partner-acme-voice.plan").write_text("forged\n")
    (repo / "stacks").mkdir()
    (repo / "stacks" / "Pulumi.global.yaml").write_text("config: {}\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A", "-f")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "forged cache")
    tree = export_tree(repo, _git(repo, "rev-parse", "HEAD"), tmp_path / "export")
    assert (tree / "stacks" / "Pulumi.global.yaml").is_file()
    assert not (tree / ".platformctl").exists()
