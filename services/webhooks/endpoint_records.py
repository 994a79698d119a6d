"""The management side of the webhooks store, every call scoped by owner (a partner or an integration): endpoints
(created with a sealed secret, updated, deleted with their messages, their secret rotated with a grace period), the
owner's messages and attempts, and a message's replay. Writes are functions of the writing connection for the
store's group-commit writer; listings read through the connection they are given.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from services.webhooks.sealing import SecretBox, new_secret
from services.webhooks.store_schema import PENDING, iso, new_id


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
            "created_at": iso(self.created),
            "updated_at": iso(self.updated),
        }


def endpoint_from_row(row: Sequence[Any]) -> Endpoint:
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


def endpoint_row(db: sqlite3.Connection, owner: str, endpoint_id: str) -> Endpoint | None:
    row = db.execute(
        "SELECT id, owner, url, description, event_types, enabled, disabled_reason, created, updated"
        " FROM endpoints WHERE id = ? AND owner = ?",
        (endpoint_id, owner),
    ).fetchone()
    return None if row is None else endpoint_from_row(row)


def create_write(
    box: SecretBox, owner: str, url: str, event_types: Iterable[str], description: str, enabled: bool, now: float
) -> Callable[[sqlite3.Connection], tuple[Endpoint, str]]:
    endpoint_id = new_id("ep")
    secret = new_secret()
    sealed = box.seal(secret, f"{endpoint_id}:current")
    types = orjson.dumps(sorted(set(event_types))).decode()

    def write(db: sqlite3.Connection) -> tuple[Endpoint, str]:
        db.execute(
            "INSERT INTO endpoints (id, owner, url, description, event_types, enabled, secret, created, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (endpoint_id, owner, url, description, types, int(enabled), sealed, now, now),
        )
        found = endpoint_row(db, owner, endpoint_id)
        assert found is not None
        return found, secret

    return write


def update_write(
    owner: str, endpoint_id: str, changes: dict[str, Any], now: float
) -> Callable[[sqlite3.Connection], Endpoint | None]:
    def write(db: sqlite3.Connection) -> Endpoint | None:
        if endpoint_row(db, owner, endpoint_id) is None:
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
        return endpoint_row(db, owner, endpoint_id)

    return write


def delete_write(owner: str, endpoint_id: str) -> Callable[[sqlite3.Connection], bool]:
    def write(db: sqlite3.Connection) -> bool:
        if db.execute("DELETE FROM endpoints WHERE id = ? AND owner = ?", (endpoint_id, owner)).rowcount == 0:
            return False
        db.execute("DELETE FROM attempts WHERE endpoint_id = ?", (endpoint_id,))
        db.execute("DELETE FROM messages WHERE endpoint_id = ?", (endpoint_id,))
        return True

    return write


def rotate_write(
    box: SecretBox, owner: str, endpoint_id: str, grace_seconds: float, now: float
) -> Callable[[sqlite3.Connection], str | None]:
    """A new secret; the current one keeps signing (beside it) for `grace_seconds`."""
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
    db: sqlite3.Connection, owner: str, *, state: str | None, endpoint_id: str | None, before: str | None, limit: int
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
    rows = db.execute(
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
            "next_attempt_at": iso(r[7]) if r[5] == PENDING else None,
            "last_status": r[8],
            "last_error": r[9],
            "created_at": iso(r[10]),
            "updated_at": iso(r[11]),
        }
        for r in rows
    ]


def attempts(
    db: sqlite3.Connection,
    owner: str,
    *,
    message_id: str | None,
    endpoint_id: str | None,
    before: int | None,
    limit: int,
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
    rows = db.execute(
        "SELECT seq, message_id, endpoint_id, at, status, outcome, error, duration_ms FROM attempts"
        f" WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [
        {
            "id": r[0],
            "message_id": r[1],
            "endpoint_id": r[2],
            "at": iso(r[3]),
            "status": r[4],
            "outcome": r[5],
            "error": r[6],
            "duration_ms": round(r[7], 1),
        }
        for r in rows
    ]


def replay_write(owner: str, message_id: str, now: float) -> Callable[[sqlite3.Connection], str | None]:
    """The message is sent again from the start of the schedule, with its webhook-id: its endpoint id, or None."""

    def write(db: sqlite3.Connection) -> str | None:
        row = db.execute("SELECT endpoint_id FROM messages WHERE id = ? AND owner = ?", (message_id, owner)).fetchone()
        if row is None:
            return None
        db.execute(
            "UPDATE messages SET state = 'pending', attempts = 0, next_at = ?, updated = ? WHERE id = ?",
            (now, now, message_id),
        )
        return str(row[0])

    return write
