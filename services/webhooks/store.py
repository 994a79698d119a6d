"""The durable store: endpoints, events, messages (one per event and endpoint) and attempts, in one SQLite file.

The meter's spool discipline: WAL with synchronous=FULL, so a commit has reached the disk when it returns, and an
event is acknowledged (202) only after its messages are committed; an attempt's result is committed before the
message is taken up again. A `kill -9` therefore loses nothing: a message whose attempt was in flight is still
`pending` and is sent again (at-least-once, same `webhook-id`). Writes go through one group-commit writer
(`group_commit`); readers (the event loop) use their own connection: WAL readers never wait for the writer.

By concern: `store_schema` (tables, opening, ids), `group_commit` (the writer thread), `deliveries` (fan-out and
attempt records), `endpoint_records` (owner-scoped management). `Store` ties them to one file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from services.webhooks import endpoint_records
from services.webhooks.deliveries import AttemptResult, Due, Recorded, ingest_write, record_write
from services.webhooks.endpoint_records import Endpoint, endpoint_from_row, endpoint_row
from services.webhooks.events import Event
from services.webhooks.group_commit import GroupCommitWriter
from services.webhooks.sealing import SecretBox
from services.webhooks.store_schema import (
    CONFLICT,
    DEAD,
    DELIVERED,
    DUPLICATE,
    NEW,
    PENDING,
    SCHEMA,
    open_db,
)

__all__ = ["CONFLICT", "DEAD", "DELIVERED", "DUPLICATE", "NEW", "PENDING", "AttemptResult", "Due", "Endpoint", "Store"]
T = TypeVar("T")


class Store:
    def __init__(self, path: Path, failing_disable_seconds: float = 5 * 86400) -> None:
        self.path = path
        self.failing_disable_seconds = failing_disable_seconds
        """An endpoint whose attempts failed for this long without a success is disabled."""
        self.box: SecretBox | None = None
        writing = open_db(path)
        writing.executescript(SCHEMA)
        self._read = open_db(path)
        self._writer = GroupCommitWriter(writing, "webhooks-store-writer")

    # ----------------------------------------------------------------- writer

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._writer.write(fn)

    def write_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """For start-up and tests (no event loop)."""
        return self._writer.write_sync(fn)

    def close(self) -> None:
        self._writer.close()
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
        return ingest_write(event, now)

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
        self, message_id: str, endpoint_id: str, result: AttemptResult, now: float
    ) -> Callable[[sqlite3.Connection], Recorded]:
        return record_write(message_id, endpoint_id, result, now, self.failing_disable_seconds)

    def counts(self) -> dict[str, int]:
        rows = self._read.execute("SELECT state, COUNT(*) FROM messages GROUP BY state").fetchall()
        return {state: 0 for state in (PENDING, DELIVERED, DEAD)} | dict(rows)

    # ----------------------------------------------------------------- management (every call scoped by owner)

    def endpoint(self, owner: str, endpoint_id: str) -> Endpoint | None:
        return endpoint_row(self._read, owner, endpoint_id)

    def endpoints(self, owner: str) -> list[Endpoint]:
        rows = self._read.execute(
            "SELECT id, owner, url, description, event_types, enabled, disabled_reason, created, updated"
            " FROM endpoints WHERE owner = ? ORDER BY created, id",
            (owner,),
        ).fetchall()
        return [endpoint_from_row(row) for row in rows]

    def count_all_endpoints(self) -> int:
        return int(self._read.execute("SELECT COUNT(*) FROM endpoints").fetchone()[0])

    def count_endpoints(self, owner: str) -> int:
        return int(self._read.execute("SELECT COUNT(*) FROM endpoints WHERE owner = ?", (owner,)).fetchone()[0])

    def create_fn(
        self, owner: str, url: str, event_types: Iterable[str], description: str, enabled: bool, now: float
    ) -> Callable[[sqlite3.Connection], tuple[Endpoint, str]]:
        return endpoint_records.create_write(self._box(), owner, url, event_types, description, enabled, now)

    def update_fn(
        self, owner: str, endpoint_id: str, changes: dict[str, Any], now: float
    ) -> Callable[[sqlite3.Connection], Endpoint | None]:
        return endpoint_records.update_write(owner, endpoint_id, changes, now)

    def delete_fn(self, owner: str, endpoint_id: str) -> Callable[[sqlite3.Connection], bool]:
        return endpoint_records.delete_write(owner, endpoint_id)

    def rotate_fn(
        self, owner: str, endpoint_id: str, grace_seconds: float, now: float
    ) -> Callable[[sqlite3.Connection], str | None]:
        """A new secret; the current one keeps signing (beside it) for `grace_seconds`."""
        return endpoint_records.rotate_write(self._box(), owner, endpoint_id, grace_seconds, now)

    def messages(
        self, owner: str, *, state: str | None, endpoint_id: str | None, before: str | None, limit: int
    ) -> list[dict[str, Any]]:
        return endpoint_records.messages(
            self._read, owner, state=state, endpoint_id=endpoint_id, before=before, limit=limit
        )

    def attempts(
        self, owner: str, *, message_id: str | None, endpoint_id: str | None, before: int | None, limit: int
    ) -> list[dict[str, Any]]:
        return endpoint_records.attempts(
            self._read, owner, message_id=message_id, endpoint_id=endpoint_id, before=before, limit=limit
        )

    def replay_fn(self, owner: str, message_id: str, now: float) -> Callable[[sqlite3.Connection], str | None]:
        """The message is sent again from the start of the schedule, with its webhook-id: its endpoint id, or None."""
        return endpoint_records.replay_write(owner, message_id, now)
