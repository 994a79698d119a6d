"""The regional warehouse, reached by URL: `local:DIR` (fakesnow persisting under DIR) or `snowflake://...`.

Both give a DB-API connection that speaks Snowflake SQL; `ensure_schema` creates the tables and views from
`foundation.warehouse_schema`, the definitions the SnowflakeWarehouse component deploys, and `merge_rows` is
the one idempotent batch write (insert-if-absent by the table's key).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import re
import shutil
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from foundation.errors import InputError, PlatformError
from foundation.warehouse_schema import SCHEMAS, TABLES, VIEWS, Table, View

DEFAULT_URL = "local:.platformctl/warehouse"
LOCAL_DATABASE = "PLATFORM_LOCAL"
"""Database name of the embedded warehouse (a region's real one is PLATFORM_<REGION>)."""
KEY_ENV = "SNOWFLAKE_PRIVATE_KEY"
"""PEM private key of the service user (key-pair auth); or a file named by SNOWFLAKE_PRIVATE_KEY_FILE."""
KEY_FILE_ENV = "SNOWFLAKE_PRIVATE_KEY_FILE"
KEY_PASSPHRASE_ENV = "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"
LOCAL_MEMORY_LIMIT = "128MB"
"""DuckDB's buffer pool for the embedded warehouse. Its default is 80% of the machine's RAM, all of which a
process that runs for weeks may come to cache; past the limit DuckDB evicts (and spills under DIR)."""
LOCAL_THREADS = 1
"""DuckDB's threads (default: one per core): the embedded warehouse is the meter's background work and
must leave the other core to the request path."""
KEEP_RESULTS = 2
"""fakesnow results kept (see _RecentResults): each holds its statement's SQL, for a MERGE the whole batch."""
NETWORK_TIMEOUT = 60
"""Seconds the Snowflake connector may spend on one request, its own retries included."""
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$")
_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


class WarehouseUnavailableError(PlatformError):
    """The warehouse cannot be reached or refused a statement; the caller retries later."""


def anchored(url: str, base: Path) -> str:
    """A `local:` URL with a relative directory, taken relative to `base` (the repository), not to wherever the
    command was started: `--root` elsewhere must not read an empty warehouse."""
    if url.startswith("local:"):
        directory = url.removeprefix("local:")
        if directory and not Path(directory).is_absolute():
            return f"local:{base / directory}"
    return url


def connect(url: str = DEFAULT_URL) -> Any:
    """A DB-API connection to the warehouse named by `url` (see the module docstring)."""
    if url.startswith("local:"):
        return _connect_local(url.removeprefix("local:"))
    if url.startswith("snowflake://"):
        return _connect_snowflake(url)
    raise InputError.single("--warehouse", "", "must be local:DIR or snowflake://ACCOUNT/DATABASE?user=...")


LOCAL_EXTRA = "platform-services[local]"


def check_local_available() -> None:
    """The embedded warehouse needs fakesnow, an extra the image leaves out (it brings pyarrow and DuckDB)."""
    import importlib.util

    if importlib.util.find_spec("fakesnow") is None:
        raise InputError.single(
            "--warehouse",
            "",
            f"local: needs the embedded warehouse (pip install '{LOCAL_EXTRA}'); "
            "the image has none: give snowflake://ACCOUNT/DATABASE?user=&role=&warehouse=",
        )


def _connect_local(directory: str) -> Any:
    if not directory or "\x00" in directory:
        raise InputError.single("--warehouse", "", "local: needs a directory, e.g. local:.platformctl/warehouse")
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError.single("--warehouse", "", f"cannot create {directory}: {exc.strerror}") from None
    check_local_available()
    import duckdb
    from fakesnow.instance import FakeSnow

    _remove_stage_folder_at_exit()

    # fakesnow copies DB-API results through Arrow and says so on every fetch; it is not our concern.
    warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)
    instance = FakeSnow(db_path=path)
    instance.duck_conn.execute(f"SET memory_limit = '{LOCAL_MEMORY_LIMIT}'")
    instance.duck_conn.execute(f"SET threads = {LOCAL_THREADS}")
    # fakesnow keeps every statement's result for get_results_from_sfqid, with its SQL text (a MERGE's whole batch,
    # inlined) and parsed tree, for the life of the connection: a writer that runs for days needs the last few only.
    instance.results_cache = _RecentResults()
    try:
        conn = instance.connect(database=LOCAL_DATABASE)
    except duckdb.Error as exc:
        instance.duck_conn.close()
        if any(word in str(exc).lower() for word in ("lock", "already attached", "in use")):
            message = f"the warehouse under {directory} is in use by another process (a running meter?)"
            raise PlatformError(message) from None
        raise PlatformError(f"cannot open the warehouse under {directory}: {str(exc).splitlines()[0]}") from None
    return _LocalConnection(conn, instance)


