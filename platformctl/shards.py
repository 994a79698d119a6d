"""Sharded plans for CI: a deterministic split of the stacks into N parts, and the merge of the N shard documents.

Every runner of a CI matrix computes the same split from the stack names alone (and, to keep a region with its
partners, each partner's home region): nothing here reads the cache, lists a directory in filesystem order or
hashes with a seeded hash. A shard plans its own stacks (their dependencies are planned or read from the plan
cache as the planner always does) and documents only them; `merge` joins the N documents back into exactly what an
unsharded run writes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation.errors import InputError
from foundation.stacks import KIND_ORDER, StackKind
from platformctl.planjson import load_plan
from policies.hosts import UNIQUE_HOSTS, hosts_claimed_twice
from policies.model import Resource

MAX_SHARDS = 64
"""A CI matrix far wider than any runner pool is a typo, and every merge reads this many files at most."""

WEIGHTS = {StackKind.GLOBAL: 66, StackKind.REGION: 153, StackKind.PARTNER: 52, StackKind.INTEGRATION: 59}
"""Estimated planning cost of one stack by kind: its resource count in the example fleet (the SDK's cost per stack
is close to linear in its resources), measured on 2026-11-30 with `platformctl plan --all --json plan.json` and
`jq -r '.stacks | to_entries[] | "\\(.key) \\(.value.steps | length)"' plan.json`: global 66, regions 152 to 158,
partners 49 to 59; integration-calsync (two regions, one installation) 59 on 2026-12-06."""

FLEET_POLICIES = ("offboard-first", "retention-first")
"""ci-preview findings about the change as a whole (files removed from the fleet), not about one planned stack:
only shard 1 reports them, so they appear once after the merge."""
CROSS_STACK_POLICY = UNIQUE_HOSTS
"""Found across partner stacks: a shard sees only its own, so the merge drops the shards' and recomputes it."""
VIOLATION_KEYS = ("policy", "level", "stack", "urn", "message")
"""A plan document's findings (policies.rules.Violation's fields)."""
PREVIEW_VIOLATION_KEYS = ("stack", "urn", "policy", "level", "message")
"""ci-preview's findings: the same fields, in the order platformctl.ci writes them."""
PLAN_KEYS = {"stacks", "violations", "shard"}
PREVIEW_KEYS = {"base", "head", "stacks", "violations", "notes", "shard"}


@dataclass(frozen=True)
class Shard:
    index: int
    """1-based index of this shard."""
    count: int
    """How many shards the stacks are split into."""

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """`K/N` with 1 <= K <= N <= 64, ASCII digits only (no spaces, signs or other scripts' digits)."""
    match = re.fullmatch(r"([0-9]{1,2})/([0-9]{1,2})", text)
    if match:
        index, count = int(match.group(1)), int(match.group(2))
        if 1 <= index <= count <= MAX_SHARDS:
            return Shard(index, count)
    raise InputError.single(
        "arguments", "--shard", f"expected K/N with 1 <= K <= N <= {MAX_SHARDS} (e.g. 1/4), got {text[:40]!r}"
    )


def kind_of(name: str) -> StackKind:
    if name == "global":
        return StackKind.GLOBAL
    if name.startswith("integration-"):
        return StackKind.INTEGRATION
    return StackKind.REGION if name.startswith("region-") else StackKind.PARTNER


def planning_key(name: str) -> tuple[int, str]:
    """The planner's order (global, regions, partners; by key within a kind) from the name alone."""
    kind = kind_of(name)
    return KIND_ORDER[kind], name.removeprefix(f"{kind.value}-") if kind is not StackKind.GLOBAL else ""


def fleet_digest(stacks: Iterable[str]) -> str:
    """Names every shard of one split: the same stacks, whatever order they were listed in."""
    return hashlib.sha256("\n".join(sorted(set(stacks))).encode()).hexdigest()


