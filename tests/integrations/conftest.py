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
