"""The delivery side of the webhooks store: an event stored with its messages (fan-out to the partner's endpoints
and its installed integrations'), and each attempt recorded and the message scheduled, dead-lettered or its
endpoint disabled. Every function here returns a write (a function of the writing connection) for the store's
group-commit writer; nothing reads or writes outside the transaction it is given.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from services.webhooks.events import Event
from services.webhooks.store_schema import CONFLICT, DEAD, DELIVERED, DUPLICATE, NEW, PENDING, new_id


@dataclass(frozen=True)
class Due:
    message_id: str
    event_id: str
    attempts: int
    created: float
    """When the message was made (the event accepted, or the replay asked for)."""


@dataclass(frozen=True)
class AttemptResult:
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


def ingest_write(event: Event, now: float) -> Callable[[sqlite3.Connection], tuple[str, list[str]]]:
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


def record_write(
    message_id: str, endpoint_id: str, result: AttemptResult, now: float, disable_after: float
) -> Callable[[sqlite3.Connection], Recorded]:
    """The write that records one attempt and schedules the message: delivered, dead-lettered, or due again after
    `result.next_delay`; an endpoint failing for `disable_after` seconds without a success is disabled."""

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
                result.status,
                result.outcome,
                result.error,
                result.duration_ms,
            ),
        )
        if result.outcome == "delivered":
            _set_message(db, message_id, DELIVERED, attempts + 1, None, result, now)
            db.execute(
                "UPDATE endpoints SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL",
                (endpoint_id,),
            )
            return Recorded(DELIVERED)
        if result.outcome == "gone":
            _set_message(db, message_id, DEAD, attempts + 1, None, result, now)
            return Recorded(DEAD, "gone", tuple(_disable(db, endpoint_id, "gone", now)))
        (since,) = db.execute("SELECT failing_since FROM endpoints WHERE id = ?", (endpoint_id,)).fetchone() or (None,)
        if since is None:
            db.execute("UPDATE endpoints SET failing_since = ? WHERE id = ?", (now, endpoint_id))
        elif now - since >= disable_after:
            _set_message(db, message_id, DEAD, attempts + 1, None, result, now)
            return Recorded(DEAD, "failing", tuple(_disable(db, endpoint_id, "failing", now)))
        if result.next_delay is None:
            _set_message(db, message_id, DEAD, attempts + 1, None, result, now)
            return Recorded(DEAD)
        _set_message(db, message_id, PENDING, attempts + 1, now + result.next_delay, result, now)
        return Recorded(PENDING)

    return write


def _set_message(
    db: sqlite3.Connection,
    message_id: str,
    state: str,
    attempts: int,
    next_at: float | None,
    result: AttemptResult,
    now: float,
) -> None:
    db.execute(
        "UPDATE messages SET state = ?, attempts = ?, next_at = ?, last_status = ?, last_error = ?, updated = ?"
        " WHERE id = ?",
        (state, attempts, next_at, result.status, result.error, now, message_id),
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
