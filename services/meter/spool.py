"""The durable local spool: an event is acknowledged only after its row is fsynced here.

SQLite in WAL mode with synchronous=FULL: each commit is fsynced before it returns, so a `kill -9` (or a
power cut) after the acknowledgement cannot lose the event. One writer thread takes everything queued since
its last commit and commits it as one transaction (group commit): under load one fsync acknowledges
hundreds of requests, and at low load a lone request waits for one fsync only.

What the spool keeps: every event not yet in the warehouse, plus a replay window of flushed events whose ids
answer a resend (Twilio's and Kong's retries come within seconds to minutes) as a duplicate, across restarts. The
window is bounded twice: by age (`dedupe_days`) and by size - flushed rows are pruned oldest first whenever the
spool's pages in use pass REPLAY_SHARE of its capacity, which is VOLUME_SHARE of the volume it lives on. So the spool
never fills with flushed events, whatever the rate; a resend older than the window is still counted once, by the
warehouse MERGE on EVENT_ID. Only a backlog (the warehouse down long enough) can fill it: then it answers 503
with Retry-After, and /healthz says so.

The flusher reads the spool from its own process (its own connection, `SpoolReader`); what it marked flushed
comes back through a counter in shared memory, so the spool's depth is known without counting rows. It writes
in `seq` order, so "flushed" is one number, the highest `seq` written (`flushed_through`): marking a batch of
10,000 is one row, not 10,000 row updates holding the write lock while acknowledgements wait for it (20,000
took ~180 ms). `seq` never goes back (the newest row is never pruned), so an event that arrives later always
sorts above the mark.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import multiprocessing
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation.errors import InputError
from services.meter.events import Event

_CTX = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class Notice:
    """A webhook event of a flushed batch, kept in the spool's outbox until posted (services/meter/notices.py)."""

    event_id: str
    """The webhooks event id (derived from what it is about)."""
    body: str
    """The event as JSON: {"id", "type", "partner", "data"}."""
    keep_until: float | None = None
    """Keep the id this long after it is sent (None: forget it once sent)."""


NEW, DUPLICATE, CONFLICT = "new", "duplicate", "conflict"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  row TEXT NOT NULL,
  received REAL NOT NULL,
  flushed INTEGER NOT NULL DEFAULT 0  -- before flushed_through (kept so that older spools open as they are)
);
CREATE TABLE IF NOT EXISTS flushed_through (one INTEGER PRIMARY KEY CHECK (one = 1), seq INTEGER NOT NULL);
-- Webhook events of flushed batches, written with their batch's mark; posted by services/meter/notices.py.
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL UNIQUE,
  body TEXT NOT NULL,
  created REAL NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  sent REAL,              -- NULL until the webhooks service took it (or refused it)
  refused TEXT,
  keep_until REAL         -- a sent id is kept until then (NULL: deleted once sent)
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (seq) WHERE sent IS NULL;
"""
CACHE_KIB = 16384
"""SQLite's page cache per connection (default 2 MiB): the event-id index takes random inserts and lookups, and
a cache that holds its upper levels keeps them off the disk. Bounded, so memory stays flat (it fills up to this
over the first few hundred thousand events, then stays)."""
_IN_CHUNK = 500
VOLUME_SHARE = 0.8
"""Of the spool's volume, what the spool may fill (the rest: SQLite's WAL and temporary files, headroom)."""
REPLAY_SHARE = 0.5
"""Of the spool's capacity, what flushed events may keep: the rest is for a backlog while the warehouse is down."""
WAL_LIMIT_BYTES = 64 * 1024 * 1024
"""A checkpointed WAL is truncated back to this (journal_size_limit): without it the file keeps its largest size."""
DISK_RESERVE_BYTES = 64 * 1024 * 1024
"""Free space on the volume below which /healthz reports the spool cannot safely accept writes (a twentieth of the
volume if that is less)."""
OUTBOX_CHUNK = 500
"""Webhook events written to the outbox per transaction (services/meter/notices.py)."""
PROBE_SECONDS = 5.0
"""After a failed write (disk full), how often the writer tries a tiny write to see whether space is back."""


class SpoolFullError(Exception):
    """More events wait for the warehouse than the spool may hold."""


