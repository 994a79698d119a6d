"""The regional warehouse's tables and views as data: the one definition that both the SnowflakeWarehouse
component deploys and `services.warehouse.ensure_schema` creates in the embedded warehouse (fakesnow).

Pure data and string templates; no Pulumi and no driver imports, so components and services both import it.
"""

from __future__ import annotations

from dataclasses import dataclass

RAW = "RAW"
ANALYTICS = "ANALYTICS"
SCHEMAS: dict[str, str] = {
    RAW: "Metered usage as it arrives",
    ANALYTICS: "Success-metric views",
}


@dataclass(frozen=True)
class Column:
    name: str
    """Upper-case column name."""
    type: str
    """Snowflake type as the provider and DDL spell it."""
    nullable: bool = False
    """Whether NULL is allowed."""


@dataclass(frozen=True)
class Table:
    schema: str
    """Schema the table lives in."""
    name: str
    """Upper-case table name."""
    comment: str
    """Why the table exists."""
    columns: tuple[Column, ...]
    """Columns in order."""
    key: str
    """The column that identifies a row: writes are insert-if-absent on it (idempotent)."""
    data_bearing: bool = True
    """Kept on delete (retain_on_delete) and guarded by the partner row access policy."""

    def fqn(self, database: str) -> str:
        return f"{database}.{self.schema}.{self.name}"

    def create_sql(self, database: str) -> str:
        cols = ", ".join(f"{c.name} {c.type}{'' if c.nullable else ' NOT NULL'}" for c in self.columns)
        # No PRIMARY KEY: Snowflake does not enforce one, so neither does the embedded warehouse; the writers'
        # MERGE on `key` is what keeps rows unique, and tests prove it on the same engine semantics.
        return f"CREATE TABLE IF NOT EXISTS {self.fqn(database)} ({cols})"


@dataclass(frozen=True)
class View:
    schema: str
    """Schema the view lives in."""
    name: str
    """Upper-case view name."""
    comment: str
    """What the view answers."""
    template: str
    """SELECT statement; `{raw}` stands for `<database>.RAW`."""

    def statement(self, database: str) -> str:
        return self.template.format(raw=f"{database}.{RAW}")


USAGE_EVENTS = Table(
    RAW,
    "USAGE_EVENTS",
    "One row per completed call; partners see only their own rows",
    (
        Column("EVENT_ID", "VARCHAR(64)"),  # Twilio CallSid
        Column("PARTNER_ID", "VARCHAR(40)"),
        Column("COUNTRY", "VARCHAR(2)"),
        Column("CALL_STARTED_AT", "TIMESTAMP_TZ"),
        Column("PERIOD", "VARCHAR(7)"),  # YYYY-MM in UTC: the statement period, fixed when metered
        Column("BILLABLE_SECONDS", "NUMBER(10,0)"),
        Column("MINUTES", "NUMBER(10,0)"),  # rounded up per call
        Column("TIER", "VARCHAR(16)"),
        Column("CURRENCY", "VARCHAR(3)"),
        Column("RATE", "NUMBER(18,6)"),  # price book per-minute rate at metering time
        # MINUTES x RATE, unrounded: rounding to minor units happens once per partner-period.
        Column("AMOUNT", "NUMBER(28,6)"),
        Column("RECEIVED_AT", "TIMESTAMP_TZ"),
    ),
    key="EVENT_ID",
)
API_REQUESTS = Table(
    RAW,
    "API_REQUESTS",
    "One row per API request logged by Kong; partners see only their own rows",
    (
        Column("EVENT_ID", "VARCHAR(64)"),  # stable hash of the log entry
        Column("PARTNER_ID", "VARCHAR(40)"),
        Column("ROUTE", "VARCHAR(128)"),
        Column("STATUS_CLASS", "VARCHAR(3)"),  # 2xx, 4xx, ...
        Column("REQUESTED_AT", "TIMESTAMP_TZ"),
        Column("PERIOD", "VARCHAR(7)"),
    ),
    key="EVENT_ID",
)
PARTNERS = Table(
    RAW,
    "PARTNERS",
    "Partner roster with tier pricing, loaded from the specs and the price book",
    (
        Column("PARTNER_ID", "VARCHAR(40)"),
        Column("TIER", "VARCHAR(16)"),
        Column("BASE_FEE_MINOR", "NUMBER(18,0)"),
        Column("CURRENCY", "VARCHAR(3)"),
        Column("MINOR_UNITS", "NUMBER(1,0)"),  # ISO 4217 exponent of CURRENCY
        Column("ACTIVE", "BOOLEAN"),
    ),
    key="PARTNER_ID",
    data_bearing=False,
)
TABLES: tuple[Table, ...] = (USAGE_EVENTS, API_REQUESTS, PARTNERS)

