"""No module of the program or the tool over 500 lines: past that a module holds more than one concern (issue 20).
Tests are exempt (a test module follows the module it tests); so are virtualenvs, build output and caches."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT

MOST_LINES = 500
SKIPPED_TOP_LEVEL = {"tests", "build", "dist"}
"""Folders at the repository's top whose modules are not the program's or the tool's."""


def counted(path: Path) -> bool:
    parts = path.relative_to(ROOT).parts
    if parts[0] in SKIPPED_TOP_LEVEL:
        return False
    # dot-folders (.venv, .git, .mypy_cache, .platformctl), caches and packaging metadata
    return not any(p.startswith(".") or p == "__pycache__" or p.endswith(".egg-info") for p in parts[:-1])


def line_counts(root: Path) -> dict[str, int]:
    return {
        str(path.relative_to(root)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(root.rglob("*.py"))
        if counted(path)
    }


def test_no_module_over_500_lines() -> None:
    counts = line_counts(ROOT)
    offenders = {path: lines for path, lines in counts.items() if lines > MOST_LINES}
    assert not offenders, f"modules over {MOST_LINES} lines (split them by concern):\n" + "\n".join(
        f"  {path}: {lines}" for path, lines in sorted(offenders.items(), key=lambda item: -item[1])
    )


def test_the_count_sees_the_tree() -> None:
    counts = line_counts(ROOT)
    assert "__main__.py" in counts and "cli/app.py" in counts and "foundation/errors.py" in counts
    assert not any(path.startswith(("tests/", ".venv/")) for path in counts)
