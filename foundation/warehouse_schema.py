"""The regional warehouse's tables and views as data: the one definition that both the SnowflakeWarehouse
component deploys and `services.warehouse.ensure_schema` creates in the embedded warehouse (fakesnow).

Pure data and string templates; no Pulumi and no driver imports, so the tool, the components and the services
distribution (which has no Pulumi) all import it. Also the one upsert of each kind of terms row: a partner's billing
terms (`partner_merge_sql`), its installs (`install_merge_sql`), a marketplace developer (`developer_merge_sql`) and
an integration's payout terms (`integration_merge_sql`), which the stacks run at `up` and `platformctl warehouse sync`
runs locally. Who writes what: a partner stack its PARTNERS row and its INSTALLS rows (home region); an integration
stack its developer's DEVELOPERS row, its INTEGRATIONS row and the INSTALLS rows of partners homed elsewhere, in the
developer's home region (the one serving the developer's country).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from foundation.currencies import MINOR_UNITS

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
    """SELECT statement; `{raw}` stands for `<database>.RAW`, `{analytics}` for `<database>.ANALYTICS`."""

    def statement(self, database: str) -> str:
        return self.template.format(raw=f"{database}.{RAW}", analytics=f"{database}.{ANALYTICS}")

    def reads(self) -> tuple[str, ...]:
        """The views of this schema set that this one selects from (they must exist first)."""
        return tuple(v.name for v in VIEWS if f"{{analytics}}.{v.name} " in self.template)


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
    "Each partner's billing terms: the one source the meter and the statements read; kept by the partner's stack",
    (
        Column("PARTNER_ID", "VARCHAR(40)"),
        Column("TIER", "VARCHAR(16)"),
        Column("CURRENCY", "VARCHAR(3)"),
        Column("MINOR_UNITS", "NUMBER(1,0)"),  # ISO 4217 exponent of CURRENCY
        Column("BASE_FEE_MINOR", "NUMBER(18,0)"),
        Column("RATE", "NUMBER(18,6)"),  # price of one billed call minute in CURRENCY (the price book's)
        Column("REVENUE_SHARE", "NUMBER(5,4)"),  # fraction of gross paid to the partner (the tier table's)
        Column("PAYOUT_METHOD", "VARCHAR(16)"),  # stripe_connect | bank_transfer
        Column("STRIPE_ACCOUNT", "VARCHAR(80)", nullable=True),  # acct_...; NULL until `billing connect`
        Column("HOME_REGION", "VARCHAR(32)"),
        Column("ONBOARDED_ON", "DATE"),  # the first upsert's date, kept by every later one
        Column("OFFBOARDED_ON", "DATE", nullable=True),  # set by the stack's destroy; the row is never deleted
        # The tier's monthly call minutes (partners/tiers.yaml); NULL in rows written before it existed: no
        # usage.threshold events for those until their stack (or `warehouse sync`) upserts them again.
        Column("MONTHLY_MINUTES_QUOTA", "NUMBER(12,0)", nullable=True),
        # A currency change waits for a month boundary (a month's usage and statement hold one currency): the
        # MERGE keeps the current currency and prices and records the new ones here, effective from PENDING_FROM
        # (YYYY-MM, the month after the change, UTC). NULL: nothing pending. Set only by partner_merge_sql.
        Column("PENDING_CURRENCY", "VARCHAR(3)", nullable=True),
        Column("PENDING_MINOR_UNITS", "NUMBER(1,0)", nullable=True),
        Column("PENDING_BASE_FEE_MINOR", "NUMBER(18,0)", nullable=True),
        Column("PENDING_RATE", "NUMBER(18,6)", nullable=True),
        Column("PENDING_FROM", "VARCHAR(7)", nullable=True),
    ),
    key="PARTNER_ID",
    data_bearing=False,
)
CONFORMANCE_RESULTS = Table(
    RAW,
    "CONFORMANCE_RESULTS",
    "One row per run of a marketplace integration's conformance job (after each deploy, per region); the listing "
    "shows the latest per integration and region",
    (
        Column("RESULT_ID", "VARCHAR(64)"),  # conformance_result_id(): one run, so a retried write changes nothing
        Column("INTEGRATION_ID", "VARCHAR(40)"),
        Column("REGION", "VARCHAR(32)"),
        Column("CHECKED_AT", "TIMESTAMP_TZ"),  # when the load ended
        Column("P95_MS", "NUMBER(12,1)"),
        Column("REQUESTS_PER_SECOND", "NUMBER(12,1)"),
        Column("ERROR_RATE", "NUMBER(7,6)"),  # share of failed requests, 0..1
        Column("REQUESTS", "NUMBER(12,0)"),
        Column("PASSED", "BOOLEAN"),
        Column("IMAGE_DIGEST", "VARCHAR(71)"),  # sha256:<64 hex> of the integration image that was measured
    ),
    key="RESULT_ID",
    data_bearing=False,  # no partner's data: the platform's measurement of a third party's service
)
PRICED = ("CURRENCY", "MINOR_UNITS", "BASE_FEE_MINOR", "RATE")
"""The terms a currency change moves together (to PENDING_* until their month)."""
PARTNER_TERMS = tuple(
    c.name for c in PARTNERS.columns if c.name != "ONBOARDED_ON" and not c.name.startswith("PENDING_")
)
"""The columns a partner's terms row gives (ONBOARDED_ON is the warehouse's own date of the first upsert; PENDING_*
are the MERGE's own)."""
INSTALLS = Table(
    RAW,
    "INSTALLS",
    "One row per partner x marketplace integration: what the partner is charged monthly and the developer paid for",
    (
        Column("INSTALL_ID", "VARCHAR(81)"),  # <partner>/<integration> (foundation.naming.install_id)
        Column("PARTNER_ID", "VARCHAR(40)"),
        Column("INTEGRATION_ID", "VARCHAR(40)"),
        Column("DEVELOPER_ID", "VARCHAR(40)"),
        Column("CURRENCY", "VARCHAR(3)"),  # the partner's billing currency
        Column("MINOR_UNITS", "NUMBER(1,0)"),  # ISO 4217 exponent of CURRENCY
        Column("MONTHLY_MINOR", "NUMBER(18,0)"),  # the listed monthly price in CURRENCY at install (0: free)
        Column("INSTALLED_ON", "DATE"),  # the first upsert's date (a re-install after a removal: that day)
        Column("REMOVED_ON", "DATE", nullable=True),  # set when the partner drops it; the row is never deleted
        # What the developer earns share x of, fixed at the same moment as MONTHLY_MINOR: the listed monthly price in
        # the developer's payout currency at install (0: free). Last, and nullable: a deployed table gains them by
        # ALTER TABLE ADD COLUMN (which appends), and rows written before they existed hold NULL (the install MERGE
        # fills them at the row's next upsert; until then the payouts read RAW.INTEGRATIONS' price).
        Column("DEVELOPER_CURRENCY", "VARCHAR(3)", nullable=True),
        Column("DEVELOPER_MONTHLY_MINOR", "NUMBER(18,0)", nullable=True),
    ),
    key="INSTALL_ID",
    data_bearing=False,
)
DEVELOPERS = Table(
    RAW,
    "DEVELOPERS",
    "Marketplace developers paid from this region (their home region: the one serving their country)",
    (
        Column("DEVELOPER_ID", "VARCHAR(40)"),
        Column("LEGAL_NAME", "VARCHAR(200)"),
        Column("COUNTRY", "VARCHAR(2)"),
        Column("CURRENCY", "VARCHAR(3)"),  # payout currency: the country's currency (regions/countries.yaml)
        Column("MINOR_UNITS", "NUMBER(1,0)"),
        Column("STRIPE_ACCOUNT", "VARCHAR(80)", nullable=True),  # acct_...; NULL until `billing connect-developer`
        Column("HOME_REGION", "VARCHAR(32)"),
    ),
    key="DEVELOPER_ID",
    data_bearing=False,
)
INTEGRATIONS = Table(
    RAW,
    "INTEGRATIONS",
    "Each marketplace integration's payout terms: its developer, the developer's share and its listed price in the "
    "developer's payout currency",
    (
        Column("INTEGRATION_ID", "VARCHAR(40)"),
        Column("DEVELOPER_ID", "VARCHAR(40)"),
        # The developer's fraction of each install's price (integrations/rules.yaml `revenue_share`, the spec's row):
        # per integration, as the spec chooses the row; the developer's statement shows it per line.
        Column("DEVELOPER_SHARE", "NUMBER(5,4)"),
        Column("CURRENCY", "VARCHAR(3)"),  # the developer's payout currency
        Column("MINOR_UNITS", "NUMBER(1,0)"),
        Column("MONTHLY_MINOR", "NUMBER(18,0)"),  # the listed monthly price in CURRENCY (0: free)
        Column("HOME_REGION", "VARCHAR(32)"),  # the developer's home region (where it is paid from)
    ),
    key="INTEGRATION_ID",
    data_bearing=False,
)
TABLES: tuple[Table, ...] = (
    USAGE_EVENTS,
    API_REQUESTS,
    PARTNERS,
    INSTALLS,
    DEVELOPERS,
    INTEGRATIONS,
    CONFORMANCE_RESULTS,
)
INSTALL_TERMS = tuple(c.name for c in INSTALLS.columns if c.name not in ("INSTALLED_ON", "REMOVED_ON"))
"""The columns an install row gives (INSTALLED_ON and REMOVED_ON are the warehouse's own dates)."""
DEVELOPER_TERMS = tuple(c.name for c in DEVELOPERS.columns)
"""The columns a developer row gives."""
INTEGRATION_TERMS = tuple(c.name for c in INTEGRATIONS.columns)
"""The columns an integration's payout terms row gives."""

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
# Money rounds half to even everywhere (foundation/currencies.to_minor, the payouts statements): Snowflake's ROUND
# rounds half away from zero unless told 'HALF_TO_EVEN', which takes fixed-point input only.
# Source: https://docs.snowflake.com/en/sql-reference/functions/round (checked 2026-11-30);
# fakesnow 0.12.1 / sqlglot 30 turn it into DuckDB's ROUND_EVEN.
_MINOR_SCALE = (
    "CASE CURRENCY "
    + " ".join(f"WHEN '{code}' THEN {10**exponent}" for code, exponent in sorted(MINOR_UNITS.items()))
    + " END"
)
"""10 ** the ISO 4217 exponent of the row's CURRENCY (NULL for a currency outside the table: never guessed)."""
# The product is cast too: fakesnow (0.12.1) sums a bare `a * b` as DOUBLE (15.045 became 15.045000000000002 and
# rounded to 1505 instead of 1504); minutes x a 6-decimal rate is exact at scale 6, so the cast changes nothing
# in Snowflake.
GROSS_MINOR_SQL = (
    "CAST(ROUND(SUM(CAST(CAST(MINUTES AS NUMBER(38,0)) * CAST(RATE AS NUMBER(18,6)) AS NUMBER(38,6))) * "
    f"{_MINOR_SCALE}, 0, 'HALF_TO_EVEN') AS NUMBER(38,0))"
)
"""THE definition of gross, per partner, period and currency: billed minutes x the metered per-minute rate (the
price book's, from PARTNERS at metering time), summed exactly and rounded half-even to the minor unit once.
USAGE_BY_PERIOD carries it as GROSS_MINOR; the MRR view, `platformctl usage` and the statements all read it."""
VIEWS: tuple[View, ...] = (
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
        "Calls, seconds, minutes and gross (minor units, rounded once) per partner, period and currency",
        "SELECT PARTNER_ID, PERIOD, CURRENCY, COUNT(*) AS CALLS, "
        "SUM(CAST(BILLABLE_SECONDS AS NUMBER(38,0))) AS BILLABLE_SECONDS, "
        f"SUM(CAST(MINUTES AS NUMBER(38,0))) AS MINUTES, {GROSS_MINOR_SQL} AS GROSS_MINOR "
        "FROM {raw}.USAGE_EVENTS GROUP BY PARTNER_ID, PERIOD, CURRENCY",
    ),
    View(
        ANALYTICS,
        "MRR",
        "Monthly recurring revenue by currency (minor units): base fees of active partners plus this month's gross",
        "SELECT p.CURRENCY, SUM(CAST(p.BASE_FEE_MINOR + COALESCE(u.GROSS_MINOR, 0) AS NUMBER(38,0))) AS MRR_MINOR "
        "FROM {raw}.PARTNERS p LEFT JOIN {analytics}.USAGE_BY_PERIOD u ON u.PARTNER_ID = p.PARTNER_ID "
        "AND u.CURRENCY = p.CURRENCY AND u.PERIOD = TO_VARCHAR(CURRENT_TIMESTAMP(), 'YYYY-MM') "
        "WHERE p.OFFBOARDED_ON IS NULL GROUP BY p.CURRENCY",
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


def sql_string(value: str) -> str:
    """A Snowflake single-quoted string constant of `value`: backslash and quote escaped, as Snowflake reads
    them (https://docs.snowflake.com/en/sql-reference/data-types-text#escape-sequences-in-single-quoted-string-constants)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def partner_merge_sql(database: str, source: str = "%s") -> str:
    """Upsert of partners' terms rows (insert or update by PARTNER_ID), from `source`: a JSON array of row objects
    with the PARTNER_TERMS columns, bound as one parameter (`%s`, `platformctl warehouse sync`) or given as a
    string constant (a partner stack's Execute resource). ONBOARDED_ON is set by the first upsert and kept."""
    select = ", ".join(f"f.value:{c.name}::{c.type} AS {c.name}" for c in PARTNERS.columns if c.name in PARTNER_TERMS)
    # A currency change takes effect from the first day of the next month (UTC): the row keeps its current
    # currency and prices and holds the new ones as PENDING_* with PENDING_FROM; the meter prices a month from
    # PENDING_FROM on with them, and the next upsert once that month has come makes them current. Every SET
    # expression reads the row as it was before this MERGE (SQL's UPDATE semantics).
    due = "(t.PENDING_FROM IS NOT NULL AND t.PENDING_FROM <= TO_VARCHAR(CURRENT_DATE(), 'YYYY-MM'))"
    same = f"s.CURRENCY = (CASE WHEN {due} THEN t.PENDING_CURRENCY ELSE t.CURRENCY END)"
    changes = [f"{name} = s.{name}" for name in PARTNER_TERMS if name != PARTNERS.key and name not in PRICED]
    for name in PRICED:
        changes.append(f"{name} = CASE WHEN {same} THEN s.{name} WHEN {due} THEN t.PENDING_{name} ELSE t.{name} END")
        changes.append(f"PENDING_{name} = CASE WHEN {same} THEN NULL ELSE s.{name} END")
    changes.append(
        f"PENDING_FROM = CASE WHEN {same} THEN NULL ELSE TO_VARCHAR(DATEADD('month', 1, CURRENT_DATE()), 'YYYY-MM') END"
    )
    updates = ", ".join(changes)
    names = ", ".join((*PARTNER_TERMS, "ONBOARDED_ON"))
    values = ", ".join((*(f"s.{name}" for name in PARTNER_TERMS), "CURRENT_DATE()"))
    return (
        f"MERGE INTO {PARTNERS.fqn(database)} t USING (SELECT {select} FROM LATERAL FLATTEN(INPUT => "
        f"PARSE_JSON({source})) f) s ON t.{PARTNERS.key} = s.{PARTNERS.key} "
        f"WHEN MATCHED THEN UPDATE SET {updates} WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
    )


def partner_merge_statement(database: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """`partner_merge_sql` with the rows inlined: the one statement a partner stack's `up` runs."""
    return partner_merge_sql(database, sql_string(partner_rows_json(rows)))


def partner_rows_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """Terms rows as the JSON array the merge reads: exactly the PARTNER_TERMS columns, money as strings."""
    checked = []
    for row in rows:
        if set(row) != set(PARTNER_TERMS):
            raise ValueError(f"a terms row has the columns {', '.join(PARTNER_TERMS)}; got {', '.join(sorted(row))}")
        checked.append({name: row[name] for name in PARTNER_TERMS})
    return json.dumps(checked, separators=(",", ":"), default=str, sort_keys=False)


def rows_json(table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as the JSON array a merge reads: exactly `columns` of `table`, money as strings."""
    checked = []
    for row in rows:
        if set(row) != set(columns):
            raise ValueError(f"a {table.name} row has the columns {', '.join(columns)}; got {', '.join(sorted(row))}")
        checked.append({name: row[name] for name in columns})
    return json.dumps(checked, separators=(",", ":"), default=str, sort_keys=False)


def _flatten(table: Table, columns: Sequence[str], source: str) -> str:
    select = ", ".join(f"f.value:{c.name}::{c.type} AS {c.name}" for c in table.columns if c.name in columns)
    return f"(SELECT {select} FROM LATERAL FLATTEN(INPUT => PARSE_JSON({source})) f) s ON t.{table.key} = s.{table.key}"


def install_merge_sql(database: str, source: str = "%s") -> str:
    """Upsert of install rows (INSTALL_TERMS columns, JSON array, bound as `%s` or inlined): a new install is
    dated today; an existing one keeps its date and prices (the partner's and the developer's, both the prices at
    install) unless it was removed (a re-install: dated and priced anew) or the partner's currency changed (both
    priced anew, at the same moment); REMOVED_ON is cleared."""
    again = "(t.REMOVED_ON IS NOT NULL)"
    repriced = f"({again} OR t.CURRENCY <> s.CURRENCY)"
    sets = ["PARTNER_ID = s.PARTNER_ID", "INTEGRATION_ID = s.INTEGRATION_ID", "DEVELOPER_ID = s.DEVELOPER_ID"]
    priced = ("CURRENCY", "MINOR_UNITS", "MONTHLY_MINOR")
    sets += [f"{n} = CASE WHEN {repriced} THEN s.{n} ELSE t.{n} END" for n in priced]
    # A row written before DEVELOPER_* existed (NULL) takes the price listed now: the one at its install is not known,
    # and fixing it now stops later raises reaching it. (The developer's payout currency cannot change, a developer
    # that moves country being a new developer id; a differing one is priced anew all the same, never mixed.)
    developer_repriced = f"({repriced} OR t.DEVELOPER_CURRENCY IS NULL OR t.DEVELOPER_CURRENCY <> s.DEVELOPER_CURRENCY)"
    sets += [
        f"{n} = CASE WHEN {developer_repriced} THEN s.{n} ELSE t.{n} END"
        for n in ("DEVELOPER_CURRENCY", "DEVELOPER_MONTHLY_MINOR")
    ]
    sets += [f"INSTALLED_ON = CASE WHEN {again} THEN CURRENT_DATE() ELSE t.INSTALLED_ON END", "REMOVED_ON = NULL"]
    names = ", ".join((*INSTALL_TERMS, "INSTALLED_ON"))
    values = ", ".join((*(f"s.{n}" for n in INSTALL_TERMS), "CURRENT_DATE()"))
    return (
        f"MERGE INTO {INSTALLS.fqn(database)} t USING {_flatten(INSTALLS, INSTALL_TERMS, source)} "
        f"WHEN MATCHED THEN UPDATE SET {', '.join(sets)} WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
    )


def install_merge_statement(database: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """`install_merge_sql` with the rows inlined: what a stack's Execute runs."""
    return install_merge_sql(database, sql_string(rows_json(INSTALLS, INSTALL_TERMS, rows)))


def install_remove_sql(database: str, install_id: str) -> str:
    """An install dropped: REMOVED_ON = today where still NULL; the row is kept (earlier months are still billed)."""
    return (
        f"UPDATE {INSTALLS.fqn(database)} SET REMOVED_ON = CURRENT_DATE() "
        f"WHERE {INSTALLS.key} = {sql_string(install_id)} AND REMOVED_ON IS NULL"
    )


def developer_merge_sql(database: str, source: str = "%s") -> str:
    """Upsert of developer rows (DEVELOPER_TERMS columns): every column takes the new value, except that a row
    without a Stripe account keeps the one recorded (a developer's stacks are not all updated at once)."""
    sets = [
        f"{n} = COALESCE(s.{n}, t.{n})" if n == "STRIPE_ACCOUNT" else f"{n} = s.{n}"
        for n in DEVELOPER_TERMS
        if n != DEVELOPERS.key
    ]
    return _upsert_sql(database, DEVELOPERS, DEVELOPER_TERMS, source, sets)


def developer_merge_statement(database: str, rows: Sequence[Mapping[str, Any]]) -> str:
    return developer_merge_sql(database, sql_string(rows_json(DEVELOPERS, DEVELOPER_TERMS, rows)))


def integration_merge_sql(database: str, source: str = "%s") -> str:
    """Upsert of integrations' payout terms rows (INTEGRATION_TERMS columns): every column takes the new value."""
    sets = [f"{n} = s.{n}" for n in INTEGRATION_TERMS if n != INTEGRATIONS.key]
    return _upsert_sql(database, INTEGRATIONS, INTEGRATION_TERMS, source, sets)


def _upsert_sql(database: str, table: Table, columns: Sequence[str], source: str, sets: Sequence[str]) -> str:
    """MERGE of `columns` rows from `source` into `table` by its key: `sets` on a match, every column inserted
    otherwise (the shape the developer and integration upserts share)."""
    names = ", ".join(columns)
    values = ", ".join(f"s.{n}" for n in columns)
    return (
        f"MERGE INTO {table.fqn(database)} t USING {_flatten(table, columns, source)} "
        f"WHEN MATCHED THEN UPDATE SET {', '.join(sets)} WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
    )


def integration_merge_statement(database: str, rows: Sequence[Mapping[str, Any]]) -> str:
    return integration_merge_sql(database, sql_string(rows_json(INTEGRATIONS, INTEGRATION_TERMS, rows)))


ACTIVE_INSTALLS_SQL = (
    "SELECT INSTALL_ID, PARTNER_ID, INTEGRATION_ID, DEVELOPER_ID, CURRENCY, MONTHLY_MINOR, DEVELOPER_CURRENCY, "
    "DEVELOPER_MONTHLY_MINOR FROM {installs} "
    "WHERE INSTALLED_ON <= %s AND (REMOVED_ON IS NULL OR REMOVED_ON >= %s) ORDER BY INSTALL_ID"
)
"""THE definition of an install active in a period (bound in order: its last day, its first day): installed on or
before the period's last day and not removed before its first day. A month's charge is the whole monthly price (no
proration). `{installs}` stands for the table's fully qualified name."""


def active_installs_sql(database: str) -> str:
    return ACTIVE_INSTALLS_SQL.format(installs=INSTALLS.fqn(database))


def partner_offboard_sql(database: str, partner_id: str) -> str:
    """What a partner stack's destroy runs: the row is kept (statements of earlier periods still read it)."""
    return (
        f"UPDATE {PARTNERS.fqn(database)} SET OFFBOARDED_ON = CURRENT_DATE() "
        f"WHERE {PARTNERS.key} = {sql_string(partner_id)} AND OFFBOARDED_ON IS NULL"
    )
