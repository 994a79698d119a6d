"""How plans, problems and listings look in a terminal."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from platformctl.planjson import OPS

if TYPE_CHECKING:  # errors are printed through this module, also where no project (no program) can be imported
    from platformctl.planning import PlanResult

OP_STYLE = {"create": "green", "read": "cyan", "update": "yellow", "replace": "magenta", "delete": "red", "same": "dim"}
OP_SIGN = {"create": "+", "read": ">", "update": "~", "replace": "+-", "delete": "-", "same": " "}
TREE_LIMIT = 3
TABLE_LIMIT = 60
"""Above this many stacks the table has a row per kind of stack, and one per stack only for those with changes
(a 500-partner fleet's table is no use to read, and drawing it took longer than a warm plan)."""
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe(text: str) -> str:
    """Show control and bidi characters as escapes: input can be hostile, the terminal must not obey it."""
    return _UNPRINTABLE.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def plain(console: Console, text: str, style: str | None = None) -> None:
    console.print(Text(safe(text), style=style or ""), soft_wrap=True)


def plan(console: Console, result: PlanResult, warnings: bool = True, show_same: bool = False) -> None:
    """The plan as a tree (few stacks) or a table, its totals, and the program's warnings unless the caller has
    already said them (a change prints its spec's warnings before planning). Like `pulumi preview`, a tree shows
    what changes (with the components it sits in); `show_same` shows the unchanged resources too."""
    summaries = result.summaries()
    hidden = 0
    if len(summaries) <= TREE_LIMIT:
        for name, stack in result.document["stacks"].items():
            tree, left_out = _tree(name, stack, show_same)
            hidden += left_out
            console.print(tree)
    elif len(summaries) <= TABLE_LIMIT:
        console.print(_summary_table(summaries))
    else:
        console.print(_summary_table(_by_kind(summaries)))
    totals: dict[str, int] = defaultdict(int)
    for counts in summaries.values():
        for op, count in counts.items():
            totals[op] += count
    summary = ", ".join(
        f"{count} unchanged"
        if op == "same"
        else f"{count} to replace (delete, then create)"
        if op == "replace"
        else f"{count} to {op}"
        for op, count in totals.items()
    )
    plain(console, f"{len(summaries)} stack(s): {summary or 'no resources'}", "bold")
    if hidden:
        plain(console, f"{hidden} unchanged resource(s) not shown (--show-same shows them)", "dim")
    for warning in result.warnings if warnings else []:
        plain(console, f"warning: {warning}", "yellow")


def _by_kind(summaries: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Rows for a large plan: each stack that changes anything but creates, then one row per kind of stack."""
    rows = {name: counts for name, counts in summaries.items() if set(counts) - {"create", "same"}}
    stacks: dict[str, int] = defaultdict(int)
    totals: dict[str, dict[str, int]] = {}
    for name, counts in summaries.items():
        kind = name.split("-", 1)[0]
        stacks[kind] += 1
        row = totals.setdefault(kind, defaultdict(int))
        for op, count in counts.items():
            row[op] += count
    return {**rows, **{f"{kind} stacks ({stacks[kind]})": row for kind, row in totals.items()}}


def _summary_table(summaries: dict[str, dict[str, int]]) -> Table:
    table = Table(title="Offline plan", show_lines=False)
    table.add_column("stack", overflow="fold")
    for op in OPS:
        table.add_column(op, justify="right", style=OP_STYLE[op])
    for name, counts in summaries.items():
        table.add_row(safe(name), *(str(counts.get(op, 0) or "") for op in OPS))
    return table


def _tree(name: str, stack: dict[str, Any], show_same: bool) -> tuple[Tree, int]:
    """The stack's resources under their parents, and how many unchanged ones were left out (all but those a
    changed resource sits in, unless `show_same`)."""
    root = Tree(Text(f"{name}  ", style="bold").append(_counts(stack["changeSummary"])))
    nodes: dict[str, Tree] = {}
    stack_urn = ""
    shown = None if show_same else _changed_and_their_parents(stack["steps"])
    hidden = 0
    for step in stack["steps"]:
        state = step.get("newState") or step.get("oldState") or {}
        if state.get("type") == "pulumi:pulumi:Stack":
            stack_urn = step["urn"]
            nodes[step["urn"]] = root
            continue
        if shown is not None and step["urn"] not in shown:
            hidden += 1
            continue
        op = step["op"]
        label = Text(f"{OP_SIGN[op]} ", style=OP_STYLE[op])
        label.append(safe(step["urn"].rsplit("::", 1)[-1]), style="bold" if not state.get("custom") else "")
        label.append(f"  {state.get('type', '')}", style="dim")
        if step.get("diffs"):
            label.append(f"  [{', '.join(step['diffs'][:6])}{', …' if len(step['diffs']) > 6 else ''}]", style="yellow")
        parent = nodes.get(state.get("parent") or stack_urn, root)
        nodes[step["urn"]] = parent.add(label)
    return root, hidden


def _changed_and_their_parents(steps: list[dict[str, Any]]) -> set[str]:
    """URNs of the steps that change something, and of every resource above them (their place in the tree)."""
    parents = {step["urn"]: (step.get("newState") or step.get("oldState") or {}).get("parent") for step in steps}
    shown: set[str] = set()
    for step in steps:
        if step["op"] == "same":
            continue
        urn: str | None = step["urn"]
        while urn and urn not in shown:
            shown.add(urn)
            urn = parents.get(urn)
    return shown


def _counts(summary: dict[str, int]) -> Text:
    text = Text()
    for op, count in summary.items():
        text.append(f"{OP_SIGN[op].strip() or '='}{count} ", style=OP_STYLE[op])
    return text


def violations(console: Console, result: PlanResult) -> None:
    for violation in result.violations:
        style = "red" if violation.level == "mandatory" else "yellow"
        plain(
            console,
            f"{violation.level} policy {violation.policy}: {violation.stack}: {violation.urn}: {violation.message}",
            style,
        )


def table(console: Console, title: str, columns: list[str], rows: list[list[str]]) -> None:
    out = Table(title=title)
    for column in columns:
        out.add_column(column, overflow="fold")  # a narrow terminal wraps a value, never cuts it (`acme-voi…`)
    for row in rows:
        out.add_row(*(safe(cell) for cell in row))
    console.print(out)
