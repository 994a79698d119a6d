"""`platformctl ci-preview`: what a change between two git refs does to every stack it touches.

Both sides are exported with `git archive` into temporary directories (the working tree is never touched) and each
is planned by its own code in a child process, so an edited component is planned as edited. The parts, by concern:
`git` (refs, changed files, exports), `affected` (which stacks and why), `sides` (planning both trees), `report`
(the result and its Markdown).
"""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.repo import STATE_DIR
from foundation.errors import InputError
from platformctl.ci.affected import affected_stacks, meaning_violations, removed_active_partners, tree_home_region
from platformctl.ci.git import FileChange, changed_files, export_tree, refuse_links, resolve_ref, working_tree_dirty
from platformctl.ci.report import Preview, markdown
from platformctl.ci.sides import SideCache, plan_tree, plan_tree_main
from platformctl.planjson import diff_stack
from platformctl.shards import planning_key

if TYPE_CHECKING:
    from platformctl.shards import Shard

__all__ = ["FileChange", "Preview", "affected_stacks", "ci_preview", "markdown", "plan_tree_main"]


def ci_preview(root: Path, base_ref: str, head_ref: str, shard: Shard | None = None) -> Preview:
    """With `shard`, only that shard's part of the affected stacks is planned (see platformctl.shards); the
    findings about the change as a whole come from shard 1 only."""
    base, head = resolve_ref(root, base_ref), resolve_ref(root, head_ref)
    changes = changed_files(root, base, head)
    notes = []
    if working_tree_dirty(root):
        notes.append(
            "the working tree has uncommitted changes: ci-preview compares the commits "
            f"{base[:10]}..{head[:10]} and leaves them out"
        )
    with tempfile.TemporaryDirectory(prefix="platformctl-ci-") as tmp:
        base_tree = export_tree(root, base, Path(tmp) / "base")
        head_tree = export_tree(root, head, Path(tmp) / "head")
        refuse_links(head_tree, head)
        affected = affected_stacks(base_tree, head_tree, changes)
        shard_block = None
        if shard is not None:
            affected, shard_block = _shard_part(shard, affected, base_tree, head_tree)
        preview = Preview(base=base, head=head, affected=affected, notes=notes, shard=shard_block)
        if shard is None or shard.index == 1:
            preview.violations += removed_active_partners(base_tree, head_tree, changes)
        preview.violations += meaning_violations(base_tree, head_tree, list(affected), datetime.date.today())
        if not affected:
            return preview
        cache_dir = root / STATE_DIR / "ci-cache"
        before = plan_tree(base_tree, list(affected), SideCache(cache_dir, base))
        after = plan_tree(head_tree, list(affected), SideCache(cache_dir, head))
    for stack in affected:
        if stack in after["errors"]:
            preview.stacks[stack] = {"steps": [], "changeSummary": {}, "error": after["errors"][stack]}
            preview.violations.append(
                {
                    "stack": stack,
                    "urn": f"stack:{stack}",
                    "policy": "plannable",
                    "level": "mandatory",
                    "message": after["errors"][stack],
                }
            )
            continue
        diffed = diff_stack(before["stacks"].get(stack), after["stacks"].get(stack))
        diffed.pop("outputs", None)
        preview.stacks[stack] = diffed
    preview.violations += [
        {key: v[key] for key in ("stack", "urn", "policy", "level", "message")} for v in after["violations"]
    ]
    return preview


def _shard_part(
    shard: Shard, affected: dict[str, list[str]], base: Path, head: Path
) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """The shard's own affected stacks, and the document's `shard` block (with why each stack is affected, for
    the merged comment)."""
    from platformctl.shards import shard_info, split

    part = split(list(affected), shard.count, tree_home_region(head, base))[shard.index - 1]
    own = {name: affected[name] for name in sorted(part)}
    return own, {**shard_info(shard, list(affected), list(own)), "affected": own}


def list_affected(root: Path, base_ref: str, head_ref: str) -> dict[str, list[str]]:
    """The stacks a change affects (and why), without planning: CI's cheap first look."""
    base, head = resolve_ref(root, base_ref), resolve_ref(root, head_ref)
    changes = changed_files(root, base, head)
    with tempfile.TemporaryDirectory(prefix="platformctl-ci-") as tmp:
        base_tree = export_tree(root, base, Path(tmp) / "base")
        head_tree = export_tree(root, head, Path(tmp) / "head")
        refuse_links(head_tree, head)
        return affected_stacks(base_tree, head_tree, changes)


def affected_summary(
    root: Path, base: str, head: str, shard: str | None, markdown_file: Path | None, json_file: Path | None
) -> dict[str, Any]:
    """`ci-preview --list-affected`: `{"count": N, "stacks": [...]}` (planning order), for CI to choose N shards."""
    for given, option in ((shard, "--shard"), (markdown_file, "--markdown"), (json_file, "--json")):
        if given is not None:
            raise InputError.single("arguments", option, "cannot be used with --list-affected (it plans nothing)")
    stacks = sorted(list_affected(root, base, head), key=planning_key)
    return {"count": len(stacks), "stacks": stacks}
