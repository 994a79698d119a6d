"""SnowflakeWarehouse: one region's database, warehouses, roles, the shared usage table and metric views."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_snowflake as snowflake

from components.snowflake_grants import Grant, grant_all, on_all, on_future, on_object, on_schema, on_table
from foundation.naming import PARTNER_ROLE_PATTERN, region_database, region_object
from foundation.warehouse_schema import ANALYTICS, PARTNERS, RAW, SCHEMAS, TABLES, VIEWS, View

SNOWFLAKE_TYPES = (
    "snowflake:index/database:Database",
    "snowflake:index/schema:Schema",
    "snowflake:index/resourceMonitor:ResourceMonitor",
    "snowflake:index/warehouse:Warehouse",
    "snowflake:index/accountRole:AccountRole",
    "snowflake:index/table:Table",
    "snowflake:index/rowAccessPolicy:RowAccessPolicy",
    "snowflake:index/execute:Execute",
    "snowflake:index/view:View",
    "snowflake:index/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole",
)
"""Resource types this component registers: its provider enables the preview features they need."""

PLATFORM_ROLES = {
    "loader": "Writes metered usage into RAW.",
    "analyst": "Reads the ANALYTICS views across all partners.",
    "payouts": "Reads metered usage (RAW tables, ANALYTICS views) to pay partners; writes nothing.",
    "admin": "Owns the region's data objects.",
}


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
    load_warehouse: pulumi.Output[str]
    loader_role: pulumi.Output[str]
    payouts_role: pulumi.Output[str]

    def __init__(self, name: str, args: SnowflakeWarehouseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:snowflake_warehouse:SnowflakeWarehouse", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        data = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        self.database_name = region_database(args.region_code)
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
            name=region_object(args.region_code, "MONITOR"),
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
                name=region_object(args.region_code, f"{purpose}_WH"),
                warehouse_size=size,
                auto_suspend=suspend,
                auto_resume="true",
                initially_suspended=True,
                resource_monitor=monitor.name,
                comment=f"{purpose.title()} warehouse of region {args.region_code}",
                opts=child,
            )
        self.partner_warehouse_name = region_object(args.region_code, "PARTNERS_WH")

        roles = {
            key: snowflake.AccountRole(
                f"{name}-{key}-role", name=region_object(args.region_code, key.upper()), comment=comment, opts=child
            )
            for key, comment in PLATFORM_ROLES.items()
        }

        # Outputs, not names: whatever names them (the meter's user, its grants) waits for them.
        self.load_warehouse = warehouses["LOAD"].name
        self.loader_role = roles["loader"].name
        self.payouts_role = roles["payouts"].name

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

        platform_roles = ", ".join(f"'{region_object(args.region_code, key.upper())}'" for key in PLATFORM_ROLES)
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
        # Names built from the outputs of what they name, so the engine creates each statement, view and grant after
        # the objects it mentions (a plain string would let it run first and fail).
        raw_fqn = pulumi.Output.concat(database.name, ".", raw.name)
        policy_fqn = pulumi.Output.concat(raw_fqn, ".", policy.name)
        table_fqns = {key: pulumi.Output.concat(raw_fqn, ".", table.name) for key, table in tables.items()}
        for table in TABLES:
            if not table.data_bearing:
                continue
            fqn = table_fqns[table.name]
            # The provider's table resource cannot attach a row access policy; this statement pair can, reversibly.
            snowflake.Execute(
                # Named by the table's first word: the usage table's attachment keeps its original URN.
                f"{name}-{table.name.split('_')[0].lower()}-row-policy",
                execute=pulumi.Output.concat(
                    "ALTER TABLE ", fqn, " ADD ROW ACCESS POLICY ", policy_fqn, " ON (PARTNER_ID)"
                ),
                revert=pulumi.Output.concat("ALTER TABLE ", fqn, " DROP ROW ACCESS POLICY ", policy_fqn),
                opts=child,
            )

        schemas = {RAW: raw, ANALYTICS: analytics}
        views: dict[str, snowflake.View] = {}
        for view in VIEWS:  # in order: a view that reads another comes after it, and waits for it
            views[view.name] = snowflake.View(
                f"{name}-{view.name.lower().replace('_', '-')}-view",
                database=database.name,
                schema=schemas[view.schema].name,
                name=view.name,
                is_secure="true",
                comment=view.comment,
                # The statement names the RAW tables: built from their outputs, so the view waits for them.
                statement=pulumi.Output.all(database.name, *(table.name for table in tables.values())).apply(
                    _statement_of(view)
                ),
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[views[read] for read in view.reads()])
                ),
            )
        created_views = list(views.values())

        analytics_fqn = pulumi.Output.concat(database.name, ".", analytics.name)
        analytics_views = tuple(v for v, spec in zip(created_views, VIEWS, strict=True) if spec.schema == ANALYTICS)
        role_grants = {
            "loader": {
                "db-usage": Grant(("USAGE",), on_object("DATABASE", database.name)),
                "raw-usage": Grant(("USAGE",), on_schema(raw_fqn)),
                "raw-insert": Grant(("INSERT", "SELECT"), on_all("TABLES", raw_fqn), after=tuple(tables.values())),
                # PARTNERS is the one table whose rows change (a partner's terms, its offboarding); events are
                # insert-only.
                "partners-update": Grant(("UPDATE",), on_table(table_fqns[PARTNERS.name])),
                "wh": Grant(("USAGE",), on_object("WAREHOUSE", warehouses["LOAD"].name)),
            },
            "analyst": {
                "db-usage": Grant(("USAGE",), on_object("DATABASE", database.name)),
                "analytics-usage": Grant(("USAGE",), on_schema(analytics_fqn)),
                "views": Grant(("SELECT",), on_all("VIEWS", analytics_fqn), after=analytics_views),
                "future-views": Grant(("SELECT",), on_future("VIEWS", analytics_fqn)),
                "wh": Grant(("USAGE",), on_object("WAREHOUSE", warehouses["ANALYTICS"].name)),
            },
            "payouts": {
                "db-usage": Grant(("USAGE",), on_object("DATABASE", database.name)),
                "raw-usage": Grant(("USAGE",), on_schema(raw_fqn)),
                "raw-select": Grant(("SELECT",), on_all("TABLES", raw_fqn), after=tuple(tables.values())),
                "analytics-usage": Grant(("USAGE",), on_schema(analytics_fqn)),
                "views": Grant(("SELECT",), on_all("VIEWS", analytics_fqn), after=analytics_views),
                "wh": Grant(("USAGE",), on_object("WAREHOUSE", warehouses["LOAD"].name)),
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


def _statement_of(view: View) -> Callable[[list[Any]], str]:
    """The view's SQL once the database (first) and the tables it reads are known."""
    return lambda parts: view.statement(str(parts[0]))
