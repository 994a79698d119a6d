"""SnowflakeWarehouse: one region's database, warehouses, roles, the shared usage table and metric views."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_snowflake as snowflake

from components.snowflake_grants import Grant, grant_all, on_all, on_future, on_object, on_schema, on_table
from components.warehouse_tables import ANALYTICS, PARTNERS, RAW, SCHEMAS, TABLES, VIEWS

PLATFORM_ROLES = {
    "loader": "Writes metered usage into RAW.",
    "analyst": "Reads the ANALYTICS views across all partners.",
    "admin": "Owns the region's data objects.",
}
PARTNER_ROLE_PATTERN = "^PARTNER_(.+)_READER$"
"""A partner's reader role is PARTNER_<ID>_READER; the row access policy maps it back to the partner id."""


def partner_reader_role(snowflake_id: str) -> str:
    return f"PARTNER_{snowflake_id}_READER"


@dataclass(frozen=True)
class SnowflakeWarehouseArgs:
    region_code: str
    """Platform region code, used in object names."""
    monthly_credit_quota: int
    """Credits the region's warehouses may burn per month before they are suspended."""
    retention_days: int
    """Time Travel kept on the RAW schema (at most the strictest launched country's retention)."""


class SnowflakeWarehouse(pulumi.ComponentResource):
    database_name: str
    partner_warehouse_name: str
    load_warehouse_name: str
    loader_role_name: str

    def __init__(self, name: str, args: SnowflakeWarehouseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:snowflake_warehouse:SnowflakeWarehouse", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        data = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        ident = args.region_code.upper().replace("-", "_")
        self.database_name = f"PLATFORM_{ident}"
        database = snowflake.Database(
            f"{name}-database",
            name=self.database_name,
            comment=f"Platform data for region {args.region_code}",
            data_retention_time_in_days=min(args.retention_days, 90),
            drop_public_schema_on_creation=True,
            opts=data,
        )
        raw = snowflake.Schema(
            f"{name}-raw",
            database=database.name,
            name=RAW,
            comment=SCHEMAS[RAW],
            with_managed_access="true",
            data_retention_time_in_days=min(args.retention_days, 90),
            opts=data,
        )
        analytics = snowflake.Schema(
            f"{name}-analytics",
            database=database.name,
            name=ANALYTICS,
            comment=SCHEMAS[ANALYTICS],
            with_managed_access="true",
            opts=data,
        )

        monitor = snowflake.ResourceMonitor(
            f"{name}-monitor",
            name=f"PLATFORM_{ident}_MONITOR",
            credit_quota=args.monthly_credit_quota,
            frequency="MONTHLY",
            start_timestamp="IMMEDIATELY",
            notify_triggers=[75, 90],
            suspend_trigger=100,
            suspend_immediate_trigger=110,
            opts=child,
        )
        warehouses = {}
        for purpose, size, suspend in (("LOAD", "XSMALL", 60), ("ANALYTICS", "SMALL", 300), ("PARTNERS", "XSMALL", 60)):
            warehouses[purpose] = snowflake.Warehouse(
                f"{name}-{purpose.lower()}-wh",
                name=f"PLATFORM_{ident}_{purpose}_WH",
                warehouse_size=size,
                auto_suspend=suspend,
                auto_resume="true",
                initially_suspended=True,
                resource_monitor=monitor.name,
                comment=f"{purpose.title()} warehouse of region {args.region_code}",
                opts=child,
            )
        self.partner_warehouse_name = f"PLATFORM_{ident}_PARTNERS_WH"
        self.load_warehouse_name = f"PLATFORM_{ident}_LOAD_WH"
        self.loader_role_name = f"PLATFORM_{ident}_LOADER"

        roles = {
            key: snowflake.AccountRole(
                f"{name}-{key}-role", name=f"PLATFORM_{ident}_{key.upper()}", comment=comment, opts=child
            )
            for key, comment in PLATFORM_ROLES.items()
        }

        tables = {
            table.name: snowflake.Table(
                f"{name}-{table.name.lower().replace('_', '-')}",
                database=database.name,
                schema=raw.name,
                name=table.name,
                comment=table.comment,
                change_tracking=table.data_bearing,
                columns=[
                    snowflake.TableColumnArgs(name=c.name, type=c.type, nullable=c.nullable) for c in table.columns
                ],
                opts=data if table.data_bearing else child,
            )
            for table in TABLES
        }

        platform_roles = ", ".join(f"'PLATFORM_{ident}_{key.upper()}'" for key in PLATFORM_ROLES)
        policy = snowflake.RowAccessPolicy(
            f"{name}-partner-rows",
            database=database.name,
            schema=raw.name,
            name="PARTNER_ROWS",
            arguments=[snowflake.RowAccessPolicyArgumentArgs(name="ROW_PARTNER_ID", type="VARCHAR")],
            body=(
                f"CURRENT_ROLE() IN ({platform_roles}) OR "
                "UPPER(REPLACE(ROW_PARTNER_ID, '-', '_')) = "
                f"REGEXP_SUBSTR(CURRENT_ROLE(), '{PARTNER_ROLE_PATTERN}', 1, 1, 'e', 1)"
            ),
            comment="A partner's reader role sees only rows of its own partner id",
            opts=child,
        )
        policy_fqn = f"{self.database_name}.RAW.PARTNER_ROWS"
        for table in TABLES:
            if not table.data_bearing:
                continue
            fqn = table.fqn(self.database_name)
            # The provider's table resource cannot attach a row access policy; this statement pair can, reversibly.
            snowflake.Execute(
                # Named by the table's first word: the usage table's attachment keeps its original URN.
                f"{name}-{table.name.split('_')[0].lower()}-row-policy",
                execute=f"ALTER TABLE {fqn} ADD ROW ACCESS POLICY {policy_fqn} ON (PARTNER_ID)",
                revert=f"ALTER TABLE {fqn} DROP ROW ACCESS POLICY {policy_fqn}",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[tables[table.name], policy]),
            )

        raw_fqn = f"{self.database_name}.RAW"
        schemas = {RAW: raw, ANALYTICS: analytics}
        for view in VIEWS:
            snowflake.View(
                f"{name}-{view.name.lower().replace('_', '-')}-view",
                database=database.name,
                schema=schemas[view.schema].name,
                name=view.name,
                is_secure="true",
                comment=view.comment,
                statement=view.statement(self.database_name),
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(tables.values())),
            )

        analytics_fqn = f"{self.database_name}.ANALYTICS"
        role_grants = {
            "loader": {
                "db-usage": Grant(("USAGE",), on_object("DATABASE", database.name)),
                "raw-usage": Grant(("USAGE",), on_schema(raw_fqn)),
                "raw-insert": Grant(("INSERT", "SELECT"), on_all("TABLES", raw_fqn)),
                # The roster is the one table whose rows change (tier, active); events are insert-only.
                "partners-update": Grant(("UPDATE",), on_table(PARTNERS.fqn(self.database_name))),
                "wh": Grant(("USAGE",), on_object("WAREHOUSE", warehouses["LOAD"].name)),
            },
            "analyst": {
                "db-usage": Grant(("USAGE",), on_object("DATABASE", database.name)),
                "analytics-usage": Grant(("USAGE",), on_schema(analytics_fqn)),
                "views": Grant(("SELECT",), on_future("VIEWS", analytics_fqn)),
                "wh": Grant(("USAGE",), on_object("WAREHOUSE", warehouses["ANALYTICS"].name)),
            },
            "admin": {
                "db-usage": Grant(("USAGE",), on_object("DATABASE", database.name)),
                "db-manage": Grant(("CREATE SCHEMA", "MONITOR"), on_object("DATABASE", database.name)),
            },
        }
        for role, grants in role_grants.items():
            grant_all(f"{name}-{role}", roles[role].name, grants, child)

        self.register_outputs(
            {"database": database.name, "partner_warehouse": warehouses["PARTNERS"].name, "raw_schema": raw.name}
        )
