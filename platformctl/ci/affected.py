"""Which stacks a change between two trees affects, and why (the changed files behind each stack)."""

from __future__ import annotations

import datetime
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleet.program import data_owners, kind_modules
from foundation.errors import InputError
from foundation.naming import PARTNER_ID_PATTERN
from foundation.stacks import StackKind, StackName
from foundation.yamlio import load_yaml_file
from platformctl.ci.git import FileChange

EVERY_STACK = ("Pulumi.yaml", "policies/")
"""Changes here can alter any stack's plan or its policy results."""


def _stacks_in(tree: Path) -> set[str]:
    return {p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (tree / "stacks").glob("Pulumi.*.yaml")}


def _stack(kind: StackKind, key: str) -> str:
    """A stack's name as foundation.stacks spells it; the key comes from either side's files and is not validated
    here (a bad one is the validate step's to report, not a reason to map nothing)."""
    return str(StackName(kind, key))


def _read(path: Path) -> Any:
    """A YAML file of either side, read with the bounded loader (a pull request's files are untrusted)."""
    try:
        return load_yaml_file(path)
    except InputError:
        return None


def _home_region(tree: Path, partner_id: str) -> str | None:
    doc = _read(tree / "partners" / f"{partner_id}.yaml")
    return doc.get("home_region") if isinstance(doc, dict) else None


def _partners_homed(trees: list[Path], region: str) -> set[str]:
    return {
        _stack(StackKind.PARTNER, p.stem)
        for tree in trees
        for p in (tree / "partners").glob("*.yaml")
        if p.name not in ("tiers.yaml", "prices.yaml") and _home_region(tree, p.stem) == region
    }


def _installed(trees: list[Path], partner_id: str) -> set[str]:
    """The integration stacks whose consumers a partner's spec decides (its `integrations`, either side)."""
    found = set()
    for tree in trees:
        doc = _read(tree / "partners" / f"{partner_id}.yaml")
        listed = doc.get("integrations") if isinstance(doc, dict) else None
        found |= {_stack(StackKind.INTEGRATION, i) for i in listed or [] if isinstance(i, str)}
    return found


def _region_entries(tree: Path) -> dict[str, Any]:
    doc = _read(tree / "regions" / "regions.yaml")
    return (doc.get("regions") or {}) if isinstance(doc, dict) else {}


def affected_stacks(base: Path, head: Path, changes: list[FileChange]) -> dict[str, list[str]]:
    """Stack name → the changed files that affect it."""
    trees = [head, base]
    every = _stacks_in(head) | _stacks_in(base)
    of_kind = {kind: {s for s in every if s == kind.value or s.startswith(f"{kind.value}-")} for kind in StackKind}
    usage = [kind_modules(tree) for tree in trees]
    reasons: dict[str, set[str]] = defaultdict(set)

    def hit(stacks: set[str], path: str) -> None:
        for stack in stacks:
            reasons[stack].add(path)

    def kinds_using(modules: set[str]) -> set[str]:
        return {s for kind in StackKind for use in usage if modules & use[kind] for s in of_kind[kind]}

    for change in changes:
        for path in {change.path, change.old_path} - {None}:
            assert path is not None
            match = re.fullmatch(r"stacks/Pulumi\.(.+)\.yaml", path)
            spec = re.fullmatch(r"partners/([a-z][a-z0-9-]*)\.yaml", path)
            integration = re.fullmatch(r"integrations/([a-z][a-z0-9-]*)(?:\.review)?\.yaml", path)
            if path in EVERY_STACK or any(path.startswith(p) for p in EVERY_STACK if p.endswith("/")):
                hit(every, path)
            elif match:
                stack = match.group(1)
                hit({stack}, path)
                if stack == "global":
                    hit(every, path)
                elif stack.startswith("region-"):
                    hit(_partners_homed(trees, stack.removeprefix("region-")), path)
            elif spec and spec.group(1) not in ("tiers", "prices"):  # data files beside the specs
                hit({_stack(StackKind.PARTNER, spec.group(1))} | (_installed(trees, spec.group(1)) & every), path)
            elif integration and integration.group(1) != "rules":
                hit({_stack(StackKind.INTEGRATION, integration.group(1))} & every, path)
            elif path == "regions/regions.yaml":
                before, after = _region_entries(base), _region_entries(head)
                for code in set(before) | set(after):
                    if before.get(code) != after.get(code):
                        hit({f"region-{code}"} | _partners_homed(trees, code), path)
            elif path.endswith(".py") and not path.startswith(("tests/", "cli/", "scripts/")):
                module = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
                hit(kinds_using({module}), path)
            elif path.endswith((".yaml", ".yml", ".json")) and "/" in path:
                owners = set().union(*(data_owners(tree, path) for tree in trees))
                hit(kinds_using(owners), path)
    return {stack: sorted(paths) for stack, paths in sorted(reasons.items())}


