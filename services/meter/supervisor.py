"""The flusher's process: started by `meter serve`, restarted when it dies, drained on SIGTERM.

Why a process: see services/meter/flusher.py. It shares the spool file (SQLite WAL takes a second connection)
and counters in shared memory with the HTTP process, nothing else. The HTTP process stays the one that answers
SIGTERM: the flusher ignores SIGINT/SIGTERM (a Ctrl-C reaches the whole process group) and drains when the
supervisor tells it to, within the budget it is given; past that it is killed, and whatever it had not marked
flushed stays in the spool (the warehouse write is idempotent, so a batch written but not marked is harmless).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.meter.flusher import SPAWN, Flusher, RosterHandover, SharedFlag, WarehouseStats
from services.meter.notices import OutboxPublisher
from services.meter.roster import RosterFeed, roster_path
from services.meter.spool import Spool, SpoolReader

log = logging.getLogger("meter.supervisor")
FLUSHER_NICE = 10
"""The flusher yields the CPU to the request path: acknowledgements are what callers wait for, the warehouse
write is batch work that catches up when the requests leave CPU to spare."""
RESTART_BACKOFF = 1.0
MAX_RESTART_BACKOFF = 30.0
STABLE_SECONDS = 60.0
"""A flusher that ran this long before dying restarts after the shortest backoff again."""
CRASH_LOOP_RESTARTS = 3
"""Restarts within CRASH_LOOP_WINDOW that make /healthz say the flusher is crash-looping."""
CRASH_LOOP_WINDOW = 300.0
POLL_SECONDS = 0.1
"""How often a sleeping flusher looks at the drain flag."""
PUBLISH_JOIN_SECONDS = 6.0
"""How long a draining flusher waits for the outbox thread's post in flight (one post's timeout, and a little)."""
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class FlusherConfig:
    spool_path: Path
    """The spool file (the HTTP process writes it)."""
    dedupe_seconds: float
    """How long flushed event ids stay in the spool."""
    warehouse_url: str
    """local:DIR or snowflake://..."""
    region: str | None = None
    """Meter the partners homed in this region (PARTNERS.HOME_REGION); None: every active partner."""
    create_schema: bool = False
    """Create tables and views (the embedded warehouse only)."""
    interval: float = 1.0
    """Seconds between flushes unless a full batch waits."""
    replay_bytes: int | None = None
    """Pages in use above which the flusher prunes flushed events (the spool's replay window)."""
    webhooks_url: str = ""
    """The region's webhooks service (WEBHOOKS_URL); empty: no webhook events are produced."""
    webhooks_token: str = field(default="", repr=False)
    """The producers' token (WEBHOOKS_EVENT_TOKEN)."""

    @property
    def webhooks(self) -> bool:
        return bool(self.webhooks_url and self.webhooks_token)