def _sequence(stacks: list[str], home_region: Callable[[str], str | None]) -> list[str]:
    """Global, then each region followed by the partners homed there, then partners with no known home."""
    names = sorted(set(stacks))
    homes = {name: home_region(name) for name in names if kind_of(name) is StackKind.PARTNER}
    regions = sorted({n.removeprefix("region-") for n in names if kind_of(n) is StackKind.REGION})
    regions = sorted(set(regions) | {h for h in homes.values() if h})
    sequence = [n for n in names if n == "global"]
    for code in regions:
        sequence += [n for n in names if n == f"region-{code}"]
        sequence += [n for n in names if homes.get(n) == code]
    sequence += [n for n in names if n in homes and not homes[n]]
    # Integration stacks read several regions: after every region (a shard plans the ones it lacks as dependencies).
    sequence += [n for n in names if kind_of(n) is StackKind.INTEGRATION]
    return sequence


def split(stacks: list[str], count: int, home_region: Callable[[str], str | None]) -> list[list[str]]:
    """`count` parts of `stacks` (each in planning order); every stack in exactly one part.

    The stacks are laid out region by region (a region, then its partners) and the line is cut into `count`
    stretches of equal estimated weight; a stack goes to the stretch holding its midpoint. A shard therefore
    holds whole regions with their partners except at its two ends (it plans few other regions as dependencies),
    and its weight is within one stack's weight of the mean. With more shards than stacks, some are empty."""
    sequence = _sequence(stacks, home_region)
    weights = [WEIGHTS[kind_of(name)] for name in sequence]
    total = sum(weights)
    parts: list[list[str]] = [[] for _ in range(count)]
    start = 0
    for name, weight in zip(sequence, weights, strict=True):
        # Integer arithmetic, so the cut is the same on every machine; a midpoint on a cut goes to the earlier shard.
        parts[((2 * start + weight) * count - 1) // (2 * total)].append(name)
        start += weight
    return [sorted(part, key=planning_key) for part in parts]


def shard_info(shard: Shard, fleet: list[str], own: list[str], source: str | None = None) -> dict[str, Any]:
    info = {"index": shard.index, "count": shard.count, "fleet": fleet_digest(fleet), "stacks": own}
    return info if source is None else {**info, "source": source}


def source_digest(repo: Any, stacks: list[Any]) -> str:
    """What the stacks were planned from: a digest of every stack's plan-cache key (program, config, spec, the
    stacks it reads, versions), so shards planned from different commits or edits are not merged."""
    import datetime

    from platformctl.offline.planner import with_dependencies
    from platformctl.offline.results import stack_keys

    ordered, deps = with_dependencies(repo, stacks)
    keys = stack_keys(repo, ordered, deps, datetime.date.today())
    return hashlib.sha256("\n".join(f"{name} {key}" for name, key in sorted(keys.items())).encode()).hexdigest()


def repo_home_region(repo: Any) -> Callable[[str], str | None]:
    """A partner stack's home region as the planner reads it (its spec); None where the spec cannot be read (the
    plan then reports that stack's error itself)."""
    from foundation.stacks import parse_stack_name

    def home(name: str) -> str | None:
        try:
            return str(repo.spec(parse_stack_name(name).subject).home_region)
        except InputError:
            return None

    return home


# ---------------------------------------------------------------- merging


@dataclass
class Merged:
    kind: str
    """`plan` or `ci-preview`."""
    document: dict[str, Any]
    """What the unsharded command writes with --json."""
    markdown: str | None
    """ci-preview's pull-request comment (None for plans)."""
    mandatory: int
    """Mandatory violations in the merged result."""


def read_shards(paths: list[Path]) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """The shard documents of one split, checked (anything else is bad input): their kind (`plan` or
    `ci-preview`) and (source, document) in shard order. `platformctl.ci.merge` joins them."""
    if not paths:
        raise InputError.single("arguments", "FILES", "name the shard documents to merge")
    if len(paths) > MAX_SHARDS:
        raise InputError.single("arguments", "FILES", f"at most {MAX_SHARDS} shard documents")
    shards: dict[int, tuple[str, dict[str, Any]]] = {}
    first: tuple[str, str, dict[str, Any]] | None = None
    first_doc: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for path in paths:
        source = str(path)
        if path.exists() and not path.is_file() and not path.is_dir():
            # /dev/zero or a pipe has no size to check first: reading it could take all memory or never end.
            raise InputError.single(source, "", "is not a regular file (a device or a pipe): give a shard's JSON file")
        doc = load_plan(path)
        kind, info = _shard_of(source, doc)
        if first is None:
            first, first_doc = (source, kind, info), doc
        else:
            _, first_kind, first_info = first
            if kind != first_kind:
                raise InputError.single(source, "", f"is a {kind} shard, {first[0]} a {first_kind} shard")
            for key in ("count", "fleet", "source"):
                if info.get(key) != first_info.get(key):
                    raise InputError.single(
                        source, f"shard.{key}", f"differs from {first[0]}'s: the files come from different splits"
                    )
            if kind == "ci-preview":
                for key in ("base", "head"):
                    if doc[key] != first_doc[key]:
                        raise InputError.single(source, key, f"differs from {first[0]}'s: another change's preview")
        if info["index"] in shards:
            raise InputError.single(source, "shard.index", f"shard {info['index']} is also {shards[info['index']][0]}")
        for name in info["stacks"]:
            if name in owner:
                raise InputError.single(source, "shard.stacks", f"stack {name!r} is also in {owner[name]}")
            owner[name] = source
        shards[info["index"]] = (source, doc)
    assert first is not None
    _, kind, info = first
    missing = [str(i) for i in range(1, info["count"] + 1) if i not in shards]
    if missing:
        raise InputError.single(
            "arguments", "FILES", f"shard(s) {', '.join(missing)} of {info['count']} missing: give all of them"
        )
    if fleet_digest(owner) != info["fleet"]:
        raise InputError.single(
            "arguments", "FILES", "the shards' stacks do not make up the stacks they were split from (shard.fleet)"
        )
    return kind, [shards[i] for i in sorted(shards)]


def _shard_of(source: str, doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The document's kind and its checked `shard` block."""
    info = doc.get("shard")
    if not isinstance(info, dict):
        raise InputError.single(source, "shard", "not a shard document (written by plan/ci-preview --shard K/N)")
    kind = "ci-preview" if "base" in doc else "plan"
    expected = PREVIEW_KEYS if kind == "ci-preview" else PLAN_KEYS
    if set(doc) != expected:
        raise InputError.single(source, "", f"not a {kind} shard document: keys must be {sorted(expected)}")
    wanted = {"index", "count", "fleet", "stacks"} | ({"affected"} if kind == "ci-preview" else {"source"})
    if set(info) != wanted:
        raise InputError.single(source, "shard", f"keys must be {sorted(wanted)}")
    index, count = info["index"], info["count"]
    if not all(type(v) is int for v in (index, count)) or not 1 <= index <= count <= MAX_SHARDS:
        raise InputError.single(source, "shard", "index and count must be whole numbers, 1 <= index <= count <= 64")
    for digest in ("fleet", "source"):
        if digest in wanted and (not isinstance(info[digest], str) or not re.fullmatch(r"[0-9a-f]{64}", info[digest])):
            raise InputError.single(source, f"shard.{digest}", "must be a sha256 hex digest")
    stacks = info["stacks"]
    if not isinstance(stacks, list) or not all(isinstance(s, str) for s in stacks) or len(set(stacks)) != len(stacks):
        raise InputError.single(source, "shard.stacks", "must be a list of distinct stack names")
    if set(stacks) != set(doc["stacks"]):
        raise InputError.single(source, "shard.stacks", "must name exactly the stacks the document holds")
    if not isinstance(doc["violations"], list):
        raise InputError.single(source, "violations", "must be a list")
    for number, violation in enumerate(doc["violations"]):
        where = f"violations.{number}"
        if not isinstance(violation, dict) or set(violation) != set(VIOLATION_KEYS):
            raise InputError.single(source, where, f"must be a mapping with keys {', '.join(VIOLATION_KEYS)}")
        if not all(isinstance(violation[key], str) for key in VIOLATION_KEYS):
            raise InputError.single(source, where, "every field must be a string")
        if violation["level"] not in ("mandatory", "advisory"):
            raise InputError.single(source, f"{where}.level", "must be mandatory or advisory")
        if violation["policy"] in FLEET_POLICIES and kind == "ci-preview":
            if index != 1:
                raise InputError.single(source, where, "only shard 1 reports findings about the change as a whole")
        elif violation["stack"] not in doc["stacks"]:
            raise InputError.single(source, f"{where}.stack", f"{violation['stack']!r} is not one of this shard's")
    if kind == "ci-preview":
        affected = info["affected"]
        if (
            not isinstance(affected, dict)
            or set(affected) != set(stacks)
            or not all(isinstance(v, list) and all(isinstance(p, str) for p in v) for v in affected.values())
        ):
            raise InputError.single(source, "shard.affected", "must map each of the shard's stacks to its files")
        for key in ("base", "head"):
            if not isinstance(doc[key], str):
                raise InputError.single(source, key, "must be a commit")
        if not isinstance(doc["notes"], list) or not all(isinstance(n, str) for n in doc["notes"]):
            raise InputError.single(source, "notes", "must be a list of strings")
    for name in stacks:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}", name):
            raise InputError.single(source, "shard.stacks", f"{name[:80]!r} is not a stack name")
    return kind, info


def _head_resources(stack: dict[str, Any]) -> list[Resource]:
    """A stack's resources as planned (its steps' new states), as the host policies see them."""
    resources = []
    for step in stack.get("steps", []):
        state = step.get("newState")
        if step.get("op") == "delete" or not isinstance(state, dict):
            continue
        inputs = state.get("inputs") or {}
        # A hand-edited shard is untrusted: the host rules iterate these, so anything but a list counts as none.
        hosts = {key: inputs[key] for key in ("hosts", "snis") if isinstance(inputs.get(key), list)}
        kind = state.get("type")
        name = step["urn"].rsplit("::", 1)[-1]
        resources.append(Resource(step["urn"], kind if isinstance(kind, str) else "", name, hosts))
    return resources


def cross_stack(stacks: dict[str, dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """`unique-hosts` over all the stacks, each finding's keys in the order the unsharded document writes them."""
    planned = {name: _head_resources(stacks[name]) for name in sorted(stacks, key=planning_key)}
    return [{key: getattr(v, key) for key in keys} for v in hosts_claimed_twice(planned)]


def by_stack(violations: list[dict[str, Any]], key: Callable[[str], Any]) -> list[dict[str, Any]]:
    return sorted(violations, key=lambda v: key(v["stack"]))  # stable: a stack's findings keep their order


def merge_plans(shards: list[tuple[str, dict[str, Any]]]) -> Merged:
    stacks: dict[str, Any] = {}
    violations: list[dict[str, Any]] = []
    for _, doc in shards:
        stacks.update(doc["stacks"])
        violations += [v for v in doc["violations"] if v["policy"] != CROSS_STACK_POLICY]
    stacks = {name: stacks[name] for name in sorted(stacks, key=planning_key)}
    merged = by_stack(violations, planning_key) + cross_stack(stacks, VIOLATION_KEYS)
    document = {"stacks": stacks, "violations": merged}
    return Merged("plan", document, None, sum(v["level"] == "mandatory" for v in merged))


def select_shard(repo: Any, selected: list[Any], text: str, against: Path | None) -> tuple[list[Any], dict[str, Any]]:
    """`plan --shard K/N`: this shard's stacks (StackNames, planning order) and the document's `shard` block."""
    shard = parse_shard(text)
    if against is not None:
        raise InputError.single("arguments", "--shard", "cannot be used with --against: diff the merged plan instead")
    by_name = {str(stack): stack for stack in selected}
    own = split(list(by_name), shard.count, repo_home_region(repo))[shard.index - 1]
    return [by_name[name] for name in own], shard_info(shard, list(by_name), own, source_digest(repo, selected))
