"""Event types, their JSON Schemas (one file per type and version in schemas/) and the payload receivers get.

The schemas are the contract: producers' events are validated against them before anything is stored, and the same
files are published with the API docs. A new version of a type is a new file (`<type>.v2.json`); the service
validates against the newest version of each type.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator, FormatChecker

SCHEMA_DIR = Path(__file__).with_name("schemas")
_FILE = re.compile(r"^(?P<type>[a-z]+\.[a-z_]+)\.v(?P<version>[0-9]+)\.json$")
INTERNAL_TYPES = frozenset({"endpoint.disabled"})
"""Produced by the service itself; producers may not post them."""


@dataclass(frozen=True)
class Event:
    id: str
    """The producer's id: the same id twice is one event."""
    type: str
    """An event type with a schema."""
    partner: str
    """The partner the event is about (its owner for delivery)."""
    data: dict[str, Any]
    """Validated against the type's schema."""

    def fingerprint(self) -> str:
        """What a repeat of the same id must match to be the same event."""
        canonical = orjson.dumps([self.type, self.partner, self.data], option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()

    def payload(self, received: float) -> bytes:
        """The body every delivery of this event carries (Standard Webhooks: type, timestamp, data)."""
        when = dt.datetime.fromtimestamp(received, dt.UTC)
        timestamp = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return orjson.dumps(
            {"id": self.id, "type": self.type, "timestamp": timestamp, "partner": self.partner, "data": self.data}
        )


class InvalidEventError(ValueError):
    """The event does not match its type's schema (the message names the field)."""


@cache
def schemas() -> dict[str, tuple[int, dict[str, Any]]]:
    """type -> (newest version, schema)."""
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        match = _FILE.match(path.name)
        if match is None:
            continue
        version = int(match["version"])
        if match["type"] not in found or found[match["type"]][0] < version:
            found[match["type"]] = (version, json.loads(path.read_text(encoding="utf-8")))
    return found


@cache
def _validator(event_type: str) -> Draft202012Validator:
    return Draft202012Validator(schemas()[event_type][1], format_checker=FormatChecker())


def event_types() -> frozenset[str]:
    return frozenset(schemas())


def parse_event(doc: Any, *, internal: bool = False) -> Event:
    """A producer's JSON document -> Event, or InvalidEventError naming the field."""
    if not isinstance(doc, dict):
        raise InvalidEventError("the body must be a JSON object")
    event_type = doc.get("type")
    if not isinstance(event_type, str) or event_type not in schemas():
        raise InvalidEventError(f"type: unknown event type (known: {', '.join(sorted(schemas()))})")
    if event_type in INTERNAL_TYPES and not internal:
        raise InvalidEventError(f"type: {event_type} is produced by the webhooks service only")
    error = next(iter(sorted(_validator(event_type).iter_errors(doc), key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        where = ".".join(str(part) for part in error.absolute_path) or "(event)"
        raise InvalidEventError(f"{where}: {error.message[:300]}")
    return Event(id=doc["id"], type=event_type, partner=doc["partner"], data=doc["data"])