@dataclass
class _Batch:
    events: Sequence[Event]
    future: asyncio.Future[list[str]]
    loop: asyncio.AbstractEventLoop


def open_db(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    db.executescript(_SCHEMA)
    return db


def _migrate(db: sqlite3.Connection) -> None:
    """A spool from before `flushed_through`: its mark is just below the first row not flushed (the flusher
    always wrote in seq order; a row above it written already is written again, which the MERGE ignores)."""
    db.execute("BEGIN IMMEDIATE")
    if db.execute("SELECT seq FROM flushed_through").fetchone() is None:
        (first,) = db.execute("SELECT MIN(seq) FROM events WHERE flushed = 0").fetchone()
        (top,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        db.execute("INSERT INTO flushed_through (one, seq) VALUES (1, ?)", (top if first is None else first - 1,))
    db.execute("DROP INDEX IF EXISTS pending")
    db.execute("DROP INDEX IF EXISTS flushed_age")
    db.execute("COMMIT")


def volume_bytes(directory: Path) -> int:
    """Size of the filesystem holding `directory`."""
    stat = os.statvfs(directory)
    return stat.f_blocks * stat.f_frsize


def volume_free_bytes(directory: Path) -> int:
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def lock_spool(path: Path) -> Any:
    """Hold `<spool>.lock` for this process's life: a second meter on the same spool is refused (InputError, exit
    2) naming the holder, before it opens anything. flock, so a killed holder releases it with its last descriptor."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path.with_name(path.name + ".lock"), "a+")  # noqa: SIM115 - held open on purpose
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise InputError.single("--spool", str(path), f"is in use by another meter (pid {holder})") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


@dataclass
class SpoolSize:
    used_bytes: int
    """Database pages in use (free pages excluded: SQLite reuses them)."""
    file_bytes: int
    """Database file plus WAL on disk."""
    first_seq: int
    """Oldest row kept."""
    last_seq: int
    """Newest row."""


class Spool:
    def __init__(
        self,
        path: Path,
        max_pending: int = 1_000_000,
        dedupe_days: float = 7.0,
        capacity_bytes: int | None = None,
    ) -> None:
        self.path = path
        self._lock = lock_spool(path)
        self.max_pending = max_pending
        self.dedupe_seconds = dedupe_days * 86400
        self.capacity_bytes = capacity_bytes or int(volume_bytes(path.parent) * VOLUME_SHARE)
        """What the spool may fill; a REPLAY_SHARE of it may be flushed events kept for dedupe."""
        self.write_error: str | None = None
        """Why the last write failed (disk full...), until one succeeds again."""
        self.write_errors = 0
        self._db = open_db(path)
        # Checkpoints (WAL pages copied into the database file, and its fsync) are the flusher's to run: done by
        # the committing writer they stalled every acknowledgement queued behind that commit.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        _migrate(self._db)
        self.size = self._measure()
        self._added = int(
            self._db.execute("SELECT COUNT(*) FROM events WHERE seq > (SELECT seq FROM flushed_through)").fetchone()[0]
        )
        # Rows the flusher marked flushed since this spool opened; it lives in another process.
        self.flushed = _CTX.RawValue("q", 0)
        self._queue: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Events durable here and not yet in the warehouse."""
        return self._added - int(self.flushed.value)

    async def append(self, events: Sequence[Event]) -> list[str]:
        """Make `events` durable; one outcome per event: NEW, DUPLICATE or CONFLICT."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[str]] = loop.create_future()
        self._queue.put(_Batch(events, future, loop))
        return await future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._db.close()
        self._lock.close()

    def problems(self) -> list[str]:
        """Why the spool cannot take events now, for /healthz: empty when it can."""
        found = []
        if self.pending >= self.max_pending or self.size.used_bytes >= self.capacity_bytes:
            found.append("spool_full")
        if self.write_error is not None:
            found.append("spool_write_failing")
        with contextlib.suppress(OSError):
            if volume_free_bytes(self.path.parent) < min(DISK_RESERVE_BYTES, volume_bytes(self.path.parent) // 20):
                found.append("spool_disk_low")
        return found

    def _measure(self) -> SpoolSize:
        page_size, pages, free = (
            self._db.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_size", "page_count", "freelist_count")
        )
        first, last = self._db.execute("SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM events").fetchone()
        on_disk = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                on_disk += os.stat(f"{self.path}{suffix}").st_size
        return SpoolSize((pages - free) * page_size, on_disk, first, last)

    # ---------------------------------------------------------------- writer thread

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=PROBE_SECONDS if self.write_error else None)
            except queue.Empty:
                self._probe()
                continue
            if first is None:
                return
            batches = [first]
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._commit(batches)
                    return
                batches.append(more)
            self._commit(batches)

    def _commit(self, batches: list[_Batch]) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            results, added = self._insert(batches, time.time())
            self._db.execute("COMMIT")  # synchronous=FULL: returns after the WAL is fsynced
        except sqlite3.Error as exc:
            self._failed(exc)
            results = [exc] * len(batches)
            added = 0
        else:
            self.write_error = None
        self._added += added  # only this thread writes it
        with contextlib.suppress(sqlite3.Error):
            self.size = self._measure()
        for batch, result in zip(batches, results, strict=True):
            batch.loop.call_soon_threadsafe(_settle, batch.future, result)

    def _failed(self, exc: sqlite3.Error) -> None:
        with contextlib.suppress(sqlite3.Error):
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        self.write_errors += 1
        self.write_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__

    def _probe(self) -> None:
        """A write that changes nothing, to learn whether the disk takes writes again with no event arriving (a
        meter reported unready gets none)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("UPDATE flushed_through SET seq = seq")
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._failed(exc)
        else:
            self.write_error = None

    def _insert(self, batches: list[_Batch], now: float) -> tuple[list[list[str] | BaseException], int]:
        """One lookup of the ids already here and one executemany for everything queued: per-event statements
        cost more in Python than SQLite spends on the rows."""
        ids = list({event.event_id for batch in batches for event in batch.events})
        known: dict[str, str] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            known.update(
                self._db.execute(
                    f"SELECT event_id, fingerprint FROM events WHERE event_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
            )
        results: list[list[str] | BaseException] = []
        rows: list[tuple[str, str, str, str, float]] = []
        over_capacity = self.size.used_bytes >= self.capacity_bytes
        if over_capacity:  # the flusher may have pruned since the last commit measured
            self.size = self._measure()
            over_capacity = self.size.used_bytes >= self.capacity_bytes
        for batch in batches:
            if over_capacity or self.pending + len(rows) + len(batch.events) > self.max_pending:
                results.append(SpoolFullError())
                continue
            outcome = []
            for event in batch.events:
                fingerprint = known.get(event.event_id)
                if fingerprint is None:
                    known[event.event_id] = event.fingerprint
                    rows.append((event.event_id, event.kind, event.fingerprint, event.row_json(), now))
                    outcome.append(NEW)
                else:
                    outcome.append(DUPLICATE if fingerprint == event.fingerprint else CONFLICT)
            results.append(outcome)
        self._db.executemany(
            "INSERT INTO events (event_id, kind, fingerprint, row, received) VALUES (?, ?, ?, ?, ?)", rows
        )
        return results, len(rows)

    # ---------------------------------------------------------------- flusher side (own connection)

    def reader(self) -> SpoolReader:
        return SpoolReader(self.path, self.dedupe_seconds, self.flushed, self.replay_bytes)

    @property
    def replay_bytes(self) -> int:
        """Pages in use above which flushed events are pruned (oldest first)."""
        return int(self.capacity_bytes * REPLAY_SHARE)


def _settle(future: asyncio.Future[list[str]], result: list[str] | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class SpoolReader:
    """The flusher's view: oldest pending events, the flushed-through mark, pruning old flushed ids."""

    def __init__(self, path: Path, dedupe_seconds: float, flushed: Any, replay_bytes: int | None = None) -> None:
        self._dedupe_seconds = dedupe_seconds
        self._replay_bytes = replay_bytes
        self._flushed = flushed  # the Spool's shared counter (one writer: the one flusher process)
        self._db = open_db(path)
        # Losing a mark to a power cut only means writing a batch again, which the MERGE ignores: no fsync for it.
        self._db.execute("PRAGMA synchronous=NORMAL")

    def _mark(self) -> int:
        return int(self._db.execute("SELECT seq FROM flushed_through").fetchone()[0])

    def oldest(self, limit: int) -> list[tuple[int, str, str]]:
        return self._db.execute(
            "SELECT seq, kind, row FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (self._mark(), limit)
        ).fetchall()

    def mark_flushed(self, seqs: Sequence[int], notices: Sequence[Notice] = ()) -> None:
        """`seqs`: the batch `oldest` returned, now in the warehouse; `notices`: its webhook events, written to the
        outbox first (an id the outbox holds already is left as it is).

        The outbox rows go in chunks of OUTBOX_CHUNK, a transaction each, then the mark: each holds the spool's write
        lock briefly, so acknowledgements queued behind it wait a few milliseconds, not the ~65 ms one transaction of
        10,000 rows took. A crash in between leaves the batch unmarked: it is written again (the MERGE ignores it) and
        its events are offered again (the outbox ignores the ids it holds; one sent meanwhile is posted again, which
        the webhooks service answers as a duplicate)."""
        if not seqs:
            return
        now = time.time()
        for start in range(0, len(notices), OUTBOX_CHUNK):
            chunk = notices[start : start + OUTBOX_CHUNK]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO outbox (event_id, body, created, keep_until) VALUES (?, ?, ?, ?)",
                    [(n.event_id, n.body, now, n.keep_until) for n in chunk],
                )
                self._db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
        changed = self._db.execute("UPDATE flushed_through SET seq = ? WHERE seq < ?", (seqs[-1], seqs[-1])).rowcount
        if changed:
            self._flushed.value += len(seqs)

    def outbox_unsent(self) -> int:
        """Webhook events in the outbox not yet taken by the webhooks service."""
        return int(self._db.execute("SELECT COUNT(*) FROM outbox WHERE sent IS NULL").fetchone()[0])

    def checkpoint(self) -> None:
        """Move the WAL into the database file as far as readers allow (PASSIVE never blocks the writer)."""
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def prune(self, chunk: int = 5000) -> int:
        """Forget flushed ids older than the dedupe window, a chunk per transaction (the writer waits for each)."""
        cutoff = time.time() - self._dedupe_seconds
        removed = 0
        while True:
            low, top = self._db.execute("SELECT MIN(seq), MAX(seq) FROM events").fetchone()
            if low is None:
                return removed
            # The newest row stays: SQLite gives a new row MAX(seq) + 1, which must stay above the mark.
            upper = min(self._mark(), top - 1, low + chunk - 1)
            cur = self._db.execute(
                "DELETE FROM events WHERE seq BETWEEN ? AND ? AND received < ?", (low, upper, cutoff)
            )
            if cur.rowcount <= 0:
                return removed
            removed += cur.rowcount

    def trim(self, chunk: int = 5000) -> int:
        """Forget the oldest flushed ids while the pages in use exceed the replay budget (never a pending event,
        never the newest row); cheap when under it. Deleted rows' pages are reused, so the file stops growing."""
        if self._replay_bytes is None:
            return 0
        removed = 0
        while True:
            page_size, pages, free = (
                self._db.execute(f"PRAGMA {n}").fetchone()[0] for n in ("page_size", "page_count", "freelist_count")
            )
            used = (pages - free) * page_size
            if used <= self._replay_bytes:
                return removed
            low, top = self._db.execute("SELECT MIN(seq), MAX(seq) FROM events").fetchone()
            if low is None:
                return removed
            # Rows per byte from the seq range (rows are only ever deleted from the bottom, so it is dense).
            per_row = used / max(1, top - low + 1)
            excess = max(1, int((used - self._replay_bytes) / per_row) + 1)
            upper = min(self._mark(), top - 1, low + min(chunk, excess) - 1)
            if upper < low:
                return removed  # everything left is pending: a backlog, not a replay window
            deleted = self._db.execute("DELETE FROM events WHERE seq BETWEEN ? AND ?", (low, upper)).rowcount
            if deleted <= 0:
                return removed
            removed += deleted

    def close(self) -> None:
        self._db.close()
