"""The layers of ARCHITECTURE.md: each package imports only from the layers below it (or its own layer)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

LAYERS = {
    "foundation": 0,
    "regions": 1,
    "partners": 1,
    "gateway": 1,
    "fleet": 2,
    "components": 3,
    "policies": 3,
    "__main__": 4,
    "services": 4,
    "platformctl": 5,
    "cli": 6,
}
"""Layer of each top-level package; an import may stay in its layer or go down, never up."""


def local_imports(path: Path) -> set[str]:
    """Top-level repository packages `path` imports, at any depth of its code (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found |= {name.split(".")[0] for name in names if name.split(".")[0] in LAYERS}
    return found


def sources() -> list[Path]:
    files = [ROOT / "__main__.py"]
    for package in LAYERS:
        if (ROOT / package).is_dir():
            files += sorted((ROOT / package).rglob("*.py"))
    return files


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_runs_up_a_layer(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0].removesuffix(".py")
    upward = {name for name in local_imports(path) if LAYERS[name] > LAYERS[package]}
    assert not upward, f"{path.relative_to(ROOT)} ({package}) imports from higher layers: {sorted(upward)}"


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from platformctl.changes import Mode\n")
    assert local_imports(module) == {"platformctl"}


def test_naming_is_imported_not_retyped() -> None:
    """Conventions live in foundation.naming: no component or policy spells out a tenant namespace or role."""
    for folder in ("components", "policies"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for literal in ('f"partner-{', 'f"PARTNER_{', 'f"tier-{', 'f"PLATFORM_{'):
                assert literal not in text, f"{path.relative_to(ROOT)} retypes a naming convention ({literal})"
