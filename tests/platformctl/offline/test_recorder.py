"""The recorder: what a plan refuses that the engine would refuse too."""

from __future__ import annotations

from pathlib import Path

import pytest

from foundation.errors import EngineError
from platformctl.offline.recorder import record_stack

PROGRAM = """
import pulumi

class Thing(pulumi.CustomResource):
    def __init__(self, name):
        super().__init__("test:index:Thing", name, {"size": 1})

Thing("same")
Thing("same")
"""


def test_a_duplicate_urn_is_refused(tmp_path: Path) -> None:
    (tmp_path / "__main__.py").write_text(PROGRAM)
    with pytest.raises(EngineError, match=r"duplicate resource URN.*test:index:Thing::same"):
        record_stack(tmp_path, "global", {}, lambda name: None)


def test_distinct_names_plan(tmp_path: Path) -> None:
    (tmp_path / "__main__.py").write_text(PROGRAM.replace('Thing("same")\nThing("same")', 'Thing("a")\nThing("b")'))
    recording = record_stack(tmp_path, "global", {}, lambda name: None)
    assert sorted(r.name for r in recording.resources if r.type == "test:index:Thing") == ["a", "b"]
