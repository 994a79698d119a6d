"""Plan stacks through the result cache: a stack is planned only when its key changed, and a stack it reads only
when its outputs are needed and the cache cannot give them."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from fleet.repo import Repo, active, for_program
from foundation.stacks import StackKind, StackName, parse_stack_name
from platformctl.offline.keys import stack_key
from platformctl.offline.planner import (
    SEQUENTIAL_BELOW,
    PlanningPool,
    Progress,
    StackPlan,
    WorkerPool,
    plan_and_finish,
    with_dependencies,
)
from platformctl.offline.store import CachedResult, ResultCache, masked_references, preview_text
from policies.context import context_for
from policies.hosts import claimed_hosts
from policies.rules import Resource, context_fingerprint, evaluate

if TYPE_CHECKING:
    from platformctl.offline.recorder import RecordedResource


@dataclass
class StackResult:
    """One requested stack's result, as the cache holds it (planned in this run or an earlier one)."""

    entry: CachedResult
    """The stack's cache entry."""

    @property
    def stack(self) -> str:
        return self.entry.stack

    @property
    def fragment(self) -> str:
        return self.entry.fragment

    @property
    def summary(self) -> dict[str, int]:
        return self.entry.summary

    @property
    def warnings(self) -> list[str]:
        return self.entry.warnings

    @cached_property
    def preview(self) -> dict[str, Any]:
        """The stack's plan (steps, changeSummary, outputs, diagnostics); parsed only when someone asks."""
        return json.loads(self.fragment)

    def policy_resources(self) -> list[Resource]:
        return step_resources(self.preview["steps"])


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
            r.read_id,
        )
        for r in recorded
    ]


def step_resources(steps: list[dict[str, Any]]) -> list[Resource]:
    """A planned stack's steps as the policies see them: the same fields `policy_resources` takes from a
    recording, read back from the plan JSON (whose newState carries every one of them)."""
    resources = []
    for step in steps:
        state = step.get("newState") or {}
        resources.append(
            Resource(
                step["urn"],
                state.get("type", ""),
                step["urn"].rsplit("::", 1)[-1],
                state.get("inputs", {}),
                state.get("parent", ""),
                bool(state.get("retainOnDelete", False)),
                state.get("provider", ""),
                tuple(state.get("dependencies", ())),
                {key: tuple(urns) for key, urns in state.get("propertyDependencies", {}).items()},
                str(state.get("id") or "") if state.get("external") else "",
            )
        )
    return resources


def dated_facts(repo: Repo, stack: StackName, today: datetime.date) -> str:
    """What the program decides from today's date, for the stack's key: a region refuses a Kubernetes version
    out of standard support, so the day that version's support ends is a change."""
    if stack.kind is not StackKind.REGION:
        return ""
    version = repo.stack_config(stack).values.get("platform:kubernetesVersion")
    if not isinstance(version, str):
        return ""
    return f"kubernetes-support:{repo.catalog().cloud.standard_support_problem(version, today) or 'ok'}"


def stack_keys(
    repo: Repo, ordered: list[StackName], deps: dict[StackName, list[StackName]], today: datetime.date
) -> dict[str, str]:
    keys: dict[str, str] = {}
    for stack in ordered:  # planning order: a stack's dependencies come before it
        config = repo.stack_config(stack)
        keys[str(stack)] = stack_key(
            repo.root,
            json.dumps([config.values, config.secret_keys], sort_keys=True, default=str).encode(),
            repo.partner_inputs(stack.subject)
            if stack.kind is StackKind.PARTNER
            else repo.integration_inputs(stack.subject)
            if stack.kind is StackKind.INTEGRATION
            else None,
            [keys[str(d)] for d in deps[stack]],
            dated_facts(repo, stack, today),
        )
    return keys


