"""`platformctl plan`: plan stacks offline (the real program under the Pulumi SDK's mocks) and print the plan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.context import checkpoint, err, open_repo, out
from cli.groups import Commands
from cli.options import ShowSameFlag
from foundation.errors import PolicyError


def plan(
    stacks: Annotated[
        list[str] | None, typer.Argument(help="Stacks to plan: global, region-<code>, partner-<id>.")
    ] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Every stack that has a file in stacks/.")] = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the plan as JSON (pulumi preview --json shape).")
    ] = None,
    against: Annotated[
        Path | None, typer.Option("--against", help="An earlier plan JSON: ops become create/update/delete/same.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, max=64, help="Worker processes (default: one per core).")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Plan every stack again instead of reusing unchanged results.")
    ] = False,
    shard: Annotated[
        str | None, typer.Option("--shard", metavar="K/N", help="Plan part K of N of the stacks (join: merge-plans).")
    ] = None,
    show_same: ShowSameFlag = False,
) -> None:
    """Plan stacks offline: the real program under the Pulumi SDK's mocks; no CLI, credentials or network.

    Example: platformctl plan partner-acme-voice --json plan.json
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cli import render
    from foundation.yamlio import check_output_file, write_output
    from platformctl.planning import run_plan, select_stacks
    from platformctl.shards import select_shard

    repo = open_repo()
    if json_file is not None:
        check_output_file(json_file, "--json")
    selected = select_stacks(repo, stacks or [], all_stacks)
    shard_block: dict[str, Any] | None = None
    if shard is not None:
        selected, shard_block = select_shard(repo, selected, shard, against)
    with Progress(
        TextColumn("planning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # a bar is for a person watching; a log would only get a stray newline
    ) as bar:
        task = bar.add_task("plan", total=None)

        def advance(_: str) -> None:
            checkpoint()
            bar.advance(task)

        result = run_plan(
            repo,
            selected,
            workers=workers,
            against=against,
            include_removed=all_stacks,
            progress=advance,
            use_cache=not no_cache,
            prune=all_stacks,
        )
    checkpoint()  # an interrupt swallowed after the last stack: nothing printed or written
    render.plan(out, result, show_same=show_same)
    render.violations(err, result)
    if json_file is not None:
        extra = {"shard": shard_block} if shard_block is not None else {}
        write_output(json_file, [*result.json_pieces(extra), "\n"], "--json")
    if result.mandatory:
        raise PolicyError(f"{len(result.mandatory)} mandatory policy violation(s)")


COMMANDS: Commands = {"plan": plan}
