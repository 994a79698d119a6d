"""The durable store: endpoints, events, messages (one per event and endpoint) and attempts, in one SQLite file.

The meter's spool discipline: WAL with synchronous=FULL, so a commit has reached the disk when it returns, and an
event is acknowledged (202) only after its messages are committed; an attempt's outcome is committed before the
message is taken up again. A `kill -9` therefore loses nothing: a message whose attempt was in flight is still
`pending` and is sent again (at-least-once, same `webhook-id`). One writer thread commits everything queued since
its last commit as one transaction (group commit), so a thousand outcomes a second cost a few fsyncs, not a
thousand; each write runs in its own savepoint, so one failing write does not undo the others in its group.
Readers (the event loop) use their own connection: WAL readers never wait for the writer.
"""

from __future__ import annotations

import asyncio
import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from services.webhooks.events import Event
from services.webhooks.sealing import SecretBox, new_secret

T = TypeVar("T")
PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
NEW, DUPLICATE, CONFLICT = "new", "duplicate", "conflict"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  url TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  event_types TEXT NOT NULL,            -- JSON list; empty: every type the owner receives
  enabled INTEGER NOT NULL,
  disabled_reason TEXT,
  secret BLOB NOT NULL,                 -- sealed (sealing.SecretBox), never in clear
  previous_secret BLOB,                 -- sealed; signs too until previous_until (rotation grace)
  previous_until REAL,
  failing_since REAL,
  created REAL NOT NULL,
  updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS endpoints_owner ON endpoints (owner, created);
