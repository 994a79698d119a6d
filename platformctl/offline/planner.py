"""Plan stacks offline in dependency order and shape the result like `pulumi preview --json`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from partners.spec import load_spec
from platformctl.errors import InputError
from platformctl.offline.recorder import StackRecording, record_stack
from platformctl.stackconfig import load_stack_config
from platformctl.stacks import GLOBAL, StackKind, StackName, region_stack

STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass
class StackPlan:
    stack: str
    """Stack name."""
    recording: StackRecording
    """What the program registered."""

    def preview(self) -> dict[str, Any]:
        """The stack's plan in the shape of `pulumi preview --json` (every step a create)."""
        steps = [
            {"op": "create", "urn": r.urn, "newState": r.new_state()}
            for r in self.recording.resources
        ]
        summary = Counter(step["op"] for step in steps)
        return {
            "steps": steps,
            "changeSummary": dict(summary),
            "outputs": self.recording.outputs,
            "diagnostics": [{"severity": "warning", "message": w} for w in self.recording.warnings],
        }


def dependencies(root: Path, stack: StackName) -> list[StackName]:
    """The stacks whose outputs `stack` reads."""
    if stack.kind is StackKind.GLOBAL:
        return []
    if stack.kind is StackKind.REGION:
        return [GLOBAL]
    spec = load_spec(root / "partners" / f"{stack.key}.yaml", f"partners/{stack.key}.yaml")
    return [GLOBAL, region_stack(spec.home_region)]


def with_dependencies(root: Path, stacks: list[StackName]) -> list[StackName]:
    """`stacks` plus everything they read, in planning order (global, regions, partners)."""
    needed: set[StackName] = set()
    pending = list(stacks)
    while pending:
        stack = pending.pop()
        if stack not in needed:
            needed.add(stack)
            pending.extend(dependencies(root, stack))
    return sorted(needed, key=lambda s: (s.rank, s.key))


def plan_stacks(root: Path, stacks: list[StackName]) -> dict[str, StackPlan]:
    """Plan `stacks` (and what they read) in order; returns every planned stack by name."""
    ordered = with_dependencies(root, stacks)
    configs = {stack: load_stack_config(root, stack) for stack in ordered}
    recordings: dict[str, StackRecording] = {}
    for stack in ordered:
        config = configs[stack]
        recordings[str(stack)] = record_stack(
            root, str(stack), config.values, recordings.get, secret_keys=config.secret_keys
        )
    return {name: StackPlan(name, recording) for name, recording in recordings.items()}


def resource_count(plan: StackPlan) -> int:
    return sum(1 for r in plan.recording.resources if r.type != STACK_TYPE)


__all__ = ["InputError", "StackPlan", "dependencies", "plan_stacks", "with_dependencies"]
