"""Moves spooled events into the warehouse in batches, idempotently; waits and retries when it is down.

This loop runs in its own process (services/meter/supervisor.py starts and watches it): fakesnow's SQL
translation and the batch handling are CPU-bound Python, and in the request handler's process they held the GIL
for half of the time the acknowledgements needed it. It shares nothing with the HTTP process but the spool file
and a few counters in shared memory (WarehouseStats, the spool's flushed count).
"""

from __future__ import annotations

import bisect
import logging
import multiprocessing
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from foundation.warehouse_schema import API_REQUESTS, USAGE_EVENTS
from services import warehouse
from services.meter.notices import OUTBOX_MAX_PENDING, Notice, batch_notices
from services.meter.roster import ROSTER_REFRESH_SECONDS, Partner, read_roster, write_roster
from services.meter.spool import SpoolReader

log = logging.getLogger("meter.flusher")
TABLES = {"call": USAGE_EVENTS, "api": API_REQUESTS}
BATCH = 10_000
"""Rows per warehouse write. fakesnow spends ~80 ms translating a MERGE whatever its size, so small batches cost
CPU; but it also copies the batch's JSON (inlined in the SQL) several times while it does, so big ones cost
memory: 20,000 rows swung the flusher's RSS by ~150 MiB, 10,000 by ~70."""
PRUNE_EVERY = 3600.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SPAWN = multiprocessing.get_context("spawn")
"""Never fork: the meter has threads (spool writer, supervisor) and a fork would copy their locks mid-use."""
_KINDS = tuple(TABLES)
_FLUSHED = 0  # one slot per kind
_ERRORS = len(_KINDS)
_UP = _ERRORS + 1
_RESTARTS = _UP + 1
_LAT_SUM = _RESTARTS + 1
_LAT_COUNT = _LAT_SUM + 1
_BUCKETS = _LAT_COUNT + 1
_WEBHOOKS = _BUCKETS + len(LATENCY_BUCKETS) + 1  # sent, refused, failed tries, not produced, unsent (gauge)
_WEBHOOK_SLOTS = ("sent", "refused", "failed", "not_produced", "unsent")
_SLOTS = _WEBHOOKS + len(_WEBHOOK_SLOTS)


class SharedFlag:
    """A flag both processes see, polled: what multiprocessing.Event was used for, without its hazards. An Event is a
    Condition over semaphores: set() waits for every process that ever slept on it to wake, and a flusher killed
    mid-wait never does (SIGTERM hung forever once the flusher had been restarted); killed while it held the
    Condition's lock, it blocks set(), clear() and is_set() for good. A RawValue has no lock and no semaphore (nothing
    for the resource tracker to call leaked at exit)."""

    def __init__(self) -> None:
        self._value = SPAWN.RawValue("i", 0)

    def set(self) -> None:
        self._value.value = 1

    def clear(self) -> None:
        self._value.value = 0

    def is_set(self) -> bool:
        return bool(self._value.value)


