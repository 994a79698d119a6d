"""`platformctl meter serve`: the meter process - checks, spool, flusher, HTTP server, graceful drain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from foundation.errors import InputError
from foundation.naming import REGION_CODE_PATTERN
from services import warehouse
from services.meter import listener
from services.meter.app import MeterState, build_app
from services.meter.notices import webhooks_configured
from services.meter.roster import Partner, load_roster, read_roster, roster_path, write_roster
from services.meter.spool import Spool
from services.meter.subaccounts import ACCOUNT_SID_ENV, SubaccountTokens
from services.meter.supervisor import FlusherConfig, FlusherSupervisor
from services.webhooks.producer import TOKEN_ENV, URL_ENV, settings_problem

TWILIO_TOKEN_ENV = "TWILIO_AUTH_TOKEN"
KONG_TOKEN_ENV = "METER_KONG_TOKEN"
DRAIN_SECONDS = 30.0
"""SIGTERM to exit, at most (Kubernetes' default terminationGracePeriodSeconds)."""
HTTP_GRACE_SECONDS = 5.0
"""Of the drain: for requests in flight; the rest is for flushing."""
log = logging.getLogger("meter")
QUIET_LOGGERS = ("twilio.http_client", "snowflake.connector")
"""Libraries that log every request (URL, query, headers) at INFO: at the meter's level they would bury its own
lines, and a subaccount lookup's URL names the partner. Their warnings and errors still show."""


@dataclass(frozen=True)
class ServeConfig:
    host: str
    """Address to listen on."""
    port: int
    """Port to listen on."""
    warehouse_url: str
    """local:DIR or snowflake://..."""
    public_url: str | None
    """Base URL Twilio calls (it signs this URL); default http://HOST:PORT."""
    spool_path: Path
    """SQLite spool file (the roster the flusher reads from PARTNERS is kept beside it)."""
    region: str | None = None
    """Meter only the partners homed in this region (PARTNERS.HOME_REGION; the deployed meter always sets it)."""
    max_pending: int = 1_000_000
    """Events the spool holds for the warehouse before it answers 503."""
    flush_interval: float = 1.0
    """Seconds between flushes unless a full batch waits."""
    interrupted: Callable[[], bool] = lambda: False
    """Whether the caller's Ctrl-C arrived while the meter was starting (an interrupt can be swallowed on the way,
    and uvicorn's own signal handling starts only later): then the meter stops as soon as it has started."""


def _tokens(env: Mapping[str, str]) -> tuple[SubaccountTokens, str]:
    missing = [name for name in (ACCOUNT_SID_ENV, TWILIO_TOKEN_ENV, KONG_TOKEN_ENV) if not env.get(name)]
    if missing:
        raise InputError.single(
            "environment", ", ".join(missing), "not set: the meter cannot authenticate callbacks without it"
        )
    return SubaccountTokens.from_env(env), env[KONG_TOKEN_ENV]


def _public_url(config: ServeConfig) -> str:
    url = config.public_url or f"http://{config.host}:{config.port}"
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket and the like
        raise InputError.single("--public-url", "", f"{url[:200]!r} is not a URL") from None
    # An empty query or fragment ("https://x?") still changes the URL Twilio signs: refused like a non-empty one.
    if parts.scheme not in ("http", "https") or not parts.hostname or "?" in url or "#" in url or parts.username:
        raise InputError.single("--public-url", "", "must be http(s)://HOST[:PORT][/PREFIX], no query or credentials")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (parts.netloc.endswith(":") and port is None):
        raise InputError.single("--public-url", "port", f"{url!r}: the port must be 1-65535")
    return url.rstrip("/")


def _check_region(region: str | None) -> None:
    # The services carry no region catalog (it lives with the tool); a well-formed code the warehouse has no
    # partners for is a region not serving yet, which the meter reports when it starts, not an error.
    if region is not None and not re.fullmatch(REGION_CODE_PATTERN, region):
        raise InputError.single("--region", "", f"{region!r} is not a region code such as eu-central")


SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_spool(path: Path) -> None:
    """The spool path must name a file that is absent, empty or an SQLite database, in a folder we can create."""
    shown = str(path)
    if path.is_dir():
        raise InputError.single("--spool", "", f"{shown} is a folder; give a file in it, e.g. {path / 'spool.db'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError.single("--spool", "", f"{parent} is not a folder")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError.single("--spool", "", f"cannot create {path.parent}: {exc.strerror}") from None
    if path.exists():
        if not path.is_file():
            raise InputError.single("--spool", "", f"{shown} is not a regular file")
        try:
            with path.open("rb") as handle:
                head = handle.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise InputError.single("--spool", "", f"cannot read {shown}: {exc.strerror}") from None
        if head and head != SQLITE_MAGIC:
            raise InputError.single(
                "--spool", "", f"{shown} is not a meter spool (not an SQLite database); move it away or choose another"
            )
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError.single("--spool", "", f"{path.parent} is not writable")


def _check_warehouse(url: str, env: Mapping[str, str]) -> None:
    if url.startswith("snowflake://"):
        warehouse.snowflake_params(url, env)
    elif url.startswith("local:"):
        warehouse.check_local_available()
    else:
        warehouse.connect(url)  # raises the InputError that names the accepted forms


def first_roster(config: ServeConfig) -> dict[str, Partner]:
    """The roster before listening: read from PARTNERS now (the flusher has not started, so the embedded warehouse
    is free), else the one the last run handed over, else none (every callback waits for the flusher's read)."""
    path = roster_path(config.spool_path)
    try:
        conn = warehouse.connect(config.warehouse_url)
        try:
            if config.warehouse_url.startswith("local:"):
                warehouse.ensure_schema(conn)
            roster = read_roster(conn, config.region)
        finally:
            conn.close()
    except Exception as exc:  # the warehouse is down: meter the partners the last run knew; the flusher retries
        log.warning("cannot read PARTNERS (%s); starting with the roster of the last run", str(exc).splitlines()[0])
        return load_roster(path) or {}
    write_roster(path, roster)
    where = f" homed in {config.region}" if config.region else ""
    if not roster:
        log.warning("no active partners%s in the warehouse's PARTNERS table: every callback is 404 until one is", where)
    return roster


def check(config: ServeConfig, env: Mapping[str, str] | None = None) -> tuple[SubaccountTokens, str, str]:
    """The arguments and environment, checked before anything is opened or written: the tokens and public URL."""
    environment = os.environ if env is None else env
    subaccounts, kong_token = _tokens(environment)
    public_url = _public_url(config)
    _check_region(config.region)
    _check_warehouse(config.warehouse_url, environment)
    _check_spool(config.spool_path)
    problem = settings_problem(environment)
    if problem is not None:
        raise problem
    return subaccounts, kong_token, public_url


def prepare(config: ServeConfig, env: Mapping[str, str] | None = None) -> tuple[MeterState, FlusherSupervisor]:
    """Everything `serve` checks and opens before it listens; bad input raises InputError (exit 2)."""
    subaccounts, kong_token, public_url = check(config, env)
    environment = os.environ if env is None else env
    if not webhooks_configured(environment):
        log.warning(
            "webhooks production is off (%s and %s are not both set): no call.completed or usage.threshold events",
            URL_ENV,
            TOKEN_ENV,
        )
    spool = Spool(config.spool_path, max_pending=config.max_pending)  # locks it: a second meter stops here
    roster = first_roster(config)
    state = MeterState(
        roster=roster, spool=spool, subaccounts=subaccounts, kong_token=kong_token, public_url=public_url
    )
    flusher = FlusherSupervisor(
        FlusherConfig(
            spool_path=config.spool_path,
            dedupe_seconds=spool.dedupe_seconds,
            warehouse_url=config.warehouse_url,
            region=config.region,
            # The embedded warehouse is ours to create; a real account's objects are the SnowflakeWarehouse
            # component's, and the loader role may only write rows.
            create_schema=config.warehouse_url.startswith("local:"),
            interval=config.flush_interval,
            replay_bytes=spool.replay_bytes,
            webhooks_url=environment.get(URL_ENV, ""),
            webhooks_token=environment.get(TOKEN_ENV, ""),
        ),
        spool,
        state.metrics.warehouse,
    )
    state.roster_feed = flusher.roster_feed
    state.flusher = flusher
    return state, flusher


def serve(config: ServeConfig) -> None:
    import uvicorn

    listening = listener.bind(config.host, config.port)  # before anything starts: a port in use is exit 2
    state, flusher = prepare(config)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    for chatty in QUIET_LOGGERS:
        logging.getLogger(chatty).setLevel(logging.WARNING)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        await asyncio.to_thread(flusher.start)
        if config.interrupted():
            server.should_exit = True  # Ctrl-C while starting: drain and stop like a SIGINT now
        log.info(
            "meter listening on %s:%d, %d partners, %d events spooled, flusher process %s",
            config.host,
            config.port,
            len(state.roster),
            state.spool.pending,
            flusher.pid,
        )
        yield
        state.draining = True
        deadline = time.monotonic() + DRAIN_SECONDS - HTTP_GRACE_SECONDS - 1.0
        await asyncio.to_thread(flusher.stop, deadline)
        log.info("meter stopped, %d events stay in the spool", state.spool.pending)
        warehouse.remove_stage_folder()

    app = build_app(state, lifespan=lifespan)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            lifespan="on",
            access_log=False,
            timeout_graceful_shutdown=int(HTTP_GRACE_SECONDS),
            log_level="info",
            server_header=False,
            **listener.uvicorn_limits(),
        )
    )
    try:
        server.run(sockets=[listening])
    finally:
        state.spool.close()