CREATE TABLE IF NOT EXISTS events (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  partner TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  payload BLOB NOT NULL,
  received REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
  id TEXT PRIMARY KEY,                  -- the webhook-id: the same on every attempt and replay
  event_id TEXT NOT NULL,
  endpoint_id TEXT NOT NULL,
  owner TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,  -- attempts in the current schedule (a replay starts a new one)
  next_at REAL,
  last_status INTEGER,
  last_error TEXT,
  created REAL NOT NULL,
  updated REAL NOT NULL,
  UNIQUE (event_id, endpoint_id)
);
CREATE INDEX IF NOT EXISTS messages_due ON messages (endpoint_id, state, next_at);
CREATE INDEX IF NOT EXISTS messages_owner ON messages (owner, created);
CREATE INDEX IF NOT EXISTS messages_state ON messages (state);
CREATE TABLE IF NOT EXISTS attempts (
  seq INTEGER PRIMARY KEY,
  message_id TEXT NOT NULL,
  endpoint_id TEXT NOT NULL,
  owner TEXT NOT NULL,
  at REAL NOT NULL,
  status INTEGER,                       -- HTTP status; NULL when no answer (refused, timeout, connection)
  outcome TEXT NOT NULL,                -- delivered, failed, refused, gone, timeout, redirect, ...
  error TEXT,
  duration_ms REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_message ON attempts (message_id, seq);
CREATE INDEX IF NOT EXISTS attempts_owner ON attempts (owner, seq);
CREATE TABLE IF NOT EXISTS installations (
  integration TEXT NOT NULL,
  partner TEXT NOT NULL,
  event_types TEXT NOT NULL,            -- JSON list the integration subscribed to in its spec
  PRIMARY KEY (integration, partner)
);
"""
CACHE_KIB = 16384


def open_db(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    db.execute("PRAGMA foreign_keys=OFF")
    return db


def new_id(prefix: str) -> str:
    # Time-ordered (milliseconds, hex) then random: listings sort by creation without a second column.
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Endpoint:
    id: str
    owner: str
    url: str
    description: str
    event_types: tuple[str, ...]
    enabled: bool
    disabled_reason: str | None
    created: float
    updated: float

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "description": self.description,
            "event_types": list(self.event_types),
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "created_at": _iso(self.created),
            "updated_at": _iso(self.updated),
        }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Due:
    message_id: str
    event_id: str
    attempts: int
    created: float
    """When the message was made (the event accepted, or the replay asked for)."""


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to (the dispatcher decides; the store records and schedules)."""

    outcome: str
    """delivered | failed | gone | refused | timeout | redirect | error."""
    status: int | None
    error: str | None
    duration_ms: float
    next_delay: float | None
    """Seconds until the next attempt; None: no more attempts (dead-lettered), ignored when delivered or gone."""


@dataclass(frozen=True)
class Recorded:
    state: str
    """The message's state after the attempt."""
    disabled: str | None = None
    """The endpoint was disabled by this attempt: its reason (gone | failing)."""
    notified: tuple[str, ...] = ()
    """Endpoints that got new messages (the endpoint.disabled event)."""


class _Write:
    __slots__ = ("fn", "future", "loop")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], future: Any, loop: Any) -> None:
        self.fn, self.future, self.loop = fn, future, loop


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Store:
    def __init__(self, path: Path, failing_disable_seconds: float = 5 * 86400) -> None:
        self.path = path
        self.failing_disable_seconds = failing_disable_seconds
        """An endpoint whose attempts failed for this long without a success is disabled."""
        self.box: SecretBox | None = None
        self._db = open_db(path)
        self._db.executescript(_SCHEMA)
        self._read = open_db(path)
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="webhooks-store-writer", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------- writer

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Write(fn, future, loop))
        return await future

    def write_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """For start-up and tests (no event loop)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(self._db)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return result

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            writes = [first]
            stop = False
            while len(writes) < 2000:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                writes.append(more)
            self._commit(writes)
            if stop:
                return

    def _commit(self, writes: list[_Write]) -> None:
        results: list[tuple[Any, BaseException | None]] = []
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for write in writes:
                self._db.execute("SAVEPOINT w")
                try:
                    results.append((write.fn(self._db), None))
                    self._db.execute("RELEASE w")
                except Exception as exc:
                    self._db.execute("ROLLBACK TO w")
                    self._db.execute("RELEASE w")
                    results.append((None, exc))
            self._db.execute("COMMIT")  # synchronous=FULL: on disk when this returns
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            results = [(None, exc)] * len(writes)
        for write, (result, error) in zip(writes, results, strict=True):
            write.loop.call_soon_threadsafe(_settle, write.future, result, error)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)
        self._db.close()
        self._read.close()

    # ----------------------------------------------------------------- meta (start-up, before the loop runs)

    def meta_get(self, key: str) -> bytes | None:
        row = self._read.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def meta_put(self, key: str, value: bytes) -> None:
        self.write_sync(lambda db: db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)))

    def _box(self) -> SecretBox:
        if self.box is None:
            raise RuntimeError("the store's secret box is not loaded")
        return self.box

    # ----------------------------------------------------------------- events and fan-out

    def ingest_fn(self, event: Event, now: float) -> Callable[[sqlite3.Connection], tuple[str, list[str]]]:
        """The write that stores `event` and its messages: (NEW | DUPLICATE | CONFLICT, endpoints to wake)."""
        fingerprint = event.fingerprint()
        payload = event.payload(now)

        def write(db: sqlite3.Connection) -> tuple[str, list[str]]:
            row = db.execute("SELECT fingerprint FROM events WHERE id = ?", (event.id,)).fetchone()
            if row is not None:
                return (DUPLICATE if row[0] == fingerprint else CONFLICT), []
            db.execute(
                "INSERT INTO events (id, type, partner, fingerprint, payload, received) VALUES (?, ?, ?, ?, ?, ?)",
                (event.id, event.type, event.partner, fingerprint, payload, now),
            )
            if event.type == "integration.installed":
                db.execute(
                    "INSERT OR REPLACE INTO installations (integration, partner, event_types) VALUES (?, ?, ?)",
                    (event.data["integration"], event.partner, orjson.dumps(sorted(event.data["event_types"]))),
                )
            woken = _fan_out(db, event, now)
            if event.type == "integration.removed":
                db.execute(
                    "DELETE FROM installations WHERE integration = ? AND partner = ?",
                    (event.data["integration"], event.partner),
                )
            return NEW, woken

        return write

    # ----------------------------------------------------------------- dispatcher reads

    def endpoints_with_pending(self) -> list[str]:
        rows = self._read.execute("SELECT DISTINCT endpoint_id FROM messages WHERE state = 'pending'").fetchall()
        return [row[0] for row in rows]

    def due(self, endpoint_id: str, now: float, exclude: Sequence[str], limit: int) -> list[Due]:
        marks = ",".join("?" * len(exclude))
        skip = f"AND id NOT IN ({marks})" if exclude else ""
        rows = self._read.execute(
            "SELECT id, event_id, attempts, updated FROM messages"
            f" WHERE endpoint_id = ? AND state = 'pending' AND next_at <= ? {skip} ORDER BY next_at, id LIMIT ?",
            (endpoint_id, now, *exclude, limit),
        ).fetchall()
        return [Due(*row) for row in rows]

    def next_due(self, endpoint_id: str, exclude: Sequence[str]) -> float | None:
        marks = ",".join("?" * len(exclude))
        skip = f"AND id NOT IN ({marks})" if exclude else ""
        row = self._read.execute(
            f"SELECT MIN(next_at) FROM messages WHERE endpoint_id = ? AND state = 'pending' {skip}",
            (endpoint_id, *exclude),
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def delivery(self, endpoint_id: str) -> tuple[str, bool, list[str]] | None:
        """(url, enabled, secrets that sign now) of an endpoint, or None when it is gone."""
        row = self._read.execute(
            "SELECT url, enabled, secret, previous_secret, previous_until FROM endpoints WHERE id = ?", (endpoint_id,)
        ).fetchone()
        if row is None:
            return None
        url, enabled, secret, previous, until = row
        box = self._box()
        keys = [box.open(secret, f"{endpoint_id}:current")]
        if previous is not None and until is not None and until > time.time():
            keys.append(box.open(previous, f"{endpoint_id}:previous"))
        return url, bool(enabled), keys

    def payload(self, event_id: str) -> bytes:
        return bytes(self._read.execute("SELECT payload FROM events WHERE id = ?", (event_id,)).fetchone()[0])

    def record_fn(
        self, message_id: str, endpoint_id: str, outcome: Outcome, now: float
    ) -> Callable[[sqlite3.Connection], Recorded]:
        disable_after = self.failing_disable_seconds

        def write(db: sqlite3.Connection) -> Recorded:
            row = db.execute(
                "SELECT state, attempts, owner FROM messages WHERE id = ? AND endpoint_id = ?",
                (message_id, endpoint_id),
            ).fetchone()
            if row is None or row[0] != PENDING:
                return Recorded(state=row[0] if row else DEAD)  # deleted or replayed meanwhile: nothing to record
            _, attempts, owner = row
            db.execute(
                "INSERT INTO attempts (message_id, endpoint_id, owner, at, status, outcome, error, duration_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message_id,
                    endpoint_id,
                    owner,
                    now,
                    outcome.status,
                    outcome.outcome,
                    outcome.error,
                    outcome.duration_ms,
                ),
            )
            if outcome.outcome == "delivered":
                _set_message(db, message_id, DELIVERED, attempts + 1, None, outcome, now)
                db.execute(
                    "UPDATE endpoints SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL",
                    (endpoint_id,),
                )
                return Recorded(DELIVERED)
            if outcome.outcome == "gone":
                _set_message(db, message_id, DEAD, attempts + 1, None, outcome, now)
                return Recorded(DEAD, "gone", tuple(_disable(db, endpoint_id, "gone", now)))
            (since,) = db.execute("SELECT failing_since FROM endpoints WHERE id = ?", (endpoint_id,)).fetchone() or (
                None,
            )
            if since is None:
                db.execute("UPDATE endpoints SET failing_since = ? WHERE id = ?", (now, endpoint_id))
            elif now - since >= disable_after:
                _set_message(db, message_id, DEAD, attempts + 1, None, outcome, now)
                return Recorded(DEAD, "failing", tuple(_disable(db, endpoint_id, "failing", now)))
            if outcome.next_delay is None:
                _set_message(db, message_id, DEAD, attempts + 1, None, outcome, now)
                return Recorded(DEAD)
            _set_message(db, message_id, PENDING, attempts + 1, now + outcome.next_delay, outcome, now)
            return Recorded(PENDING)

        return write

    def counts(self) -> dict[str, int]:
        rows = self._read.execute("SELECT state, COUNT(*) FROM messages GROUP BY state").fetchall()
        return {state: 0 for state in (PENDING, DELIVERED, DEAD)} | dict(rows)

    # ----------------------------------------------------------------- management (every call scoped by owner)

    def _endpoint_row(self, db: sqlite3.Connection, owner: str, endpoint_id: str) -> Endpoint | None:
        row = db.execute(
            "SELECT id, owner, url, description, event_types, enabled, disabled_reason, created, updated"
            " FROM endpoints WHERE id = ? AND owner = ?",
            (endpoint_id, owner),
        ).fetchone()
        return None if row is None else _endpoint(row)

    def endpoint(self, owner: str, endpoint_id: str) -> Endpoint | None:
        return self._endpoint_row(self._read, owner, endpoint_id)

    def endpoints(self, owner: str) -> list[Endpoint]:
        rows = self._read.execute(
            "SELECT id, owner, url, description, event_types, enabled, disabled_reason, created, updated"
            " FROM endpoints WHERE owner = ? ORDER BY created, id",
            (owner,),
        ).fetchall()
        return [_endpoint(row) for row in rows]

    def count_all_endpoints(self) -> int:
        return int(self._read.execute("SELECT COUNT(*) FROM endpoints").fetchone()[0])

    def count_endpoints(self, owner: str) -> int:
        return int(self._read.execute("SELECT COUNT(*) FROM endpoints WHERE owner = ?", (owner,)).fetchone()[0])

    def create_fn(
        self, owner: str, url: str, event_types: Iterable[str], description: str, enabled: bool, now: float
    ) -> Callable[[sqlite3.Connection], tuple[Endpoint, str]]:
        endpoint_id = new_id("ep")
        secret = new_secret()
        sealed = self._box().seal(secret, f"{endpoint_id}:current")
        types = orjson.dumps(sorted(set(event_types))).decode()

        def write(db: sqlite3.Connection) -> tuple[Endpoint, str]:
            db.execute(
                "INSERT INTO endpoints (id, owner, url, description, event_types, enabled, secret, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (endpoint_id, owner, url, description, types, int(enabled), sealed, now, now),
            )
            found = self._endpoint_row(db, owner, endpoint_id)
            assert found is not None
            return found, secret

        return write

    def update_fn(
        self, owner: str, endpoint_id: str, changes: dict[str, Any], now: float
    ) -> Callable[[sqlite3.Connection], Endpoint | None]:
        def write(db: sqlite3.Connection) -> Endpoint | None:
            if self._endpoint_row(db, owner, endpoint_id) is None:
                return None
            for column, value in changes.items():
                if column == "event_types":
                    value = orjson.dumps(sorted(set(value))).decode()
                if column == "enabled":
                    value = int(value)
                    if value:  # re-enabled by its owner: a fresh start
                        db.execute(
                            "UPDATE endpoints SET disabled_reason = NULL, failing_since = NULL WHERE id = ?",
                            (endpoint_id,),
                        )
                    else:
                        db.execute("UPDATE endpoints SET disabled_reason = 'owner' WHERE id = ?", (endpoint_id,))
                assert column in ("url", "description", "event_types", "enabled")
                db.execute(f"UPDATE endpoints SET {column} = ? WHERE id = ?", (value, endpoint_id))
            db.execute("UPDATE endpoints SET updated = ? WHERE id = ?", (now, endpoint_id))
            return self._endpoint_row(db, owner, endpoint_id)

        return write

    def delete_fn(self, owner: str, endpoint_id: str) -> Callable[[sqlite3.Connection], bool]:
        def write(db: sqlite3.Connection) -> bool:
            if db.execute("DELETE FROM endpoints WHERE id = ? AND owner = ?", (endpoint_id, owner)).rowcount == 0:
                return False
            db.execute("DELETE FROM attempts WHERE endpoint_id = ?", (endpoint_id,))
            db.execute("DELETE FROM messages WHERE endpoint_id = ?", (endpoint_id,))
            return True

        return write

    def rotate_fn(
        self, owner: str, endpoint_id: str, grace_seconds: float, now: float
    ) -> Callable[[sqlite3.Connection], str | None]:
        """A new secret; the current one keeps signing (beside it) for `grace_seconds`."""
        box = self._box()
        secret = new_secret()

        def write(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT secret FROM endpoints WHERE id = ? AND owner = ?", (endpoint_id, owner)).fetchone()
            if row is None:
                return None
            current = box.open(row[0], f"{endpoint_id}:current")
            previous = box.seal(current, f"{endpoint_id}:previous") if grace_seconds > 0 else None
            db.execute(
                "UPDATE endpoints SET secret = ?, previous_secret = ?, previous_until = ?, updated = ? WHERE id = ?",
                (
                    box.seal(secret, f"{endpoint_id}:current"),
                    previous,
                    now + grace_seconds if previous else None,
                    now,
                    endpoint_id,
                ),
            )
            return secret

        return write

    def messages(
        self, owner: str, *, state: str | None, endpoint_id: str | None, before: str | None, limit: int
    ) -> list[dict[str, Any]]:
        where, args = ["m.owner = ?"], [owner]
        if state:
            where.append("m.state = ?")
            args.append(state)
        if endpoint_id:
            where.append("m.endpoint_id = ?")
            args.append(endpoint_id)
        if before:
            where.append("m.id < ?")
            args.append(before)
        rows = self._read.execute(
            "SELECT m.id, m.event_id, e.type, e.partner, m.endpoint_id, m.state, m.attempts, m.next_at, m.last_status,"
            " m.last_error, m.created, m.updated FROM messages m JOIN events e ON e.id = m.event_id"
            f" WHERE {' AND '.join(where)} ORDER BY m.id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [
            {
                "id": r[0],
                "event_id": r[1],
                "type": r[2],
                "partner": r[3],
                "endpoint_id": r[4],
                "state": r[5],
                "attempts": r[6],
                "next_attempt_at": _iso(r[7]) if r[5] == PENDING else None,
                "last_status": r[8],
                "last_error": r[9],
                "created_at": _iso(r[10]),
                "updated_at": _iso(r[11]),
            }
            for r in rows
        ]

    def attempts(
        self, owner: str, *, message_id: str | None, endpoint_id: str | None, before: int | None, limit: int
    ) -> list[dict[str, Any]]:
        where, args = ["owner = ?"], [owner]
        if message_id:
            where.append("message_id = ?")
            args.append(message_id)
        if endpoint_id:
            where.append("endpoint_id = ?")
            args.append(endpoint_id)
        if before is not None:
            where.append("seq < ?")
            args.append(before)  # type: ignore[arg-type]
        rows = self._read.execute(
            "SELECT seq, message_id, endpoint_id, at, status, outcome, error, duration_ms FROM attempts"
            f" WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [
            {
                "id": r[0],
                "message_id": r[1],
                "endpoint_id": r[2],
                "at": _iso(r[3]),
                "status": r[4],
                "outcome": r[5],
                "error": r[6],
                "duration_ms": round(r[7], 1),
            }
            for r in rows
        ]

    def replay_fn(self, owner: str, message_id: str, now: float) -> Callable[[sqlite3.Connection], str | None]:
        """The message is sent again from the start of the schedule, with its webhook-id: its endpoint id, or None."""

        def write(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT endpoint_id FROM messages WHERE id = ? AND owner = ?", (message_id, owner)
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE messages SET state = 'pending', attempts = 0, next_at = ?, updated = ? WHERE id = ?",
                (now, now, message_id),
            )
            return str(row[0])

        return write


def _endpoint(row: Sequence[Any]) -> Endpoint:
    return Endpoint(
        id=row[0],
        owner=row[1],
        url=row[2],
        description=row[3],
        event_types=tuple(orjson.loads(row[4])),
        enabled=bool(row[5]),
        disabled_reason=row[6],
        created=row[7],
        updated=row[8],
    )


def _set_message(
    db: sqlite3.Connection,
    message_id: str,
    state: str,
    attempts: int,
    next_at: float | None,
    outcome: Outcome,
    now: float,
) -> None:
    db.execute(
        "UPDATE messages SET state = ?, attempts = ?, next_at = ?, last_status = ?, last_error = ?, updated = ?"
        " WHERE id = ?",
        (state, attempts, next_at, outcome.status, outcome.error, now, message_id),
    )


def _fan_out(db: sqlite3.Connection, event: Event, now: float) -> list[str]:
    """One message per enabled endpoint that receives `event`: the partner's own endpoints, and those of the
    integrations the partner installed that subscribed to the type in their spec (an integration always hears
    of its own installation and removal). `endpoint.disabled` goes to the owner's other endpoints, all of them."""
    owners = {event.partner}
    for integration, types in db.execute(
        "SELECT integration, event_types FROM installations WHERE partner = ?", (event.partner,)
    ).fetchall():
        if event.type in orjson.loads(types):
            owners.add(integration)
    if event.type in ("integration.installed", "integration.removed"):
        owners.add(event.data["integration"])
    marks = ",".join("?" * len(owners))
    rows = db.execute(
        f"SELECT id, owner, event_types FROM endpoints WHERE owner IN ({marks}) AND enabled = 1", tuple(owners)
    ).fetchall()
    woken = []
    for endpoint_id, owner, types in rows:
        if event.type == "endpoint.disabled":
            if endpoint_id == event.data["endpoint_id"]:
                continue
        elif (subscribed := orjson.loads(types)) and event.type not in subscribed:
            continue
        db.execute(
            "INSERT OR IGNORE INTO messages (id, event_id, endpoint_id, owner, state, next_at, created, updated)"
            " VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
            (new_id("msg"), event.id, endpoint_id, owner, now, now, now),
        )
        woken.append(endpoint_id)
    return woken


