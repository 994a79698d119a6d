"""The durable local spool: an event is acknowledged only after its row is fsynced here.

SQLite in WAL mode with synchronous=FULL: each commit is fsynced before it returns, so a `kill -9` (or a
power cut) after the acknowledgement cannot lose the event. One writer thread takes everything queued since
its last commit and commits it as one transaction (group commit): under load one fsync acknowledges
hundreds of requests, and at low load a lone request waits for one fsync only.

Every event id stays in the spool (flushed or not) for `dedupe_days`, so duplicates are refused across
restarts; after that the warehouse MERGE still keeps a late duplicate from counting twice.

The flusher reads the spool from its own process (its own connection, `SpoolReader`); what it marked flushed
comes back through a counter in shared memory, so the spool's depth is known without counting rows. It writes
in `seq` order, so "flushed" is one number, the highest `seq` written (`flushed_through`): marking a batch of
10,000 is one row, not 10,000 row updates holding the write lock while acknowledgements wait for it (20,000
took ~180 ms). `seq` never goes back (the newest row is never pruned), so an event that arrives later always
sorts above the mark.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.meter.events import Event

_CTX = multiprocessing.get_context("spawn")

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
"""
CACHE_KIB = 16384
"""SQLite's page cache per connection (default 2 MiB): the event-id index takes random inserts and lookups, and
a cache that holds its upper levels keeps them off the disk. Bounded, so memory stays flat (it fills up to this
over the first few hundred thousand events, then stays)."""
_IN_CHUNK = 500


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


class Spool:
    def __init__(self, path: Path, max_pending: int = 1_000_000, dedupe_days: float = 7.0) -> None:
        self.path = path
        self.max_pending = max_pending
        self.dedupe_seconds = dedupe_days * 86400
        self._db = open_db(path)
        # Checkpoints (WAL pages copied into the database file, and its fsync) are the flusher's to run: done by
        # the committing writer they stalled every acknowledgement queued behind that commit.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        _migrate(self._db)
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

    # ---------------------------------------------------------------- writer thread

    def _run(self) -> None:
        while True:
            first = self._queue.get()
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
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            results = [exc] * len(batches)
            added = 0
        self._added += added  # only this thread writes it
        for batch, result in zip(batches, results, strict=True):
            batch.loop.call_soon_threadsafe(_settle, batch.future, result)

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
        for batch in batches:
            if self.pending + len(rows) + len(batch.events) > self.max_pending:
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
        return SpoolReader(self.path, self.dedupe_seconds, self.flushed)


def _settle(future: asyncio.Future[list[str]], result: list[str] | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class SpoolReader:
    """The flusher's view: oldest pending events, the flushed-through mark, pruning old flushed ids."""

    def __init__(self, path: Path, dedupe_seconds: float, flushed: Any) -> None:
        self._dedupe_seconds = dedupe_seconds
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

    def mark_flushed(self, seqs: Sequence[int]) -> None:
        """`seqs`: the batch `oldest` returned, now in the warehouse."""
        if not seqs:
            return
        changed = self._db.execute("UPDATE flushed_through SET seq = ? WHERE seq < ?", (seqs[-1], seqs[-1])).rowcount
        if changed:
            self._flushed.value += len(seqs)

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

    def close(self) -> None:
        self._db.close()
