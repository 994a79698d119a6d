"""`platformctl ci-preview`: the pull-request preview (affected stacks planned at base and head, diffed, checked)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.context import err, open_repo, out
from cli.groups import Commands
from foundation.errors import PolicyError


def ci_preview(
    base: Annotated[str, typer.Option("--base", help="Git ref the change is measured from (e.g. origin/main).")],
    head: Annotated[str, typer.Option("--head", help="Git ref of the change.")] = "HEAD",
    markdown_file: Annotated[
        Path | None, typer.Option("--markdown", help="Write the pull-request comment here.")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write stacks, steps and violations as JSON.")
    ] = None,
    shard: Annotated[
        str | None, typer.Option("--shard", metavar="K/N", help="Preview part K of N of the affected stacks.")
    ] = None,
    list_affected: Annotated[
        bool, typer.Option("--list-affected", help="Only print the affected stacks as JSON; plan nothing.")
    ] = False,
) -> None:
    """Plan every stack a change affects at base and at head, diff them and check the policies.

    Example: platformctl ci-preview --base origin/main --markdown preview.md --json preview.json
    """
    from cli import render
    from foundation.yamlio import check_output_file, write_output
    from platformctl import ci
    from platformctl.ci import affected_summary
    from platformctl.shards import parse_shard

    repo = open_repo()
    if list_affected:
        out.print(json.dumps(affected_summary(repo.root, base, head, shard, markdown_file, json_file)), markup=False)
        return
    for path, option in ((markdown_file, "--markdown"), (json_file, "--json")):
        if path is not None:
            check_output_file(path, option)
    preview = ci.ci_preview(repo.root, base, head, parse_shard(shard) if shard is not None else None)
    for note in preview.notes:
        render.plain(err, f"note: {note}", "yellow")
    text = ci.markdown(preview)
    if markdown_file is not None:
        write_output(markdown_file, text, "--markdown")
    if json_file is not None:
        write_output(json_file, json.dumps(preview.document(), indent=1) + "\n", "--json")
    if not preview.affected:
        out.print("This change touches nothing plannable: no stack is affected.")
        return
    for stack, result in preview.stacks.items():
        counts = result.get("changeSummary", {})
        render.plain(out, f"{stack}: " + (", ".join(f"{op} {n}" for op, n in counts.items()) or "no resources"))
    for violation in preview.violations:
        style = "red" if violation["level"] == "mandatory" else "yellow"
        render.plain(
            err,
            f"{violation['level']} policy {violation['policy']}: {violation['stack']}: {violation['message']}",
            style,
        )
    if preview.mandatory:
        raise PolicyError(f"{len(preview.mandatory)} mandatory policy violation(s)")


COMMANDS: Commands = {"ci-preview": ci_preview}
