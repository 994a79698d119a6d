"""PartnerTermsRow: the partner's row of its home region's RAW.PARTNERS (its billing terms: the one source the meter
and the statements read), upserted at every `up` and marked offboarded, never deleted, when the stack drops it.

Two `snowflake.Execute` resources, because Execute replaces itself when its `execute` SQL changes (ForceNew on
`execute`) and runs `revert` when a resource is deleted, a replaced one included (terraform-provider-snowflake
pkg/resources/execute.go: "Forces recreation of resource on change", "Invoked when resource is being destroyed";
the resource Pulumi's snowflake.Execute wraps, pulumi-snowflake 2.22.0, read 2026-12-06). One resource holding both
the upsert and the offboarding would, on any change of terms, upsert the new row and then - deleting the replaced
resource - offboard the partner. So:

- `-upsert`: execute = the MERGE of the terms row (insert, or update every term; ONBOARDED_ON kept from the first);
  revert = a statement that changes nothing. A change of terms replaces it: the new MERGE runs, the old revert is
  harmless.
- `-offboard`: execute = a statement that changes nothing; revert = mark the row offboarded (OFFBOARDED_ON = today
  where still NULL). Its SQL names only the database and the partner id, so it is replaced only when the partner
  moves to another region's warehouse - which is then right: the old region's row is offboarded.

Execute is not a preview feature of the provider (absent from pulumi-snowflake 2.22.0's
`preview_features_enabled` list, components/snowflake_preview.py). DML needs a running warehouse: the provider this
component is given names one (`warehouse`), as the provider's docs advise against `USE WAREHOUSE` in Execute.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_snowflake as snowflake

from foundation.warehouse_schema import partner_merge_statement, partner_offboard_sql

NO_CHANGE_SQL = "SELECT 1"
"""What the upsert's revert and the offboarding's execute run: nothing to do at that moment."""


@dataclass(frozen=True)
class PartnerTermsRowArgs:
    partner_id: str
    """The partner (the row's key)."""
    database: pulumi.Input[str]
    """The home region's database (region stack output `snowflake_database`)."""
    terms: Mapping[str, Any]
    """The row: partners.terms.partner_terms(...) (plain values, no secret)."""


class PartnerTermsRow(pulumi.ComponentResource):
    def __init__(self, name: str, args: PartnerTermsRowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:partner_terms:PartnerTermsRow", name, None, opts)
        if args.terms.get("PARTNER_ID") != args.partner_id:
            raise ValueError(f"terms row of {args.terms.get('PARTNER_ID')!r} given for partner {args.partner_id!r}")
        database = pulumi.Output.from_input(args.database)
        terms = dict(args.terms)
        upsert = snowflake.Execute(
            f"{name}-upsert",
            execute=database.apply(lambda db: partner_merge_statement(db, [terms])),
            revert=NO_CHANGE_SQL,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Deleted before the upsert (it depends on it): a destroy offboards the row; the upsert's revert then does
        # nothing.
        offboard = snowflake.Execute(
            f"{name}-offboard",
            execute=NO_CHANGE_SQL,
            revert=database.apply(lambda db: partner_offboard_sql(db, args.partner_id)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[upsert]),
        )
        self.register_outputs({"upsert": upsert.id, "offboard": offboard.id})