PARTNER_USAGE_COLUMNS = (
    "EVENT_ID",
    "COUNTRY",
    "CALL_STARTED_AT",
    "PERIOD",
    "BILLABLE_SECONDS",
    "MINUTES",
    "CURRENCY",
    "RATE",
    "AMOUNT",
)
"""What a partner's own USAGE view shows of USAGE_EVENTS."""

# Aggregates cast their argument to NUMBER: exact in Snowflake anyway, and it keeps fakesnow (which wraps a
# bare numeric aggregate argument in TRY_CAST(... AS DOUBLE), 0.12.1) exact too.
# Money rounds half to even everywhere (partners/currencies.to_minor, the payouts statements): Snowflake's ROUND
# rounds half away from zero unless told 'HALF_TO_EVEN', which takes fixed-point input only, hence the NUMBER cast
# of POWER (a FLOAT). Source: https://docs.snowflake.com/en/sql-reference/functions/round (checked 2026-11-30);
# fakesnow 0.12.1 / sqlglot 30 turn it into DuckDB's ROUND_EVEN.
VIEWS: tuple[View, ...] = (
    View(
        ANALYTICS,
        "MRR",
        "Monthly recurring revenue by currency (minor units): base fees of active partners plus this month's usage",
        "SELECT p.CURRENCY, SUM(CAST(p.BASE_FEE_MINOR + COALESCE(ROUND(u.AMOUNT * CAST(POWER(10, p.MINOR_UNITS) AS "
        "NUMBER(38,0)), 0, 'HALF_TO_EVEN'), 0) AS NUMBER(38,0))) "
        "AS MRR_MINOR FROM {raw}.PARTNERS p LEFT JOIN (SELECT PARTNER_ID, SUM(CAST(AMOUNT AS NUMBER(38,6))) AS AMOUNT "
        "FROM {raw}.USAGE_EVENTS WHERE CALL_STARTED_AT >= DATE_TRUNC('month', CURRENT_TIMESTAMP()) "
        "GROUP BY PARTNER_ID) u ON u.PARTNER_ID = p.PARTNER_ID WHERE p.ACTIVE GROUP BY p.CURRENCY",
    ),
    View(
        ANALYTICS,
        "ACTIVE_PARTNERS",
        "Partners with at least one call in the last 30 days",
        "SELECT COUNT(DISTINCT PARTNER_ID) AS ACTIVE_PARTNERS FROM {raw}.USAGE_EVENTS "
        "WHERE CALL_STARTED_AT >= DATEADD('day', -30, CURRENT_TIMESTAMP())",
    ),
    View(
        ANALYTICS,
        "MINUTES_PER_PARTNER",
        "Billed call minutes per partner per period",
        "SELECT PARTNER_ID, PERIOD, SUM(CAST(MINUTES AS NUMBER(38,0))) AS MINUTES FROM {raw}.USAGE_EVENTS "
        "GROUP BY PARTNER_ID, PERIOD",
    ),
    View(
        ANALYTICS,
        "USAGE_BY_PERIOD",
        "Calls, seconds, minutes and unrounded gross per partner, period and currency (statements read this)",
        "SELECT PARTNER_ID, PERIOD, CURRENCY, COUNT(*) AS CALLS, "
        "SUM(CAST(BILLABLE_SECONDS AS NUMBER(38,0))) AS BILLABLE_SECONDS, "
        "SUM(CAST(MINUTES AS NUMBER(38,0))) AS MINUTES, SUM(CAST(AMOUNT AS NUMBER(38,6))) AS GROSS "
        "FROM {raw}.USAGE_EVENTS GROUP BY PARTNER_ID, PERIOD, CURRENCY",
    ),
    View(
        ANALYTICS,
        "API_REQUESTS_BY_PERIOD",
        "API requests per partner, period, route and status class",
        "SELECT PARTNER_ID, PERIOD, ROUTE, STATUS_CLASS, COUNT(*) AS REQUESTS FROM {raw}.API_REQUESTS "
        "GROUP BY PARTNER_ID, PERIOD, ROUTE, STATUS_CLASS",
    ),
)


def table(name: str) -> Table:
    return next(t for t in TABLES if t.name == name)


def view(name: str) -> View:
    return next(v for v in VIEWS if v.name == name)
