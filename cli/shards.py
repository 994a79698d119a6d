"""`platformctl merge-plans`: parse arguments, call the library, print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.groups import Commands


def merge_plans(
    files: Annotated[list[Path], typer.Argument(metavar="FILES", help="Every shard's JSON (plan or ci-preview).")],
    json_file: Annotated[Path, typer.Option("--json", help="Write the merged document here.")],
    markdown_file: Annotated[
        Path | None, typer.Option("--markdown", help="ci-preview shards: write the merged pull-request comment.")
    ] = None,
) -> None:
    """Join the JSON documents of `plan --shard K/N` (or of `ci-preview --shard K/N`) into the unsharded one.

    Example: platformctl merge-plans shard-1.json shard-2.json --json plan.json
    """
    from cli.context import out
    from cli.render import plain
    from foundation.errors import InputError, PolicyError
    from foundation.yamlio import check_output_file, write_output
    from platformctl.ci.merge import merge

    for path, option in ((json_file, "--json"), (markdown_file, "--markdown")):
        if path is not None:
            check_output_file(path, option)
    merged = merge(files)
    if markdown_file is not None and merged.markdown is None:
        raise InputError.single("arguments", "--markdown", "only ci-preview shards have a Markdown report")
    write_output(json_file, json.dumps(merged.document, indent=1) + "\n", "--json")
    if markdown_file is not None and merged.markdown is not None:
        write_output(markdown_file, merged.markdown, "--markdown")
    plain(out, f"merged {len(files)} {merged.kind} shard(s): {len(merged.document['stacks'])} stack(s)")
    if merged.mandatory:
        raise PolicyError(f"{merged.mandatory} mandatory policy violation(s)")


COMMANDS: Commands = {"merge-plans": merge_plans}
