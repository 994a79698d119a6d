"""Plan documents in the shape of `pulumi preview --json`, and diffs between two of them."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from foundation.errors import InputError

MAX_PLAN_BYTES = 64 * 1024 * 1024
"""An earlier plan read by --against: a 500-partner fleet's plan is a few MiB, so this bounds memory, not users."""
OPS = ("create", "update", "replace", "delete", "same")
PROVIDER_PREFIX = "pulumi:providers:"
REPLACING_PROVIDER_INPUTS = {
    "pulumi:providers:aws": ("region",),
    "pulumi:providers:kubernetes": ("kubeconfig", "cluster", "context"),
    "pulumi:providers:snowflake": ("accountName", "organizationName"),
}
"""Provider settings whose change moves every resource of that provider somewhere else: the engine replaces them
(a new region, cluster or account cannot hold the old resources). Secret or unknown settings cannot be compared,
so a provider whose settings now come from other resources than before counts as moved too."""
COMPARED_STATE = ("type", "parent", "provider", "inputs", "protect", "retainOnDelete")


def plan_document(stacks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"stacks": stacks}


def load_plan(path: Path) -> dict[str, Any]:
    """Read an earlier plan JSON (for --against); a file that is not one is bad input."""
    source = str(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_PLAN_BYTES:
            raise InputError.single(source, "", f"plan file is larger than {MAX_PLAN_BYTES // (1024 * 1024)} MiB")
        if path.is_dir():
            raise InputError.single(source, "", "is a directory, not a plan JSON file")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError.single(source, "", "no such file") from None
    except RecursionError:
        raise InputError.single(source, "", "not a plan JSON file: nested too deeply") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError.single(source, "", f"not a plan JSON file: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("stacks"), dict):
        raise InputError.single(source, "stacks", "not a plan JSON file (expected a `stacks` mapping)")
    for name, stack in doc["stacks"].items():
        if not isinstance(stack, dict) or not isinstance(stack.get("steps"), list):
            raise InputError.single(source, f"stacks.{name}.steps", "must be a list of steps")
        seen: set[str] = set()
        for index, step in enumerate(stack["steps"]):
            where = f"stacks.{name}.steps.{index}"
            if not isinstance(step, dict) or not isinstance(step.get("urn"), str):
                raise InputError.single(source, where, "a step needs a `urn`")
            if step["urn"] in seen:
                raise InputError.single(source, f"{where}.urn", "appears twice: a plan has one step per resource")
            seen.add(step["urn"])
            for key in ("newState", "oldState"):
                state = step.get(key)
                if state is not None and not isinstance(state, dict):
                    raise InputError.single(source, f"{where}.{key}", "must be a mapping")
                if isinstance(state, dict) and not isinstance(state.get("inputs", {}), dict):
                    raise InputError.single(source, f"{where}.{key}.inputs", "must be a mapping")
            if not isinstance(step.get("op", ""), str):
                raise InputError.single(source, f"{where}.op", "must be a string")
    return doc


def _state(step: dict[str, Any]) -> dict[str, Any]:
    return step.get("newState") or step.get("oldState") or {}


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths (list indexes as [i]) where two input trees differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        paths: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                paths.append(path)
            else:
                paths.extend(changed_paths(old[key], new[key], path))
        return paths
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        paths = []
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            paths.extend(changed_paths(a, b, f"{prefix}[{index}]"))
        return paths
    return [] if old == new else [prefix or "(value)"]


def diff_stack(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """Ops of `new` against `old` (either may be missing: a stack created or deleted)."""
    old_steps = {s["urn"]: s for s in (old or {}).get("steps", []) if s.get("op") != "delete"}
    new_steps = (new or {}).get("steps", [])
    steps: list[dict[str, Any]] = []
    for step in new_steps:
        new_state = _state(step)
        before = old_steps.pop(step["urn"], None)
        if before is None:
            steps.append({"op": "create", "urn": step["urn"], "newState": new_state})
            continue
        old_state = _state(before)
        diffs: list[str] = []
        for key in COMPARED_STATE:
            if key == "inputs":
                diffs.extend(changed_paths(old_state.get("inputs", {}), new_state.get("inputs", {})))
            elif old_state.get(key) != new_state.get(key):
                diffs.append(f"({key})")
        if str(new_state.get("type", "")).startswith(PROVIDER_PREFIX) and sorted(
            old_state.get("dependencies") or []
        ) != sorted(new_state.get("dependencies") or []):
            # A provider whose settings now come from other resources (another region's stack): its secret or
            # unknown settings cannot be compared, so the change of source is the change.
            diffs.append("(dependencies)")
        if diffs:
            steps.append(
                {"op": "update", "urn": step["urn"], "oldState": old_state, "newState": new_state, "diffs": diffs}
            )
        else:
            steps.append({"op": "same", "urn": step["urn"], "newState": new_state})
    _replace_under_moved_providers(steps)
    for urn, before in old_steps.items():
        steps.append({"op": "delete", "urn": urn, "oldState": _state(before)})
    result: dict[str, Any] = {"steps": steps, "changeSummary": summarize(steps)}
    if new is not None and "outputs" in new:
        result["outputs"] = new["outputs"]
    return result


def _replace_under_moved_providers(steps: list[dict[str, Any]]) -> None:
    moved = set()
    for step in steps:
        state = step.get("newState") or {}
        kind = str(state.get("type", ""))
        if step["op"] != "update" or not kind.startswith(PROVIDER_PREFIX):
            continue
        triggers = REPLACING_PROVIDER_INPUTS.get(kind, ())
        changed = {str(d).split(".")[0].split("[")[0] for d in step.get("diffs", [])}
        old_deps = set((step.get("oldState") or {}).get("dependencies") or [])
        if changed & set(triggers) or old_deps != set(state.get("dependencies") or []):
            moved.add(step["urn"])
    if not moved:
        return
    for step in steps:
        provider = str((step.get("newState") or {}).get("provider") or "")
        if step["op"] in ("update", "same") and provider.rsplit("::", 1)[0] in moved:
            step["op"] = "replace"
            step.setdefault("diffs", []).append("(provider)")


def summarize(steps: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts = Counter(step["op"] for step in steps)
    return {op: counts[op] for op in OPS if counts[op]}


def diff_plans(old: dict[str, Any], new: dict[str, Any], include_removed: bool) -> dict[str, Any]:
    """Diff every stack of `new`; stacks only in `old` become all-delete when `include_removed`."""
    names = list(new["stacks"])
    if include_removed:
        names += [name for name in old["stacks"] if name not in new["stacks"]]
    try:
        return plan_document({name: diff_stack(old["stacks"].get(name), new["stacks"].get(name)) for name in names})
    except RecursionError:
        raise InputError.single("--against", "", "the earlier plan's inputs are nested too deeply to compare") from None
