"""Options and arguments several command modules share, typed once so that their names and help read the same."""

from __future__ import annotations

from typing import Annotated

import typer

ShowSameFlag = Annotated[
    bool, typer.Option("--show-same", help="Also list the resources that stay unchanged (like pulumi's --show-sames).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
StackArg = Annotated[str, typer.Argument(metavar="STACK", help="global, region-<code> or partner-<id>.")]
YesFlag = Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")]
