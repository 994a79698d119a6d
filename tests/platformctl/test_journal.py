"""Journals left by crashed changes: a damaged one is ignored, never obeyed and never an internal error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import tree_snapshot


@pytest.mark.parametrize(
    "document",
    [
        {"locks": ["partner-acme-voice", "../../etc/x"], "phase": "writing", "before": {}, "after": {}},
        {"locks": ["partner-acme-voice"], "phase": "writing", "before": {"stacks": None}, "after": {"stacks": None}},
        {
            "locks": ["partner-acme-voice"],
            "phase": "writing",
            "before": {"Pulumi.yaml": None},
            "after": {"Pulumi.yaml": None},
        },
        {
            "locks": ["partner-acme-voice"],
            "phase": "writing",
            "before": {"__main__.py": "cHJpbnQoKQ=="},
            "after": {"__main__.py": None},
        },
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


def test_recovery_never_undoes_an_edit_made_after_the_crash(cli, repo_copy: Path) -> None:
    from platformctl import journal as journals

    spec = repo_copy / "partners" / "crash-co.yaml"
    stack = repo_copy / "stacks" / "Pulumi.partner-crash-co.yaml"
    # The crashed run meant to write both files and got as far as the spec.
    journals.begin(
        repo_copy, repo_copy / ".platformctl", ["partner-crash-co"], {spec: b"id: crash-co\n", stack: b"config: {}\n"}
    )
    spec.write_text("id: crash-co  # fixed by hand after the crash\n")
    stack.write_text("config: {}  # made by hand\n")
    run = cli("offboard-partner", "crash-co", "--no-apply", code=2, root=repo_copy)
    assert "changed since" in run.err and "partners/crash-co.yaml" in run.err
    assert spec.read_text() == "id: crash-co  # fixed by hand after the crash\n"
    assert stack.read_text() == "config: {}  # made by hand\n"


def test_recovery_undoes_exactly_what_the_crashed_run_wrote(repo_copy: Path) -> None:
    from platformctl import journal as journals

    spec = repo_copy / "partners" / "crash-co.yaml"
    journal = journals.begin(repo_copy, repo_copy / ".platformctl", ["partner-crash-co"], {spec: b"id: crash-co\n"})
    spec.write_bytes(b"id: crash-co\n")
    (note,) = journals.recover(journals.pending(repo_copy, repo_copy / ".platformctl"))
    assert "rolled back" in note and not spec.exists() and not journal.path.exists()


def test_an_unreadable_journal_is_named_by_validate(cli, repo_copy: Path) -> None:
    journal = repo_copy / ".platformctl" / "journal" / "garbage.json"
    journal.parent.mkdir(parents=True)
    journal.write_text("{not json")
    run = cli("validate", code=2, root=repo_copy)
    assert ".platformctl/journal/garbage.json" in run.err and "not a readable change journal" in run.err