def finish_entry(plan: StackPlan) -> CachedResult:
    """Where the stack was planned (a worker): its cache entry, policy findings included; the parent adds the key."""
    entry = entry_from_plan(plan, "")
    assert plan.root is not None, "the planner records where a stack was planned from"
    repo = for_program(plan.root)
    context = context_for(repo, parse_stack_name(plan.stack), plan.config)
    entry.policy_context = context_fingerprint(context, entry.claims)
    entry.violations = [v.__dict__ for v in evaluate(policy_resources(plan.recording.resources), context)]
    return entry


def entry_from_plan(plan: StackPlan, key: str) -> CachedResult:
    preview = plan.preview()
    recording = plan.recording
    masked, lossy = masked_references(plan.stack, recording.reference_outputs, recording.secret_outputs)
    return CachedResult(
        stack=plan.stack,
        key=key,
        fragment=preview_text(preview),
        summary=dict(preview["changeSummary"]),
        reference_outputs=masked,
        secret_outputs=list(recording.secret_outputs),
        lossy=lossy,
        warnings=list(recording.warnings),
        claims=sorted(claimed_hosts(policy_resources(recording.resources))),
    )


def plan_results(
    repo: Repo,
    stacks: list[StackName],
    cache: ResultCache,
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict[str, StackResult]:
    """The results of `stacks` (by name, in planning order): cached ones as they are, the others planned (with
    the stacks they read, where the cache cannot give those stacks' outputs) and cached.

    With a cache to read, one planning worker is forked before anything else: when a few stacks turn out to need
    planning, it has imported the SDK on another core meanwhile (most of the time a single stack's plan takes)."""
    with active(repo):
        prewarmed: WorkerPool[Any] | None = WorkerPool(repo.root, 1) if cache.populated() else None
        try:
            return _plan_results(repo, stacks, cache, workers, progress, prewarmed)
        finally:
            if prewarmed is not None:
                prewarmed.close()


def _plan_results(
    repo: Repo,
    stacks: list[StackName],
    cache: ResultCache,
    workers: int | None,
    progress: Progress | None,
    prewarmed: WorkerPool[Any] | None,
) -> dict[str, StackResult]:
    cache.watch(repo.root)  # before the keys read anything: an edit from here on keeps this run out of the cache
    ordered, deps = with_dependencies(repo, stacks)
    keys = stack_keys(repo, ordered, deps, datetime.date.today())
    entries = {str(stack): cache.get(str(stack), keys[str(stack)]) for stack in ordered}
    needed = {stack for stack in stacks if entries[str(stack)] is None}
    pending = list(needed)
    while pending:
        for dependency in deps[pending.pop()]:
            entry = entries[str(dependency)]
            if dependency not in needed and (entry is None or entry.lossy):
                needed.add(dependency)
                pending.append(dependency)
    known = {str(s): entry for s in ordered if s not in needed and (entry := entries[str(s)]) is not None}
    to_plan = [s for s in ordered if s in needed]
    few = len(to_plan) < SEQUENTIAL_BELOW
    pool: PlanningPool[Any] | None = prewarmed if few else None
    if pool is not prewarmed and prewarmed is not None:
        prewarmed.close()  # many stacks: plan_stacks starts a worker per core
    finished: dict[str, CachedResult] = {}
    if to_plan:
        finished = plan_and_finish(repo, to_plan, finish_entry, workers, progress, known, pool)
    # Staged only: the caller commits once the policies are checked too (`ResultCache.commit`, which drops them if
    # any input changed since `watch`: the workers may have read other bytes than the keys did).
    results: dict[str, StackResult] = {}
    for name, entry in finished.items():
        entry.key = keys[name]
        cache.put(entry)
        results[name] = StackResult(entry)
    requested = [str(s) for s in ordered if s in set(stacks)]
    return {name: results.get(name) or StackResult(_hit(entries[name])) for name in requested}


def _hit(entry: CachedResult | None) -> CachedResult:
    assert entry is not None, "a requested stack is either cached or planned"
    return entry
