"""`platformctl plan`: plan stacks offline, check the policies, optionally diff against an earlier plan."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from fleet.repo import Repo
from foundation.errors import InputError
from foundation.stacks import StackName, parse_stack_name
from platformctl.offline.planner import StackPlan
from platformctl.offline.results import StackResult, plan_results, policy_resources
from platformctl.offline.store import ResultCache
from platformctl.planjson import diff_plans, load_plan, plan_document
from policies.context import context_for
from policies.hosts import hosts_claimed_twice_in
from policies.rules import Violation, context_fingerprint, evaluate


@dataclass
class PlanResult:
    stacks: list[str]
    """The stacks asked for, in planning order."""
    results: dict[str, StackResult]
    """Each requested stack's result (planned in this run or from the cache)."""
    violations: list[Violation] = field(default_factory=list)
    """Policy findings on the requested stacks."""
    diffed: dict[str, Any] | None = None
    """The document diffed against an earlier plan (create/update/delete/same), when one was given."""

    @cached_property
    def document(self) -> dict[str, Any]:
        """The JSON document (`--json`) without its violations, diffed when an earlier plan was given."""
        if self.diffed is not None:
            return self.diffed
        return plan_document({name: self.results[name].preview for name in self.stacks})

    def against(self, earlier: dict[str, Any]) -> PlanResult:
        """This plan with its steps diffed against an earlier plan document (create/update/delete/same)."""
        document = diff_plans(earlier, self.document, include_removed=False)
        return PlanResult(self.stacks, self.results, self.violations, document)

    def summaries(self) -> dict[str, dict[str, int]]:
        """Each stack's changeSummary."""
        if self.diffed is not None:
            return {name: stack["changeSummary"] for name, stack in self.diffed["stacks"].items()}
        return {name: self.results[name].summary for name in self.stacks}

    def json_text(self, extra: dict[str, Any] | None = None) -> str:
        return "".join(self.json_pieces(extra))

    def json_pieces(self, extra: dict[str, Any] | None = None) -> list[str]:
        """The plan document as `--json` writes it: `{"stacks": ..., "violations": [...], **extra}` with indent 1.
        Byte for byte what `json.dumps(document, indent=1)` gives, but a stack's preview is copied in as the JSON
        text the cache keeps rather than parsed and dumped again (most of a warm plan's time otherwise)."""
        rest = {"violations": [v.__dict__ for v in self.violations], **(extra or {})}
        if self.diffed is not None:
            return [json.dumps({**self.diffed, **rest}, indent=1)]
        return document_pieces({name: self.results[name].fragment for name in self.stacks}, rest)

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def warnings(self) -> list[str]:
        """The program's warnings on the requested stacks, each once (a residency warning is one, however many
        stacks or reads met it)."""
        return list(dict.fromkeys(w for name in self.stacks for w in self.results[name].warnings))


def document_text(fragments: dict[str, str], extra: dict[str, Any]) -> str:
    """`json.dumps({"stacks": {name: preview, ...}, **extra}, indent=1)`, from each preview's `preview_text`."""
    return "".join(document_pieces(fragments, extra))


def document_pieces(fragments: dict[str, str], extra: dict[str, Any]) -> list[str]:
    """`document_text` in pieces, the previews among them as they are (written one after the other, a 40 MB plan
    is not copied into one string first)."""
    pieces = ['{\n "stacks": ']
    if fragments:
        pieces.append("{")
        for index, (name, text) in enumerate(fragments.items()):
            pieces += [",\n  " if index else "\n  ", json.dumps(name), ": ", text]
        pieces.append("\n }")
    else:
        pieces.append("{}")
    for key, value in extra.items():
        pieces.append(f",\n {json.dumps(key)}: {json.dumps(value, indent=1).replace(chr(10), chr(10) + ' ')}")
    pieces.append("\n}")
    return pieces


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


def stack_violations(repo: Repo, result: StackResult, cache: ResultCache) -> list[Violation]:
    """The stack's policy findings: the cached ones when the stack and its policy context are unchanged, else
    evaluated now (and staged for the cache: `run_plan` commits, if no input changed during the run)."""
    stack = parse_stack_name(result.stack)
    context = context_for(repo, stack, repo.stack_config(stack).values)
    fingerprint = context_fingerprint(context, result.entry.claims)
    entry = result.entry
    if entry.policy_context != fingerprint:
        entry.violations = [v.__dict__ for v in evaluate(result.policy_resources(), context)]
        entry.policy_context = fingerprint
        cache.put(entry)
    return [Violation(**v) for v in entry.violations]


def run_plan(
    repo: Repo,
    stacks: list[StackName],
    *,
    workers: int | None = None,
    against: Path | None = None,
    include_removed: bool = False,
    progress: Callable[[str], None] | None = None,
    use_cache: bool = True,
    prune: bool = False,
    cache: ResultCache | None = None,
) -> PlanResult:
    """Plan `stacks` (each from the result cache when nothing it depends on changed; `use_cache=False` plans
    every one and refreshes the cache) and check the policies. `prune` drops the cache entries of stacks that no
    longer have a file (for a plan of every stack). `cache` replaces the repository's own."""
    old = load_plan(against) if against else None
    cache = cache or ResultCache(repo.state_dir / "cache", read=use_cache)
    try:
        results = plan_results(repo, stacks, cache, workers=workers, progress=progress)
        if prune:
            cache.prune({str(stack) for stack in repo.stack_names()})
        requested = list(results)
        violations = [v for name in requested for v in stack_violations(repo, results[name], cache)]
        cache.commit()  # the one write: only if no input changed since the keys were read
    finally:
        cache.discard()
    violations += hosts_claimed_twice_in({name: results[name].entry.claims for name in requested})
    result = PlanResult(stacks=requested, results=results, violations=violations)
    if old is not None:
        result.diffed = diff_plans(old, result.document, include_removed=include_removed)
        result.__dict__.pop("document", None)
    return result