class WarehouseStats:
    """The flusher's counters in shared memory: written by the flusher process (one writer at a time, the
    supervisor restarts it), read by /metrics in the HTTP process. Doubles count exactly up to 2**53."""

    def __init__(self) -> None:
        self._slots = SPAWN.RawArray("d", _SLOTS)

    def write(self, seconds: float, rows_by_kind: dict[str, int]) -> None:
        slots = self._slots
        for kind, rows in rows_by_kind.items():
            slots[_FLUSHED + _KINDS.index(kind)] += rows
        slots[_BUCKETS + bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        slots[_LAT_SUM] += seconds
        slots[_LAT_COUNT] += 1

    def error(self) -> None:
        self._slots[_ERRORS] += 1

    def set_up(self, up: bool) -> None:
        self._slots[_UP] = 1.0 if up else 0.0

    def webhooks(self, what: str, count: int = 1) -> None:
        """Count webhook events by `what` (_WEBHOOK_SLOTS); `unsent` is set, not added."""
        slot = _WEBHOOKS + _WEBHOOK_SLOTS.index(what)
        if what == "unsent":
            self._slots[slot] = count
        else:
            self._slots[slot] += count

    def restarted(self) -> None:
        self._slots[_RESTARTS] += 1

    @property
    def restarts(self) -> int:
        return int(self._slots[_RESTARTS])

    @property
    def errors(self) -> int:
        return int(self._slots[_ERRORS])

    def render(self) -> list[str]:
        slots = list(self._slots)
        lines = [
            "# HELP meter_flushed_total Rows written to the warehouse.",
            "# TYPE meter_flushed_total counter",
            *(f'meter_flushed_total{{kind="{k}"}} {int(slots[_FLUSHED + i])}' for i, k in enumerate(_KINDS)),
            "# HELP meter_warehouse_errors_total Warehouse writes that failed (retried later).",
            "# TYPE meter_warehouse_errors_total counter",
            f"meter_warehouse_errors_total {int(slots[_ERRORS])}",
            "# HELP meter_warehouse_up Whether the flusher holds a working warehouse connection.",
            "# TYPE meter_warehouse_up gauge",
            f"meter_warehouse_up {int(slots[_UP])}",
            "# HELP meter_flusher_restarts_total Times the flusher process died and was started again.",
            "# TYPE meter_flusher_restarts_total counter",
            f"meter_flusher_restarts_total {int(slots[_RESTARTS])}",
            "# HELP meter_warehouse_write_seconds Latency of one batched warehouse write.",
            "# TYPE meter_warehouse_write_seconds histogram",
        ]
        cumulative = 0
        for i, bound in enumerate((*LATENCY_BUCKETS, float("inf"))):
            cumulative += int(slots[_BUCKETS + i])
            label = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'meter_warehouse_write_seconds_bucket{{le="{label}"}} {cumulative}')
        lines.append(f"meter_warehouse_write_seconds_sum {slots[_LAT_SUM]}")
        lines.append(f"meter_warehouse_write_seconds_count {int(slots[_LAT_COUNT])}")
        lines += [
            "# HELP meter_webhooks_events_total Webhook events: sent, refused by the service (set aside), failed tries "
            "(retried), not produced (the outbox was full).",
            "# TYPE meter_webhooks_events_total counter",
            *(
                f'meter_webhooks_events_total{{outcome="{what}"}} {int(slots[_WEBHOOKS + i])}'
                for i, what in enumerate(_WEBHOOK_SLOTS[:-1])
            ),
            "# HELP meter_webhooks_outbox_unsent Webhook events waiting in the spool's outbox for the service.",
            "# TYPE meter_webhooks_outbox_unsent gauge",
            f"meter_webhooks_outbox_unsent {int(slots[_WEBHOOKS + len(_WEBHOOK_SLOTS) - 1])}",
        ]
        return lines