_stage_folder: list[tuple[int, str]] = []
"""(pid, path) of fakesnow's stage folder, recorded by the process that first opened the embedded warehouse."""


def _remove_stage_folder_at_exit() -> None:
    stage = sys.modules.get("fakesnow.transforms.stage")
    # A forked child inherits its parent's record: the folder stays the parent's to remove.
    if stage is not None and not _stage_folder and Path(stage.LOCAL_BUCKET_PATH).name.startswith("fakesnow_bucket_"):
        _stage_folder.append((os.getpid(), stage.LOCAL_BUCKET_PATH))
        atexit.register(remove_stage_folder)


def remove_stage_folder() -> None:
    """Remove the temporary folder fakesnow made for stages when this process imported it.

    fakesnow never removes it ("TODO: clean up temp files on exit", fakesnow/transforms/stage.py, 0.12.1): every
    command, meter and flusher that opened the embedded warehouse left an empty `fakesnow_bucket_*` behind. Nothing
    here uses stages, and what a stage held there was this process's alone (the next one gets another folder).
    Opening the embedded warehouse registers this to run at exit; the meter, which uvicorn ends with the SIGTERM it
    received (no exit handlers), calls it when it has stopped. Only the folder recorded by this very process, and
    only one named as fakesnow names it, is removed."""
    for pid, path in _stage_folder:
        if pid == os.getpid():
            shutil.rmtree(path, ignore_errors=True)


class _RecentResults(dict[str, Any]):
    """A results cache that keeps the KEEP_RESULTS newest entries (insertion order: the oldest go first)."""

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > KEEP_RESULTS:
            del self[next(iter(self))]


class _LocalConnection:
    """fakesnow's connection, whose close() also releases the DuckDB file (so another process can open it)."""

    def __init__(self, conn: Any, instance: Any) -> None:
        self._conn = conn
        self._instance = instance
        self.database = LOCAL_DATABASE

    @property
    def instance(self) -> Any:
        """The fakesnow instance (its DuckDB connection and results cache), for checks of the limits above."""
        return self._instance

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def close(self) -> None:
        self._conn.close()
        self._instance.duck_conn.close()


def snowflake_params(url: str, env: Mapping[str, str]) -> dict[str, Any]:
    """Connector arguments for `snowflake://ACCOUNT/DATABASE?user=U&role=R&warehouse=W` with key-pair auth."""
    parts = urlsplit(url)
    if parts.password or parts.username:
        raise InputError.single("--warehouse", "", "no credentials in the URL; the key comes from the environment")
    account = parts.netloc
    database = parts.path.strip("/")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if not _ACCOUNT.fullmatch(account):
        raise InputError.single("--warehouse", "account", "must be the Snowflake account identifier (ORG-ACCOUNT)")
    if not _IDENT.fullmatch(database):
        raise InputError.single("--warehouse", "database", "must be one Snowflake identifier, e.g. PLATFORM_EU_CENTRAL")
    unknown = sorted(set(query) - {"user", "role", "warehouse", *_ENDPOINT})
    if unknown:
        raise InputError.single("--warehouse", "", f"unknown URL parameters {', '.join(unknown)}")
    for key in ("user", "role", "warehouse"):
        if not _IDENT.fullmatch(query.get(key, "")):
            raise InputError.single("--warehouse", key, "required: one Snowflake identifier")
    return {
        **_endpoint(query),
        "account": account,
        "database": database,
        "user": query["user"],
        "role": query["role"],
        "warehouse": query["warehouse"],
        "private_key": _private_key(env),
        "autocommit": True,
        # Every statement names its objects in full; a default schema costs nothing and keeps statements that
        # make temporary objects working on fakesnow's server (its MERGE asserts a current schema, 0.12.1).
        "schema": "RAW",
        # The connector retries a 5xx or a dropped answer by itself, by default without end: a command would
        # hang. Past this the error reaches the caller (the flusher retries later; a command exits 1).
        "network_timeout": NETWORK_TIMEOUT,
    }


