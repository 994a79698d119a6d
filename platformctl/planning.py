"""`platformctl plan`: plan stacks offline, check the policies, optionally diff against an earlier plan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet.repo import Repo
from foundation.errors import InputError
from foundation.stacks import StackName, parse_stack_name
from platformctl.offline.planner import StackPlan, plan_stacks
from platformctl.offline.recorder import RecordedResource
from platformctl.planjson import diff_plans, load_plan, plan_document
from policies.context import context_for
from policies.rules import Resource, Violation, evaluate, hosts_claimed_twice


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

    def against(self, earlier: dict[str, Any]) -> PlanResult:
        """This plan with its steps diffed against an earlier plan document (create/update/delete/same)."""
        document = diff_plans(earlier, self.document, include_removed=False)
        return PlanResult(self.stacks, self.plans, document, self.violations)

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def warnings(self) -> list[str]:
        """The program's warnings on the requested stacks, each once (a residency warning is one, however many
        stacks or reads met it)."""
        return list(dict.fromkeys(w for name in self.stacks for w in self.plans[name].recording.warnings))


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
        if not repo.has_stack(stack):
            raise InputError.single("arguments", "STACK", f"stack {name!r} has no file in stacks/")
        stacks.append(stack)
    return stacks


def check_policies(repo: Repo, plan: StackPlan) -> list[Violation]:
    stack = parse_stack_name(plan.stack)
    context = context_for(repo, stack, plan.config)
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
            r.provider,
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
    plans = plan_stacks(repo, stacks, workers=workers, progress=progress, cache_dir=repo.state_dir / "cache")
    requested = [str(s) for s in sorted(stacks, key=lambda s: (s.rank, s.key))]
    document = plan_document({name: plans[name].preview() for name in requested})
    if old is not None:
        document = diff_plans(old, document, include_removed=include_removed)
    violations = [v for name in requested for v in check_policies(repo, plans[name])]
    violations += hosts_claimed_twice({name: policy_resources(plans[name].recording.resources) for name in requested})
    return PlanResult(stacks=requested, plans=plans, document=document, violations=violations)