class Flusher:
    def __init__(
        self,
        reader: SpoolReader,
        connect: Callable[[], Any],
        stats: WarehouseStats,
        roster: RosterHandover | None,
        create_schema: bool,
        interval: float = 0.5,
        max_backoff: float = 10.0,
        notices: bool = False,
    ) -> None:
        self._reader = reader
        self._notices = notices
        """Write the webhook events of each batch to the outbox (services/meter/notices.py)."""
        self._partners: dict[str, Partner] = {}
        """The roster last read (its quotas decide usage.threshold)."""
        self._left_out_logged = False
        self._connect = connect
        self._stats = stats
        self._roster = roster
        self._create_schema = create_schema
        self.interval = interval
        self.max_backoff = max_backoff
        self._conn: Any = None
        self._last_prune = time.monotonic()
        self._spool_failing = False

    def run(self, stopping: Callable[[], bool], sleep: Callable[[float], None]) -> None:
        """Flush until `stopping()`; `sleep(seconds)` returns early when asked to stop."""
        backoff = self.interval
        while not stopping():
            if self._roster is not None and self._roster.due():
                self.refresh_roster()
            written = self.flush_once()
            spool_ok = self.housekeeping()
            ok = written is not None and spool_ok
            backoff = self.interval if ok else min(self.max_backoff, backoff * 2)
            # Only a full batch goes straight on: fakesnow spends ~80 ms of CPU on any MERGE, so a loop that wrote
            # whatever had come in since the last write would spend a core on small batches under steady load.
            if not ok or written is None or written < BATCH:
                sleep(backoff)

    def housekeeping(self) -> bool:
        """Checkpoint the WAL, keep the replay window within its size, forget ids past the dedupe age. False when the
        spool's disk refused (full): logged, retried on the next round - the flusher degrades, it does not die."""
        try:
            # Also while the warehouse is down: the spool's writer leaves checkpoints to us (spool.py), and without
            # them its WAL would grow with every event.
            self._reader.checkpoint()
            self._reader.trim()
            if time.monotonic() - self._last_prune > PRUNE_EVERY:
                self._reader.prune()
                self._last_prune = time.monotonic()
        except sqlite3.Error as exc:
            self._spool_trouble(exc)
            return False
        self._spool_failing = False
        return True

    def _spool_trouble(self, exc: sqlite3.Error) -> None:
        # Once per episode at WARNING (a full disk would otherwise log every round), then at DEBUG.
        level = logging.DEBUG if self._spool_failing else logging.WARNING
        log.log(level, "the spool refused the flusher's write, retrying: %s", _first_line(exc))
        self._spool_failing = True

    def drain(self, deadline: float) -> None:
        """Flush what the warehouse takes until nothing is pending or `deadline` (time.monotonic()) passes."""
        while time.monotonic() < deadline:
            if not self.flush_once():
                break

    def flush_once(self) -> int | None:
        """Write one batch: how many events it held, or None when the warehouse is unreachable or refused it (the
        events stay in the spool)."""
        try:
            rows = self._reader.oldest(BATCH)
        except sqlite3.Error as exc:
            self._spool_trouble(exc)
            return None
        try:
            conn = self._connection()
            if not rows:
                return 0
            by_kind: dict[str, list[str]] = {}
            for _, kind, row in rows:
                by_kind.setdefault(kind, []).append(row)
            started = time.perf_counter()
            for kind, batch in by_kind.items():
                # The spool holds each row as JSON already: join, not decode and encode again.
                warehouse.merge_json(conn, TABLES[kind], "[" + ",".join(batch) + "]")
            self._stats.write(time.perf_counter() - started, {k: len(v) for k, v in by_kind.items()})
            notices = self._batch_notices(conn, by_kind.get("call", [])) if self._notices else []
        except Exception as exc:  # any driver error: the events stay spooled and the write is retried
            self._stats.error()
            log.warning("warehouse write failed, %d events wait in the spool: %s", len(rows), _first_line(exc))
            self.close()
            return None
        try:
            self._reader.mark_flushed([seq for seq, _, _ in rows], notices)
        except sqlite3.Error as exc:
            # Written but not marked: the batch is written again later, which the MERGE ignores.
            self._spool_trouble(exc)
            return None
        return len(rows)

    def _batch_notices(self, conn: Any, call_rows: list[str]) -> list[Notice]:
        """The batch's webhook events (after its warehouse write: a threshold counts the batch's minutes). Raises
        like a warehouse write, and the batch is written again later."""
        if not call_rows:
            return []
        room = max(0, OUTBOX_MAX_PENDING - self._reader.outbox_unsent())
        notices, left_out = batch_notices(conn, call_rows, self._partners, room, time.time())
        if left_out:
            self._stats.webhooks("not_produced", left_out)
            level = logging.DEBUG if self._left_out_logged else logging.ERROR
            log.log(
                level,
                "the webhooks outbox holds %d unsent events (the service has been down long): %d call.completed "
                "events were not produced (usage is metered as always)",
                OUTBOX_MAX_PENDING,
                left_out,
            )
            self._left_out_logged = True
        elif room:
            self._left_out_logged = False
        return notices

    def _connection(self) -> Any:
        if self._conn is None:
            conn = self._connect()
            if self._create_schema:
                warehouse.ensure_schema(conn)
            self._conn = conn
            self._stats.set_up(True)
        return self._conn

    def refresh_roster(self) -> bool:
        """Read the region's partners from PARTNERS and hand them to the HTTP process; False when the warehouse
        could not be read (the last roster stays in force; the next loop tries again)."""
        assert self._roster is not None
        try:
            roster = read_roster(self._connection(), self._roster.region)
        except Exception as exc:  # any driver error: keep metering the partners known so far
            self._stats.error()
            log.warning("reading PARTNERS failed, the last roster stays in force: %s", _first_line(exc))
            self.close()
            self._roster.failed()
            return False
        self._partners = roster
        try:
            self._roster.publish(roster)
        except OSError as exc:  # the roster file sits beside the spool: a full disk must not kill the flusher
            log.warning("cannot hand the roster over, the last one stays in force: %s", _first_line(exc))
            self._roster.failed()
            return False
        return True

    def close(self) -> None:
        self._stats.set_up(False)
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a broken connection may fail too; nothing to do about it
                log.debug("closing the warehouse connection failed", exc_info=True)
            self._conn = None


class RosterHandover:
    """The flusher's side of the roster: when to read PARTNERS again, and how the result reaches the HTTP process
    (services/meter/roster.py): the file beside the spool, then the generation counter, then the request cleared."""

    def __init__(self, path: Any, region: str | None, generation: Any, wanted: Any) -> None:
        self.path = path
        self.region = region
        self._generation = generation
        self._wanted = wanted
        self._last = -ROSTER_REFRESH_SECONDS

    def due(self) -> bool:
        return self._wanted.is_set() or time.monotonic() - self._last >= ROSTER_REFRESH_SECONDS

    def publish(self, roster: dict[str, Any]) -> None:
        write_roster(self.path, roster)
        self._last = time.monotonic()
        self._generation.value += 1
        self._wanted.clear()
        log.info("roster: %d partners%s", len(roster), f" homed in {self.region}" if self.region else "")

    def failed(self) -> None:
        # Waiting callbacks are answered now rather than at their timeout; the periodic refresh retries soon.
        self._last = time.monotonic() - ROSTER_REFRESH_SECONDS + 1.0
        self._wanted.clear()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
