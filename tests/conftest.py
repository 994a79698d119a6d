"""Shared fixtures: the one place that runs the Pulumi program under the SDK's mocks."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from platformctl.offline.planner import StackPlan, plan_stacks
from platformctl.offline.recorder import RecordedResource
from platformctl.stacks import parse_stack_name

ROOT = Path(__file__).resolve().parents[1]
REPO_CONTENT = ("Pulumi.yaml", "__main__.py", "stacks", "partners", "regions", "gateway")


def all_stacks(root: Path) -> list[str]:
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (root / "stacks").glob("Pulumi.*.yaml"))


class Plan:
    """Planned stacks with lookups that keep tests short."""

    def __init__(self, plans: dict[str, StackPlan]) -> None:
        self.plans = plans

    def resources(self, stack: str, type_: str | None = None) -> list[RecordedResource]:
        return [r for r in self.plans[stack].recording.resources if type_ is None or r.type == type_]

    def one(self, stack: str, type_: str, name: str) -> RecordedResource:
        matches = [r for r in self.resources(stack, type_) if r.name == name]
        assert len(matches) == 1, f"{stack}: expected one {type_} named {name}, found {len(matches)}"
        return matches[0]

    def outputs(self, stack: str) -> dict[str, Any]:
        return self.plans[stack].recording.outputs

    def preview_json(self, stack: str) -> str:
        return json.dumps(self.plans[stack].preview())


@pytest.fixture(scope="session")
def fleet() -> Plan:
    """Every stack of the repository's example fleet, planned once under the mocks."""
    return Plan(plan_stacks(ROOT, [parse_stack_name(s) for s in all_stacks(ROOT)]))


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A scratch copy of the platform repository's program and data, to plan edited specs and stacks."""
    for item in REPO_CONTENT:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, tmp_path / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tmp_path / item)
    return tmp_path


@pytest.fixture
def plan_in() -> Callable[..., Plan]:
    """Plan the given stacks of a repository (usually `repo_copy`)."""

    def run(root: Path, *stacks: str) -> Plan:
        return Plan(plan_stacks(root, [parse_stack_name(s) for s in stacks]))

    return run