def _flusher_main(
    config: FlusherConfig,
    stats: WarehouseStats,
    flushed: Any,
    drain: Any,
    budget: Any,
    parent: int,
    roster_generation: Any,
    roster_wanted: Any,
) -> None:
    """The flusher process: flush until told to drain (or orphaned), then drain within the budget."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked from the spawn until here (`_spawn`)
    _die_with_parent()
    with contextlib.suppress(OSError):
        os.nice(FLUSHER_NICE)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    from services import warehouse

    def orphaned() -> bool:
        return os.getppid() != parent

    def draining() -> bool:
        return drain.is_set()

    def sleep(seconds: float) -> None:
        # In slices: a drain request or an orphaned flusher must be noticed soon (DuckDB allows one process).
        end = time.monotonic() + seconds
        # Also ends early when the HTTP process asks for the roster (a callback of an unknown partner waits).
        while not draining() and not roster_wanted.is_set() and not orphaned() and time.monotonic() < end:
            time.sleep(min(POLL_SECONDS, max(0.0, end - time.monotonic())))

    reader = SpoolReader(config.spool_path, config.dedupe_seconds, flushed, config.replay_bytes)
    flusher = Flusher(
        reader,
        lambda: warehouse.connect(config.warehouse_url),
        stats,
        RosterHandover(roster_path(config.spool_path), config.region, roster_generation, roster_wanted),
        config.create_schema,
        interval=config.interval,
        notices=config.webhooks,
    )
    publisher_thread = None
    if config.webhooks:
        # A thread of this process: the HTTP process never waits for the webhooks service.
        from services.webhooks.producer import TOKEN_ENV, URL_ENV

        publisher = OutboxPublisher(
            config.spool_path, {URL_ENV: config.webhooks_url, TOKEN_ENV: config.webhooks_token}, stats=stats
        )
        publisher_thread = threading.Thread(
            target=publisher.run,
            args=(lambda: draining() or orphaned(), lambda seconds: _sleep_until(seconds, draining, orphaned)),
            name="webhooks-outbox",
            daemon=True,
        )
        publisher_thread.start()
    try:
        flusher.run(lambda: draining() or orphaned(), sleep)
        if not orphaned():
            flusher.drain(time.monotonic() + budget.value)
    finally:
        if publisher_thread is not None:
            publisher_thread.join(timeout=PUBLISH_JOIN_SECONDS)  # what it has not posted stays in the outbox
        flusher.close()
        reader.close()


def _sleep_until(seconds: float, *stop: Any) -> None:
    end = time.monotonic() + seconds
    while not any(check() for check in stop) and time.monotonic() < end:
        time.sleep(min(POLL_SECONDS, max(0.0, end - time.monotonic())))


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the thread that started it ends (the supervisor's, which lives as long as
    the meter), so a `kill -9` of the meter never leaves a flusher holding the warehouse. Elsewhere the flusher
    notices its parent is gone within a quarter second."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class FlusherSupervisor:
    """Runs the flusher process and starts it again when it dies (with backoff); `stop` drains it."""

    def __init__(self, config: FlusherConfig, spool: Spool, stats: WarehouseStats) -> None:
        self.config = config
        self._spool = spool
        self.stats = stats
        self._drain = SharedFlag()
        self._budget = SPAWN.RawValue("d", 0.0)
        self._restarts: list[float] = []
        self._roster_generation = SPAWN.RawValue("q", 0)
        self._roster_wanted = SharedFlag()
        self.roster_feed = RosterFeed(roster_path(config.spool_path), self._roster_generation, self._roster_wanted)
        """The HTTP process's view of the roster the flusher reads from PARTNERS."""
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process: Any = None
        self._thread = threading.Thread(target=self._supervise, name="flusher-supervisor", daemon=True)
        self._started = threading.Event()

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None else int(process.pid)

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        self._started.wait(timeout)

    def _spawn(self) -> Any:
        process = SPAWN.Process(
            target=_flusher_main,
            args=(
                self.config,
                self.stats,
                self._spool.flushed,
                self._drain,
                self._budget,
                os.getpid(),
                self._roster_generation,
                self._roster_wanted,
            ),
            name="meter-flusher",
            daemon=True,
        )
        # Ctrl-C reaches the whole process group: held back while the child starts (the mask survives the exec), so
        # that one arriving while it imports does not end it with a KeyboardInterrupt traceback before
        # `_flusher_main` ignores SIGINT.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        return process

    def _supervise(self) -> None:
        backoff = RESTART_BACKOFF
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                self._process = process = self._spawn()
            self._started.set()
            started = time.monotonic()
            process.join()
            if self._stopping.is_set():
                return
            ran = time.monotonic() - started
            backoff = RESTART_BACKOFF if ran > STABLE_SECONDS else backoff
            self._restarts = [*self._restarts[-CRASH_LOOP_RESTARTS:], time.monotonic()]
            self.stats.restarted()
            self.stats.set_up(False)
            log.error(
                "the flusher process exited (code %s) after %.0f s; starting it again in %.0f s, %d events wait",
                process.exitcode,
                ran,
                backoff,
                self._spool.pending,
            )
            if self._stopping.wait(backoff):
                return
            backoff = min(MAX_RESTART_BACKOFF, backoff * 2)

    def problem(self) -> str | None:
        """Why the flusher is not doing its work, for /healthz: None when it is."""
        recent = [t for t in self._restarts if time.monotonic() - t < CRASH_LOOP_WINDOW]
        return "flusher_crash_loop" if len(recent) >= CRASH_LOOP_RESTARTS else None

    def stop(self, deadline: float) -> None:
        """Drain: the flusher writes what the warehouse takes until `deadline` (time.monotonic()), then exits;
        killed if it has not by then."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None and process.is_alive():
            # The flusher's own deadline is a little earlier, so it stops between batches rather than being killed.
            self._budget.value = max(0.0, deadline - time.monotonic() - 1.0)
            self._drain.set()
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("the flusher did not finish its drain in time; stopping it, the rest stays spooled")
                process.kill()
                process.join(5)
        self._thread.join(5)
