"""Journals left by crashed changes: a damaged one is ignored, never obeyed and never an internal error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import tree_snapshot


@pytest.mark.parametrize(
    "document",
    [
        {"locks": ["partner-acme-voice", "../../etc/x"], "phase": "writing", "before": {}},
        {"locks": ["partner-acme-voice"], "phase": "writing", "before": {"stacks": None}},
        {"locks": ["partner-acme-voice"], "phase": "writing", "before": {"Pulumi.yaml": None}},
        {"locks": ["partner-acme-voice"], "phase": "writing", "before": {"__main__.py": "cHJpbnQoKQ=="}},
    ],
)
def test_a_damaged_journal_restores_nothing_and_stops_nothing(cli, repo_copy: Path, document: dict) -> None:
    journal = repo_copy / ".platformctl" / "journal" / "damaged.json"
    journal.parent.mkdir(parents=True)
    journal.write_text(json.dumps(document))
    before = tree_snapshot(repo_copy)
    program = {name: (repo_copy / name).read_bytes() for name in ("Pulumi.yaml", "__main__.py")}
    cli("offboard-partner", "acme-voice", "--no-apply", root=repo_copy)
    after = tree_snapshot(repo_copy)
    changed = {path for path in set(before) | set(after) if before.get(path) != after.get(path)}
    assert {path for path in changed if not path.startswith(".platformctl")} == {
        "stacks/Pulumi.partner-acme-voice.yaml"
    }
    assert program == {name: (repo_copy / name).read_bytes() for name in program}