def removed_active_partners(
    base: Path, head: Path, changes: list[FileChange], today: datetime.date | None = None
) -> list[dict[str, Any]]:
    """A change that deletes a partner's spec or stack file while the partner is active (not offboarded at base)
    would destroy a live tenant: a mandatory violation, "offboard first"."""
    today = today or datetime.date.today()
    violations = []
    removed: set[str] = set()
    for change in changes:
        if change.status not in ("D", "R"):
            continue
        path = change.old_path or change.path
        for pattern in (r"partners/([a-z][a-z0-9-]*)\.yaml", r"stacks/Pulumi\.partner-([a-z][a-z0-9-]*)\.yaml"):
            match = re.fullmatch(pattern, path)
            if match and match.group(1) not in ("tiers", "prices"):
                removed.add(match.group(1))
    for partner_id in sorted(removed):
        if (head / "partners" / f"{partner_id}.yaml").is_file() and (
            head / "stacks" / f"Pulumi.partner-{partner_id}.yaml"
        ).is_file():
            continue  # renamed or moved back: still there
        doc = _read(base / "stacks" / f"Pulumi.partner-{partner_id}.yaml")
        config = doc.get("config") if isinstance(doc, dict) else None
        offboarded = isinstance(config, dict) and bool(config.get("platform:offboardedOn"))
        if offboarded:
            waiting = _retention_left(base, partner_id, str(config.get("platform:offboardedOn")), today)  # type: ignore[union-attr]
            if waiting:
                violations.append(
                    {
                        "stack": _stack(StackKind.PARTNER, partner_id),
                        "urn": f"stack:{_stack(StackKind.PARTNER, partner_id)}",
                        "policy": "retention-first",
                        "level": "mandatory",
                        "message": f"partner {partner_id!r} was offboarded, but {waiting}: its files (and the stack "
                        "that keeps its data) may only go after that",
                    }
                )
            continue
        if not offboarded:
            violations.append(
                {
                    "stack": _stack(StackKind.PARTNER, partner_id),
                    "urn": f"stack:{_stack(StackKind.PARTNER, partner_id)}",
                    "policy": "offboard-first",
                    "level": "mandatory",
                    "message": f"partner {partner_id!r} is active: its files may only be removed after "
                    "`platformctl offboard-partner` has landed (and its retention has run out)",
                }
            )
    return violations


def _retention_left(base: Path, partner_id: str, offboarded_on: str, today: datetime.date) -> str:
    """Why the partner's data must still be kept (empty once the strictest retention of its countries ran out)."""
    from fleet.checks import parse_offboarding_date, purge_allowed_from
    from fleet.repo import Repo

    try:
        repo = Repo(base)
        spec = repo.spec(partner_id)
        source = f"stacks/Pulumi.partner-{partner_id}.yaml"
        since = parse_offboarding_date(offboarded_on, source, today)
        until = purge_allowed_from(since, repo.catalog().strictest_retention_days(spec.countries), source)
    except InputError as exc:
        return f"its offboarding cannot be checked ({exc.problems[0]})"
    return f"its retention runs until {until.isoformat()}" if today < until else ""


def meaning_violations(base: Path, head: Path, stacks: list[str], today: datetime.date) -> list[dict[str, Any]]:
    """What `validate` says of the affected stacks' files at head and did not say at base (a purge flag set before
    retention ran out, a country that breaks residency, a domain another partner owns, ...): mandatory, so a pull
    request cannot land what onboarding or validate would refuse."""
    before = {(s, str(p)) for s, p in _meaning(base, stacks, today)}
    return [
        {
            "stack": stack,
            "urn": f"stack:{stack}",
            "policy": "valid-files",
            "level": "mandatory",
            "message": str(problem),
        }
        for stack, problem in _meaning(head, stacks, today)
        if (stack, str(problem)) not in before
    ]


def _meaning(tree: Path, stacks: list[str], today: datetime.date) -> list[tuple[str, Any]]:
    from fleet.checks import fleet_domain_problems, fleet_domains, platform_zone, stack_problems
    from fleet.repo import Repo
    from foundation.stacks import StackKind, parse_stack_name

    repo = Repo(tree)
    found: list[tuple[str, Any]] = []
    try:
        domains, _ = fleet_domains(repo)
        zone = platform_zone(repo)
        clashes = fleet_domain_problems(domains, zone)
    except InputError as exc:
        return [(name, problem) for name in stacks for problem in exc.problems]
    for name in stacks:
        try:
            stack = parse_stack_name(name)
            if not repo.has_stack(stack):
                continue
            found += [(name, p) for p in stack_problems(repo, stack, today)]
            if stack.kind is StackKind.PARTNER:
                own = f"partners/{stack.subject}.yaml"
                found += [(name, p) for p in clashes if p.source == own]
        except InputError as exc:
            found += [(name, p) for p in exc.problems]
    return found


def tree_home_region(*trees: Path) -> Callable[[str], str | None]:
    """A partner's home region as a git tree's spec says (the first tree that has it), for ci-preview's split."""

    def home(name: str) -> str | None:
        if not name.startswith("partner-") or not re.fullmatch(PARTNER_ID_PATTERN, name.removeprefix("partner-")):
            return None  # a stack file's name from a pull request reaches no other path
        for tree in trees:
            region = _home_region(tree, name.removeprefix("partner-"))
            if isinstance(region, str):
                return region
        return None

    return home
