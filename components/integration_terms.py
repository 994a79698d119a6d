"""IntegrationTerms: what an integration's developer is paid from, in the developer's home region's warehouse (the
region serving the developer's country): its DEVELOPERS row, the integration's INTEGRATIONS row (developer share,
listed price in the developer's payout currency) and the INSTALLS rows of partners homed in other regions (a partner
homed in the developer's region writes its own row there: one writer per row).

The DEVELOPERS and INTEGRATIONS upserts change nothing on delete (revert: a no-op): a retired integration's earlier
months are still paid from them. A developer with several integrations has one row written by each of their stacks
with the same values (the spec's developer block; the Stripe account recorded in each stack by
`platformctl billing connect-developer`; a stack without it keeps the recorded one, developer_merge_sql).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_snowflake as snowflake

from components.install_row import NO_CHANGE_SQL, InstallRow, InstallRowArgs
from foundation.warehouse_schema import developer_merge_statement, integration_merge_statement


@dataclass(frozen=True)
class IntegrationTermsArgs:
    database: pulumi.Input[str]
    """The developer's home region's database (its region stack's output `snowflake_database`)."""
    developer: Mapping[str, Any]
    """The DEVELOPERS row (integrations.payouts.developer_row)."""
    integration: Mapping[str, Any]
    """The INTEGRATIONS row (integrations.payouts.integration_row)."""
    installs: Sequence[Mapping[str, Any]]
    """INSTALLS rows of the installing partners homed in another region (integrations.payouts.install_row)."""


class IntegrationTerms(pulumi.ComponentResource):
    def __init__(self, name: str, args: IntegrationTermsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:integration_terms:IntegrationTerms", name, None, opts)
        database = pulumi.Output.from_input(args.database)
        developer, integration = dict(args.developer), dict(args.integration)
        child = pulumi.ResourceOptions(parent=self)
        developer_upsert = snowflake.Execute(
            f"{name}-developer",
            execute=database.apply(lambda db: developer_merge_statement(db, [developer])),
            revert=NO_CHANGE_SQL,
            opts=child,
        )
        integration_upsert = snowflake.Execute(
            f"{name}-integration",
            execute=database.apply(lambda db: integration_merge_statement(db, [integration])),
            revert=NO_CHANGE_SQL,
            opts=child,
        )
        for row in args.installs:
            InstallRow(f"{name}-install-{row['PARTNER_ID']}", InstallRowArgs(database=database, row=row), opts=child)
        self.register_outputs({"developer": developer_upsert.id, "integration": integration_upsert.id})
