"""The durable local spool: an event is acknowledged only after its row is fsynced here.

SQLite in WAL mode with synchronous=FULL: each commit is fsynced before it returns, so a `kill -9` (or a
power cut) after the acknowledgement cannot lose the event. One writer thread takes everything queued since
its last commit and commits it as one transaction (group commit): under load one fsync acknowledges
hundreds of requests, and at low load a lone request waits for one fsync only.

Every event id stays in the spool (flushed or not) for `dedupe_days`, so duplicates are refused across
restarts; after that the warehouse MERGE still keeps a late duplicate from counting twice.

The flusher reads the spool from its own process (its own connection, `SpoolReader`); what it marked flushed
comes back through a counter in shared memory, so the spool's depth is known without counting rows.
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
  flushed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS pending ON events(seq) WHERE flushed = 0;
CREATE INDEX IF NOT EXISTS flushed_age ON events(received) WHERE flushed = 1;
"""


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
    db.executescript(_SCHEMA)
    return db


class Spool:
    def __init__(self, path: Path, max_pending: int = 1_000_000, dedupe_days: float = 7.0) -> None:
        self.path = path
        self.max_pending = max_pending
        self.dedupe_seconds = dedupe_days * 86400
        self._db = open_db(path)
        self._added = int(self._db.execute("SELECT COUNT(*) FROM events WHERE flushed = 0").fetchone()[0])
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
        results: list[list[str] | BaseException] = []
        added = 0
        try:
            self._db.execute("BEGIN IMMEDIATE")
            now = time.time()
            for batch in batches:
                try:
                    outcome = self._insert(batch.events, now, added)
                    added += outcome.count(NEW)
                    results.append(outcome)
                except SpoolFullError as exc:
                    results.append(exc)
            self._db.execute("COMMIT")  # synchronous=FULL: returns after the WAL is fsynced
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            results = [exc] * len(batches)
            added = 0
        self._added += added  # only this thread writes it
        for batch, result in zip(batches, results, strict=True):
            batch.loop.call_soon_threadsafe(_settle, batch.future, result)

    def _insert(self, events: Sequence[Event], now: float, added: int) -> list[str]:
        if self.pending + added + len(events) > self.max_pending:
            raise SpoolFullError
        savepoint = "batch"
        self._db.execute(f"SAVEPOINT {savepoint}")
        outcome = []
        for event in events:
            cur = self._db.execute(
                "INSERT INTO events (event_id, kind, fingerprint, row, received) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(event_id) DO NOTHING",
                (event.event_id, event.kind, event.fingerprint, event.row_json(), now),
            )
            if cur.rowcount == 1:
                outcome.append(NEW)
                continue
            (fingerprint,) = self._db.execute(
                "SELECT fingerprint FROM events WHERE event_id = ?", (event.event_id,)
            ).fetchone()
            outcome.append(DUPLICATE if fingerprint == event.fingerprint else CONFLICT)
        self._db.execute(f"RELEASE {savepoint}")
        return outcome

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
    """The flusher's view: oldest pending events, marking them flushed, pruning old flushed ids."""

    def __init__(self, path: Path, dedupe_seconds: float, flushed: Any) -> None:
        self._dedupe_seconds = dedupe_seconds
        self._flushed = flushed  # the Spool's shared counter (one writer: the one flusher process)
        self._db = open_db(path)

    def oldest(self, limit: int) -> list[tuple[int, str, str]]:
        return self._db.execute(
            "SELECT seq, kind, row FROM events WHERE flushed = 0 ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()

    def mark_flushed(self, seqs: Sequence[int]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        changed = 0
        for start in range(0, len(seqs), 500):
            chunk = seqs[start : start + 500]
            marks = ",".join("?" * len(chunk))
            changed += self._db.execute(
                f"UPDATE events SET flushed = 1 WHERE flushed = 0 AND seq IN ({marks})", chunk
            ).rowcount
        self._db.execute("COMMIT")
        self._flushed.value += changed

    def prune(self) -> int:
        cutoff = time.time() - self._dedupe_seconds
        cur = self._db.execute("DELETE FROM events WHERE flushed = 1 AND received < ?", (cutoff,))
        return cur.rowcount

    def close(self) -> None:
        self._db.close()
