"""Integration specs for the marketplace tests: the example, edited per test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT

EXAMPLE = ROOT / "integrations" / "examples" / "calsync.yaml"


def integration_doc(**changes: Any) -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc.update(changes)
    return doc


def integration_file(tmp_path: Path, name: str = "spec.yaml", **changes: Any) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(integration_doc(**changes)))
    return path


def published_calsync(root: Path, installs: tuple[str, ...] = ("acme-voice",), suspended: bool = False) -> None:
    """In the repository at `root`: calsync submitted, approved, published (and suspended), installed by `installs`."""
    from cli.app import main

    def run(*args: str) -> None:
        assert main(["--root", str(root), *args]) == 0, args

    run("integration", "submit", str(EXAMPLE), "--yes")
    run("integration", "approve", "calsync", "--reviewer", "Dana Reviewer")
    run("integration", "publish", "calsync", "--no-apply")
    if suspended:
        run("integration", "suspend", "calsync", "--no-apply")
    for partner in installs:
        spec = root / "partners" / f"{partner}.yaml"
        doc = yaml.safe_load(spec.read_text())
        doc["integrations"] = ["calsync"]
        spec.write_text(yaml.safe_dump(doc))