_ENDPOINT = ("host", "port", "protocol")
"""Connector arguments that point it at another endpoint than ACCOUNT.snowflakecomputing.com: a private link host, or
a loopback stand-in (fakesnow's server) in tests. Plain http only to loopback: the key-pair JWT must not cross a
network in clear."""
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _endpoint(query: Mapping[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    host = query.get("host")
    if host is not None:
        if not re.fullmatch(r"[A-Za-z0-9.:-]{1,253}", host):
            raise InputError.single("--warehouse", "host", "must be a host name or address")
        params["host"] = host
    if "port" in query:
        if not query["port"].isdigit() or not 1 <= int(query["port"]) <= 65535:
            raise InputError.single("--warehouse", "port", "must be 1-65535")
        params["port"] = int(query["port"])
    protocol = query.get("protocol", "https")
    if protocol not in ("https", "http"):
        raise InputError.single("--warehouse", "protocol", "must be https (or http to a loopback host)")
    if protocol == "http" and host not in _LOOPBACK:
        raise InputError.single("--warehouse", "protocol", "http is allowed to a loopback host only")
    if "protocol" in query:
        params["protocol"] = protocol
    return params


def _private_key(env: Mapping[str, str]) -> bytes:
    from cryptography.hazmat.primitives import serialization

    pem = env.get(KEY_ENV, "")
    if not pem and env.get(KEY_FILE_ENV):
        try:
            pem = Path(env[KEY_FILE_ENV]).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            raise InputError.single(KEY_FILE_ENV, "", "cannot read the key file") from None
    if not pem:
        raise InputError.single(KEY_ENV, "", f"not set: key-pair auth needs {KEY_ENV} or {KEY_FILE_ENV}")
    passphrase = env.get(KEY_PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), passphrase.encode() if passphrase else None)
    except (ValueError, TypeError, UnicodeEncodeError):
        # The key's text never goes into the message.
        raise InputError.single(KEY_ENV, "", "not a PEM private key (or the passphrase is wrong)") from None
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _connect_snowflake(url: str) -> Any:
    import snowflake.connector

    params = snowflake_params(url, os.environ)
    try:
        return snowflake.connector.connect(**params)
    except snowflake.connector.errors.Error as exc:
        raise WarehouseUnavailableError(f"cannot connect to Snowflake account {params['account']}: {exc.msg}") from None


def ensure_schema(conn: Any) -> None:
    """Create the schemas, tables and views (if absent) in the connection's database. Called right after `connect`,
    outside a transaction (the embedded warehouse's check reads what is committed).

    On the embedded warehouse, when they are all there as today's definitions and today's fakesnow make them
    (`_local_schema_is_current`), no DDL runs: the connection is left as the DDL would leave it
    (`_record_text_lengths`, and the session's schema)."""
    database = conn.database
    cur = conn.cursor()
    if isinstance(conn, _LocalConnection) and _local_schema_is_current(conn):
        _record_text_lengths(conn)
        # Where the whole DDL would leave the session (CREATE SCHEMA makes the new schema the current one).
        cur.execute(f"USE SCHEMA {database}.{list(SCHEMAS)[-1]}")
        return
    for schema in SCHEMAS:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.{schema}")
    for table in TABLES:
        cur.execute(table.create_sql(database))
        # A warehouse created before a nullable column was added gets it (e.g. PARTNERS.MONTHLY_MINUTES_QUOTA).
        for column in table.columns:
            if column.nullable:
                cur.execute(f"ALTER TABLE {table.fqn(database)} ADD COLUMN IF NOT EXISTS {column.name} {column.type}")
    for view in VIEWS:
        # Secure views are an access concern of the real account (the component sets it); DuckDB has none.
        cur.execute(f"CREATE OR REPLACE VIEW {database}.{view.schema}.{view.name} AS {view.statement(database)}")
    if isinstance(conn, _LocalConnection):
        for view in VIEWS:
            # Literal, not a parameter: DuckDB's COMMENT ON takes no prepared parameters. The digest is hex.
            comment = _view_digest(view, database)
            conn.instance.duck_conn.execute(f"COMMENT ON VIEW {database}.{view.schema}.{view.name} IS '{comment}'")


SNOWFLAKE_VARCHAR_DEFAULT = 16_777_216
"""A VARCHAR's length when none is given (Snowflake's maximum; fakesnow records the same)."""


def _record_text_lengths(conn: _LocalConnection) -> None:
    """What fakesnow records when it runs a CREATE TABLE, recorded the same way without compiling one: each VARCHAR
    column's length, in the connection's in-memory catalog, which INFORMATION_SCHEMA.COLUMNS reads
    (CHARACTER_MAXIMUM_LENGTH 64 for a VARCHAR(64), as on Snowflake). fakesnow writes it with
    `info_schema.insert_text_lengths_sql` (fakesnow/cursor.py, 0.12.1); a fakesnow without it gets the tables' no-op
    CREATE TABLE IF NOT EXISTS instead (~70 ms)."""
    insert_text_lengths_sql = _fakesnow_text_lengths_statement()
    if insert_text_lengths_sql is None:
        cur = conn.cursor()
        for table in TABLES:
            cur.execute(table.create_sql(conn.database))
        return
    for table in TABLES:
        lengths = []
        for column in table.columns:
            varchar = re.fullmatch(r"VARCHAR(?:\((\d+)\))?", column.type)
            if varchar:
                lengths.append((column.name, int(varchar.group(1) or SNOWFLAKE_VARCHAR_DEFAULT)))
        if lengths:
            sql = insert_text_lengths_sql(conn.database, table.schema, table.name, lengths)
            conn.instance.duck_conn.execute(sql)


def _fakesnow_text_lengths_statement() -> Callable[[str, str, str, list[tuple[str, int]]], str] | None:
    try:
        from fakesnow.info_schema import insert_text_lengths_sql
    except ImportError:
        return None
    return insert_text_lengths_sql


@functools.cache
def _translator() -> str:
    """What turned a view's Snowflake text into the SQL DuckDB stores (`NUMBER(38,0)` into `BIGINT`, say): another
    version may translate it otherwise, and its views are then made again."""
    from importlib.metadata import version

    return " ".join(f"{name}={version(name)}" for name in ("fakesnow", "sqlglot", "duckdb"))


def _view_digest(view: View, database: str) -> str:
    text = f"{_translator()}\n{view.statement(database)}"
    return "platformctl-definition:" + hashlib.sha256(text.encode()).hexdigest()


def _local_schema_is_current(conn: _LocalConnection) -> bool:
    """Whether the embedded warehouse already holds what ensure_schema's DDL makes: every table with every column,
    and every view made from today's statement by today's translator (its DuckDB comment holds their digest).
    fakesnow compiles each DDL statement with sqlglot (about 10 ms each, 27 of them), and every writer and the
    meter's flusher call ensure_schema when they connect; DuckDB's own catalog answers this in a millisecond."""
    duck = conn.instance.duck_conn
    database = conn.database
    schemas = {
        name
        for (name,) in duck.execute(
            "SELECT schema_name FROM duckdb_schemas() WHERE database_name = ?", [database]
        ).fetchall()
    }
    if not set(SCHEMAS) <= schemas:
        return False
    table_columns = (  # duckdb_columns() lists views' columns too: a view standing where a table should is not one
        "SELECT c.schema_name, c.table_name, c.column_name FROM duckdb_columns() c "
        "JOIN duckdb_tables() t USING (database_name, schema_name, table_name) WHERE c.database_name = ?"
    )
    columns = set(duck.execute(table_columns, [database]).fetchall())
    if not {(t.schema, t.name, c.name) for t in TABLES for c in t.columns} <= columns:
        return False
    comments = dict(
        ((schema, name), comment)
        for schema, name, comment in duck.execute(
            "SELECT schema_name, view_name, comment FROM duckdb_views() WHERE database_name = ?", [database]
        ).fetchall()
    )
    return all(comments.get((v.schema, v.name)) == _view_digest(v, database) for v in VIEWS)


def merge_sql(table: Table, database: str) -> str:
    """Insert-if-absent by the table's key, for a batch bound as one JSON array of row objects.

    One parameter whatever the batch size: the statement stays short to compile (fakesnow parses every
    statement with sqlglot; Snowflake compiles it once), and a retried batch changes nothing.
    """
    select = ", ".join(f"f.value:{c.name}::{c.type} AS {c.name}" for c in table.columns)
    names = ", ".join(c.name for c in table.columns)
    values = ", ".join(f"s.{c.name}" for c in table.columns)
    return (
        f"MERGE INTO {table.fqn(database)} t USING (SELECT {select} FROM LATERAL FLATTEN(INPUT => PARSE_JSON(%s)) f) s "
        f"ON t.{table.key} = s.{table.key} WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
    )


def merge_rows(conn: Any, table: Table, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write `rows` (column name -> JSON-able value) insert-if-absent; returns how many were new."""
    batch = list(rows)
    if not batch:
        return 0
    return merge_json(conn, table, json.dumps(batch, separators=(",", ":")))


def merge_json(conn: Any, table: Table, rows_json: str) -> int:
    """`merge_rows` for a batch that is JSON already (a JSON array of row objects): the meter's spool holds rows
    as JSON, and decoding them only to encode them again is work for nothing."""
    cur = conn.cursor()
    cur.execute(merge_sql(table, conn.database), (rows_json,))
    result = cur.fetchone()
    return int(result[0]) if result else 0
