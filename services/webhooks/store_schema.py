"""The webhooks store's SQLite file: its tables, how it is opened (WAL, synchronous=FULL), ids and timestamps.

The durability discipline is the meter's spool's: a commit has reached the disk when it returns (synchronous=FULL),
and readers (the event loop) use their own connection, which WAL never makes wait for the writer.
"""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
import time
from pathlib import Path

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
"""A message's states."""
NEW, DUPLICATE, CONFLICT = "new", "duplicate", "conflict"
"""What storing an event came to: first seen, the same event again, or another event under a used id."""
SCHEMA = """
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


def iso(ts: float | None) -> str | None:
    """A stored epoch time as the API shows it (UTC, milliseconds, `Z`)."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
