"""`platformctl plan`: plan stacks offline, check the policies, optionally diff against an earlier plan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platformctl.errors import InputError
from platformctl.offline.planner import StackPlan, plan_stacks
from platformctl.offline.recorder import RecordedResource
from platformctl.planjson import diff_plans, load_plan, plan_document
from platformctl.repo import Repo
from platformctl.stacks import StackName, parse_stack_name
from policies.context import context_for
from policies.rules import Resource, Violation, evaluate


@dataclass
class PlanResult:
    stacks: list[str]
    """The stacks asked for, in planning order."""
    plans: dict[str, StackPlan]
    """Every planned stack (the requested ones, and dependencies not served from the reference cache)."""
    document: dict[str, Any]
    """The JSON document (`--json`), diffed when an earlier plan was given."""
    violations: list[Violation] = field(default_factory=list)
    """Policy findings on the requested stacks."""

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def warnings(self) -> list[str]:
        return [w for name in self.stacks for w in self.plans[name].recording.warnings]


def select_stacks(repo: Repo, names: list[str], everything: bool) -> list[StackName]:
    if everything and names:
        raise InputError.single("arguments", "STACK", "give stack names or --all, not both")
    if everything:
        return repo.stack_names()
    if not names:
        raise InputError.single("arguments", "STACK", "name at least one stack, or pass --all")
    stacks = []
    for name in dict.fromkeys(names):
        stack = parse_stack_name(name)
        if not stack.config_file(repo.root).is_file():
            raise InputError.single("arguments", "STACK", f"stack {name!r} has no file in stacks/")
        stacks.append(stack)
    return stacks


def check_policies(root: Path, plan: StackPlan) -> list[Violation]:
    stack = parse_stack_name(plan.stack)
    context = context_for(root, stack, plan.config)
    return evaluate(policy_resources(plan.recording.resources), context)


def policy_resources(recorded: list[RecordedResource]) -> list[Resource]:
    """Recorded resources as the policies see them (as an analyzer sees a real preview's)."""
    return [
        Resource(
            r.urn,
            r.type,
            r.name,
            r.inputs,
            r.parent,
            r.retain_on_delete,
            tuple(r.dependencies),
            {key: tuple(urns) for key, urns in r.property_dependencies.items()},
        )
        for r in recorded
    ]


def run_plan(
    repo: Repo,
    stacks: list[StackName],
    *,
    workers: int | None = None,
    against: Path | None = None,
    include_removed: bool = False,
    progress: Callable[[str], None] | None = None,
) -> PlanResult:
    old = load_plan(against) if against else None
    plans = plan_stacks(repo.root, stacks, workers=workers, progress=progress, cache_dir=repo.state_dir / "cache")
    requested = [str(s) for s in sorted(stacks, key=lambda s: (s.rank, s.key))]
    document = plan_document({name: plans[name].preview() for name in requested})
    if old is not None:
        document = diff_plans(old, document, include_removed=include_removed)
    violations = [v for name in requested for v in check_policies(repo.root, plans[name])]
    return PlanResult(stacks=requested, plans=plans, document=document, violations=violations)
