"""`platformctl merge-plans`: the N shard documents of one split (plan or ci-preview) joined into exactly what an
unsharded run writes. Reading and checking the shards, and merging plans, is `platformctl.shards`; a ci-preview's
report is this package's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from platformctl.ci.report import Preview, markdown
from platformctl.shards import (
    CROSS_STACK_POLICY,
    FLEET_POLICIES,
    PREVIEW_VIOLATION_KEYS,
    Merged,
    by_stack,
    cross_stack,
    merge_plans,
    planning_key,
    read_shards,
)


def merge(paths: list[Path]) -> Merged:
    """Join the shard documents of one split into the unsharded document; anything else is bad input."""
    kind, ordered = read_shards(paths)
    return merge_plans(ordered) if kind == "plan" else merge_previews(ordered)


def merge_previews(shards: list[tuple[str, dict[str, Any]]]) -> Merged:
    """The unsharded preview's order: findings about the change, the files' meaning (by stack), stacks that do not
    plan (by stack), each stack's policies (planning order), then hosts claimed twice across the stacks."""
    first = shards[0][1]
    stacks: dict[str, Any] = {}
    affected: dict[str, list[str]] = {}
    for _, doc in shards:
        stacks.update(doc["stacks"])
        affected.update(doc["shard"]["affected"])
    fleet = [v for v in first["violations"] if v["policy"] in FLEET_POLICIES]
    rest = [v for _, doc in shards for v in doc["violations"] if v["policy"] not in FLEET_POLICIES]
    meaning = by_stack([v for v in rest if v["policy"] == "valid-files"], str)
    unplannable = by_stack([v for v in rest if v["policy"] == "plannable"], str)
    policies = by_stack(
        [v for v in rest if v["policy"] not in ("valid-files", "plannable", CROSS_STACK_POLICY)], planning_key
    )
    planned = {name: stack for name, stack in stacks.items() if "error" not in stack}
    preview = Preview(
        base=first["base"],
        head=first["head"],
        affected={name: affected[name] for name in sorted(affected)},
        stacks={name: stacks[name] for name in sorted(stacks)},
        violations=fleet + meaning + unplannable + policies + cross_stack(planned, PREVIEW_VIOLATION_KEYS),
        notes=list(first["notes"]),
    )
    return Merged("ci-preview", preview.document(), markdown(preview), len(preview.mandatory))
