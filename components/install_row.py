"""InstallRow: one installation's row of a warehouse's RAW.INSTALLS (partner x marketplace integration: what the
partner is charged monthly and the developer paid for), upserted at every `up` and dated removed, never deleted, when
the stack drops it.

Two `snowflake.Execute` resources for the reason components/partner_terms.py gives (Execute replaces itself when its
SQL changes and runs `revert` when deleted, a replaced one included): `-upsert` runs the install MERGE (revert: no-op);
`-remove` runs nothing and, when the installation leaves the stack, sets REMOVED_ON (revert). Its SQL names only the
database and the install id, so a changed price never removes the install.

Written by the partner's stack in the partner's home region, and by the integration's stack in its developer's home
region when that is another region (the developer's payouts run there): one writer per warehouse and row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_snowflake as snowflake

from foundation.warehouse_schema import INSTALL_TERMS, install_merge_statement, install_remove_sql

NO_CHANGE_SQL = "SELECT 1"
"""What the upsert's revert and the removal's execute run: nothing to do at that moment."""


@dataclass(frozen=True)
class InstallRowArgs:
    database: pulumi.Input[str]
    """The warehouse's database (a region stack's output `snowflake_database`)."""
    row: Mapping[str, Any]
    """The INSTALL_TERMS columns (integrations.installs.install_row): plain values, no secret."""


class InstallRow(pulumi.ComponentResource):
    def __init__(self, name: str, args: InstallRowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:install_row:InstallRow", name, None, opts)
        if tuple(args.row) != INSTALL_TERMS:
            raise ValueError(f"an install row has the columns {', '.join(INSTALL_TERMS)}; got {', '.join(args.row)}")
        database = pulumi.Output.from_input(args.database)
        row = dict(args.row)
        upsert = snowflake.Execute(
            f"{name}-upsert",
            execute=database.apply(lambda db: install_merge_statement(db, [row])),
            revert=NO_CHANGE_SQL,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Deleted before the upsert (it depends on it): dropping the install dates it removed.
        remove = snowflake.Execute(
            f"{name}-remove",
            execute=NO_CHANGE_SQL,
            revert=database.apply(lambda db: install_remove_sql(db, str(row["INSTALL_ID"]))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[upsert]),
        )
        self.register_outputs({"upsert": upsert.id, "remove": remove.id})
