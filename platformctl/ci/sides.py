"""Planning both sides of a change: each tree is planned by its own code, in a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from foundation.errors import EngineError, PlatformError
from platformctl.ci.affected import _stacks_in


def plan_tree(tree: Path, stacks: list[str], cache: SideCache | None = None) -> dict[str, Any]:
    """Plan `stacks` (those the tree has) with the tree's own code, in a child process. With a cache, stacks
    already planned at the same commit (a commit fixes code and data alike) are read back instead."""
    present = sorted(set(stacks) & _stacks_in(tree))
    cached = cache.get(present) if cache else {}
    missing = [name for name in present if name not in cached]
    result = _plan_in_child(tree, missing) if missing else {"stacks": {}, "violations": [], "errors": {}}
    if cache is not None:
        cache.put(missing, result)
    for name, entry in cached.items():
        if "error" in entry:
            result["errors"][name] = entry["error"]
        else:
            result["stacks"][name] = entry["plan"]
            result["violations"] += entry["violations"]
    return result


class SideCache:
    """Plans of one commit's stacks, per stack, kept between ci-preview runs (`.platformctl/ci-cache/<sha>`)."""

    def __init__(self, directory: Path, sha: str) -> None:
        from platformctl.offline.keys import versions_fingerprint

        self.directory = directory / f"{sha}-{versions_fingerprint()[:16]}"

    def get(self, names: list[str]) -> dict[str, dict[str, Any]]:
        found = {}
        for name in names:
            try:
                signed = json.loads((self.directory / f"{name}.json").read_text(encoding="utf-8"))
                entry, signature = signed["entry"], signed["signature"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if signature != _signature(name, entry):
                continue  # not written by this user's runs (e.g. committed to the branch): plan again
            if isinstance(entry, dict) and ("error" in entry or isinstance(entry.get("plan"), dict)):
                found[name] = entry
        return found

    def put(self, names: list[str], result: dict[str, Any]) -> None:
        from foundation.yamlio import write_atomic

        for name in names:
            if name in result["errors"]:
                entry: dict[str, Any] = {"error": result["errors"][name]}
            elif name in result["stacks"]:
                violations = [v for v in result["violations"] if v.get("stack") == name]
                entry = {"plan": result["stacks"][name], "violations": violations}
            else:
                continue
            try:
                signed = {"entry": entry, "signature": _signature(name, entry)}
                write_atomic(self.directory / f"{name}.json", json.dumps(signed))
            except OSError:
                return  # a cache that cannot be written is only slower


def _signature(name: str, entry: Any) -> str:
    from platformctl.offline.signing import signature

    return signature(f"{name}\0{json.dumps(entry, sort_keys=True)}".encode())


def _plan_in_child(tree: Path, present: list[str]) -> dict[str, Any]:
    if not present:
        return {"stacks": {}, "violations": [], "errors": {}}
    out = tree / ".platformctl-ci-plan.json"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-c", "from platformctl.ci import plan_tree_main; plan_tree_main()", str(out), *present]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.is_file():
        raise EngineError(f"planning {tree.name} failed:\n{(done.stderr or done.stdout).strip()[-4000:]}")
    return json.loads(out.read_text(encoding="utf-8"))


def plan_tree_main() -> None:
    """Child-process side of `plan_tree`: plan the stacks, one at a time where one fails, and write the result."""
    from fleet.repo import Repo
    from foundation.stacks import parse_stack_name
    from platformctl.planning import run_plan
    from policies.hosts import UNIQUE_HOSTS, hosts_claimed_twice_in

    out, names = Path(sys.argv[1]), sys.argv[2:]
    repo = Repo(Path.cwd())
    stacks = [parse_stack_name(name) for name in names]
    result: dict[str, Any] = {"stacks": {}, "violations": [], "errors": {}}
    try:
        plans = [run_plan(repo, stacks)]
    except PlatformError:
        # Something does not plan: plan each stack alone so the others are still reported.
        plans = []
        for stack in stacks:
            try:
                plans.append(run_plan(repo, [stack]))
            except PlatformError as exc:
                result["errors"][str(stack)] = str(exc)
    for planned in plans:
        result["stacks"].update(planned.document["stacks"])
        result["violations"] += [v.__dict__ for v in planned.violations if len(plans) == 1 or v.policy != UNIQUE_HOSTS]
    if len(plans) > 1:  # planned one by one: the fleet-wide check over the stacks that did plan
        claims = {name: planned.results[name].entry.claims for planned in plans for name in planned.stacks}
        result["violations"] += [v.__dict__ for v in hosts_claimed_twice_in(claims)]
    out.write_text(json.dumps(result), encoding="utf-8")