def _disable(db: sqlite3.Connection, endpoint_id: str, reason: str, now: float) -> list[str]:
    """Disable the endpoint, dead-letter what waits for it, tell its owner on another endpoint: endpoints woken."""
    row = db.execute("SELECT owner, url, enabled FROM endpoints WHERE id = ?", (endpoint_id,)).fetchone()
    if row is None or not row[2]:
        return []
    owner, url, _ = row
    db.execute(
        "UPDATE endpoints SET enabled = 0, disabled_reason = ?, failing_since = NULL, updated = ? WHERE id = ?",
        (reason, now, endpoint_id),
    )
    db.execute(
        "UPDATE messages SET state = 'dead', next_at = NULL, last_error = ?, updated = ?"
        " WHERE endpoint_id = ? AND state = 'pending'",
        (f"endpoint disabled ({reason})", now, endpoint_id),
    )
    event = Event(
        id=new_id("evt_endpoint_disabled"),
        type="endpoint.disabled",
        partner=owner,
        data={"endpoint_id": endpoint_id, "url": url, "reason": reason},
    )
    db.execute(
        "INSERT INTO events (id, type, partner, fingerprint, payload, received) VALUES (?, ?, ?, ?, ?, ?)",
        (event.id, event.type, event.partner, event.fingerprint(), event.payload(now), now),
    )
    return _fan_out(db, event, now)
