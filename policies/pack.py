"""The policy rules as a pulumi-policy pack: the same functions, run by `pulumi preview --policy-pack policies`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy
from pulumi_policy import Policy as PackPolicy

from fleet.repo import Repo
from foundation.errors import PlatformError
from foundation.stacks import parse_stack_name
from policies.context import context_for
from policies.hosts import claimed_hosts
from policies.reads import narrowed_fleet, rule_view
from policies.rules import POLICIES, Policy, Resource, StackContext

ROOT = Path(__file__).resolve().parent.parent
LEVELS = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY}


def stack_of(urns: list[str]) -> str | None:
    """The stack name, read from a URN (urn:pulumi:<stack>::<project>::...): analyzers are not told it."""
    for urn in urns:
        if urn.startswith("urn:pulumi:"):
            return urn.split("::", 1)[0].removeprefix("urn:pulumi:")
    return None


def resources_of(args: StackValidationArgs) -> list[Resource]:
    # Analyzers do not see retainOnDelete; counting data as retained keeps that (advisory) rule offline-only.
    resources = [
        Resource(
            r.urn,
            r.resource_type,
            r.name,
            dict(r.props),
            r.parent.urn if r.parent else "",
            True,
            r.provider.urn if r.provider else "",
            tuple(d.urn for d in r.dependencies or []),
            {key: tuple(d.urn for d in deps) for key, deps in (r.property_dependencies or {}).items()},
        )
        for r in args.resources
    ]
    # Analyzers see providers only through the resources they manage: add each once, as the offline plan has it.
    seen = {r.urn for r in resources}
    for r in args.resources:
        provider = r.provider
        if provider is not None and provider.urn not in seen:
            seen.add(provider.urn)
            resources.append(Resource(provider.urn, provider.resource_type, provider.name, dict(provider.props)))
    return resources


class _Contexts:
    """Each stack's policy context, worked out once per pack (every policy of a preview asks for it, and a
    partner's context reads the whole fleet's specs)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._found: dict[str, StackContext | PlatformError] = {}

    def of(self, stack_name: str) -> StackContext:
        if stack_name not in self._found:
            try:
                stack = parse_stack_name(stack_name)
                repo = Repo(self.root)
                self._found[stack_name] = context_for(repo, stack, repo.stack_config(stack).values)
            except PlatformError as exc:
                self._found[stack_name] = exc
        found = self._found[stack_name]
        if isinstance(found, PlatformError):
            raise found
        return found


def _validator(policy: Policy, level: str, contexts: _Contexts) -> Any:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = resources_of(args)
        stack_name = stack_of([r.urn for r in resources])
        if stack_name is None:
            return
        try:
            context = contexts.of(stack_name)
        except PlatformError as exc:
            report_violation(f"cannot evaluate {policy.name} for {stack_name}: {exc}", None)
            return
        view = rule_view(context, policy, narrowed_fleet(context, claimed_hosts(resources)))
        if policy.level_for(view) != level:
            return
        for urn, message in dict.fromkeys(policy.check(resources, view)):
            report_violation(message, urn)

    return validate


def pack_policies(root: Path = ROOT) -> list[PackPolicy]:
    """One pack policy per rule and level (a rule whose level depends on the stack appears at both levels)."""
    policies: list[PackPolicy] = []
    contexts = _Contexts(root)
    for policy in POLICIES:
        levels = ["mandatory", "advisory"] if policy.levels else [policy.level]
        for level in levels:
            name = policy.name if level == policy.level else f"{policy.name}-{level}"
            policies.append(
                StackValidationPolicy(
                    name=name,
                    description=policy.description,
                    validate=_validator(policy, level, contexts),
                    enforcement_level=LEVELS[level],
                )
            )
    return policies
