"""`webhooks serve`: settings from arguments and the environment, the store, the dispatcher, the HTTP server."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sqlite3
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation.errors import InputError
from services.webhooks.app import WebhooksState, build_app
from services.webhooks.dispatcher import Dispatcher
from services.webhooks.metrics import Metrics
from services.webhooks.netguard import Guard, Policy, parse_networks
from services.webhooks.sealing import SealError, load_box
from services.webhooks.store import Store

EVENT_TOKEN_ENV = "WEBHOOKS_EVENT_TOKEN"
KONG_TOKEN_ENV = "WEBHOOKS_KONG_TOKEN"
ALLOW_LOOPBACK_ENV = "WEBHOOKS_ALLOW_LOOPBACK"
TIME_SCALE_ENV = "WEBHOOKS_TIME_SCALE"
BLOCKED_CIDRS_ENV = "WEBHOOKS_BLOCKED_CIDRS"
PLATFORM_DOMAINS_ENV = "WEBHOOKS_PLATFORM_DOMAINS"
IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"
FAILING_DISABLE_SECONDS = 5 * 86400
"""An endpoint that has failed for this long without a success is disabled."""
DRAIN_SECONDS = 10.0
log = logging.getLogger("webhooks")


@dataclass(frozen=True)
class ServeConfig:
    host: str
    """Address to listen on."""
    port: int
    """Port to listen on."""
    store: str
    """local:DIR: the SQLite store lives in DIR/webhooks.db."""
    per_endpoint: int = 8
    """Attempts in flight per endpoint at most."""


@dataclass(frozen=True)
class Settings:
    event_token: str
    kong_token: str
    policy: Policy
    time_scale: float


def store_path(store: str) -> Path:
    if not store.startswith("local:") or not store.removeprefix("local:"):
        raise InputError.single("--store", store, "must be local:DIR")
    return Path(store.removeprefix("local:")).expanduser() / "webhooks.db"


def settings(env: Mapping[str, str]) -> Settings:
    """Everything from the environment, checked; bad input raises InputError naming the variable."""
    missing = [name for name in (EVENT_TOKEN_ENV, KONG_TOKEN_ENV) if not env.get(name)]
    if missing:
        raise InputError.single("environment", ", ".join(missing), "not set: callers cannot be authenticated")
    if env[EVENT_TOKEN_ENV] == env[KONG_TOKEN_ENV]:
        raise InputError.single(
            "environment", f"{EVENT_TOKEN_ENV}, {KONG_TOKEN_ENV}", "must differ: the gateway must not be a producer"
        )
    in_cluster = bool(env.get(IN_CLUSTER_ENV))
    allow_loopback = env.get(ALLOW_LOOPBACK_ENV, "") not in ("", "0")
    scale_text = env.get(TIME_SCALE_ENV, "")
    for name, used in ((ALLOW_LOOPBACK_ENV, allow_loopback), (TIME_SCALE_ENV, bool(scale_text))):
        if used and in_cluster:
            raise InputError.single("environment", name, f"a test setting, refused in a cluster ({IN_CLUSTER_ENV} set)")
    time_scale = 1.0
    if scale_text:
        try:
            time_scale = float(scale_text)
        except ValueError:
            time_scale = math.nan
        if not (math.isfinite(time_scale) and 0 < time_scale <= 1):
            raise InputError.single("environment", TIME_SCALE_ENV, "must be a number in (0, 1]")
    try:
        blocked = parse_networks(env.get(BLOCKED_CIDRS_ENV, "").split(","), BLOCKED_CIDRS_ENV)
    except ValueError as exc:
        raise InputError.single("environment", BLOCKED_CIDRS_ENV, str(exc)) from None
    domains = tuple(d.strip().lower() for d in env.get(PLATFORM_DOMAINS_ENV, "").split(",") if d.strip())
    policy = Policy(blocked=blocked, platform_domains=domains, allow_loopback=allow_loopback)
    return Settings(env[EVENT_TOKEN_ENV], env[KONG_TOKEN_ENV], policy, time_scale)


def prepare(config: ServeConfig, env: Mapping[str, str] | None = None, guard: Guard | None = None) -> WebhooksState:
    """Everything serve checks and opens before it listens; bad input raises InputError (exit 2)."""
    env = os.environ if env is None else env
    found = settings(env)
    path = store_path(config.store)
    try:
        store = Store(path, failing_disable_seconds=FAILING_DISABLE_SECONDS * found.time_scale)
    except (OSError, sqlite3.Error) as exc:  # a file where the folder should be, /proc, no permission, not SQLite
        raise InputError.single("--store", config.store, f"cannot open the store at {path}: {exc}") from None
    try:
        store.box = load_box(env, store.meta_get, store.meta_put)
    except SealError as exc:
        store.close()
        raise InputError.single("environment", "WEBHOOKS_KMS_KEY_ID / WEBHOOKS_SECRET_KEY", str(exc)) from None
    guard = guard or Guard(found.policy)
    metrics = Metrics()
    dispatcher = Dispatcher(store, guard, metrics, scale=found.time_scale, per_endpoint=config.per_endpoint)
    return WebhooksState(
        store=store,
        dispatcher=dispatcher,
        guard=guard,
        event_token=found.event_token,
        kong_token=found.kong_token,
        metrics=metrics,
    )


def serve(config: ServeConfig) -> None:
    import uvicorn

    state = prepare(config)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        await state.dispatcher.start()
        counts = state.store.counts()
        log.info(
            "webhooks listening on %s:%d, %d messages pending, loopback endpoints %s, time scale %g",
            config.host,
            config.port,
            counts["pending"],
            "ALLOWED (test setting)" if state.guard.policy.allow_loopback else "refused",
            state.dispatcher.scale,
        )
        yield
        state.draining = True
        await state.dispatcher.stop(DRAIN_SECONDS)
        log.info("webhooks stopped, %d messages pending", state.store.counts()["pending"])

    server = uvicorn.Server(
        uvicorn.Config(
            build_app(state, lifespan=lifespan),
            host=config.host,
            port=config.port,
            lifespan="on",
            access_log=False,
            timeout_graceful_shutdown=5,
            log_level="info",
            server_header=False,
        )
    )
    try:
        server.run()
    finally:
        state.store.close()
