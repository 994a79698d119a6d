"""ci-preview's result and its pull-request comment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from platformctl.planjson import OPS


@dataclass
class Preview:
    base: str
    """Base commit."""
    head: str
    """Head commit."""
    affected: dict[str, list[str]]
    """Stack → the changed files that affect it."""
    stacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Stack → steps (diffed) and changeSummary."""
    violations: list[dict[str, Any]] = field(default_factory=list)
    """Policy findings at head, and stacks head cannot plan."""
    notes: list[str] = field(default_factory=list)
    """Things the reader should know about how the preview was made (a dirty working tree)."""
    shard: dict[str, Any] | None = None
    """With --shard: which part of the affected stacks this is (platformctl.shards); None for a whole preview."""

    @property
    def mandatory(self) -> list[dict[str, Any]]:
        return [v for v in self.violations if v["level"] == "mandatory"]

    def document(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "stacks": self.stacks,
            "violations": self.violations,
            "notes": self.notes,
        } | ({"shard": self.shard} if self.shard is not None else {})


def markdown(preview: Preview) -> str:
    """The pull-request comment: violations first, then each stack's counts and changed resources."""
    lines = ["<!-- platformctl-ci-preview -->", f"## Stack previews `{preview.base[:10]}` → `{preview.head[:10]}`", ""]
    lines += [f"> {_cell(note)}" for note in preview.notes] + ([""] if preview.notes else [])
    if not preview.affected and not preview.violations:
        lines.append("This change touches nothing plannable: no stack is affected.")
        return "\n".join(lines) + "\n"
    mandatory = preview.mandatory
    if preview.violations:
        title = f"### ❌ {len(mandatory)} mandatory policy violation(s)" if mandatory else "### ⚠️ Advisory findings"
        lines += [title, "", "| level | policy | stack | resource | message |", "|---|---|---|---|---|"]
        for v in preview.violations:
            lines.append(
                f"| {v['level']} | {v['policy']} | `{v['stack']}` | `{_cell(v['urn'].rsplit('::', 1)[-1])}` "
                f"| {_cell(v['message'])} |"
            )
        lines.append("")
    else:
        lines += ["### ✅ No policy violations", ""]
    for stack, result in preview.stacks.items():
        counts = result.get("changeSummary", {})
        summary = " · ".join(f"{op} {counts.get(op, 0)}" for op in OPS)
        lines += [
            f"### `{stack}`",
            "",
            summary if "error" not in result else f"cannot be planned: {_cell(result['error'])}",
            "",
        ]
        changed = [s for s in result["steps"] if s["op"] != "same"]
        if changed:
            lines += [
                f"<details><summary>{len(changed)} changed resource(s)</summary>",
                "",
                "| op | resource | type | changed inputs |",
                "|---|---|---|---|",
            ]
            for step in changed:
                state = step.get("newState") or step.get("oldState") or {}
                diffs = ", ".join(f"`{d}`" for d in step.get("diffs", []))
                name = _cell(step["urn"].rsplit("::", 1)[-1])
                lines.append(f"| {step['op']} | `{name}` | `{state.get('type', '')}` | {diffs} |")
            lines += ["", "</details>", ""]
        lines.append(f"<sub>affected by: {', '.join(f'`{p}`' for p in preview.affected[stack])}</sub>")
        lines.append("")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;")
