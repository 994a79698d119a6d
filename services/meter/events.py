"""Twilio status callbacks and Kong http-log entries -> warehouse rows, or a rejection with its reason.

Pure functions over already-read bodies: no I/O, so every bad-input case is tested without a server.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson

from foundation.naming import PARTNER_ID_PATTERN
from services.meter.numbers import country_of
from services.meter.roster import Partner

MAX_CALL_SECONDS = 24 * 3600
"""Twilio ends every call at its time limit, at most 24 hours."""
CLOCK_SKEW = dt.timedelta(minutes=5)
"""How far in the future a callback's Timestamp may be before it is refused."""
MAX_AGE = dt.timedelta(days=35)
"""How old an event may be: Twilio retries a callback for hours, not weeks, and an older event would land in a month
that may already be paid out (payouts run on the 2nd for the month before)."""
MAX_FORM_FIELDS = 200
_CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")
_PARTNER_ID = re.compile(PARTNER_ID_PATTERN)
_ROUTE = re.compile(r"^[A-Za-z0-9._~/-]{1,128}$")


@dataclass(frozen=True)
class Rejected:
    status: int
    """HTTP status answered."""
    reason: str
    """Metric label (fixed vocabulary, never caller text)."""
    detail: str
    """Short message for the response body (never echoes secrets)."""


@dataclass(frozen=True)
class Event:
    event_id: str
    """Idempotency key: CallSid, or a stable hash of a Kong entry."""
    kind: str
    """`call` or `api`."""
    fingerprint: str
    """Hash of the fields that matter: a replay with the same id but other fields is refused."""
    row: dict[str, Any]
    """Warehouse row (column -> JSON value)."""

    def row_json(self) -> str:
        """The row as the spool keeps it and the flusher sends it."""
        return orjson.dumps(self.row).decode()


@dataclass(frozen=True)
class Ignored:
    """A valid callback that is not billable (a status other than `completed`)."""

    status: str


class Form(dict[str, str]):
    """A parsed form body. `getall` is the MultiDict method twilio's RequestValidator looks for first: for a plain
    dict it gets there through two AttributeErrors per field, a fifth of the signature check's time."""

    def getall(self, name: str) -> list[str]:
        return [self[name]]


def parse_form(body: bytes) -> Form | Rejected:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return Rejected(400, "malformed", "body is not a form-encoded request")
    form = Form()
    for key, value in pairs:
        if key in form:
            return Rejected(400, "malformed", "a form field is repeated")
        form[key] = value
    return form


def partner_id_ok(partner_id: str) -> bool:
    return bool(_PARTNER_ID.fullmatch(partner_id))


def call_event(partner: Partner, form: dict[str, str], now: dt.datetime) -> Event | Ignored | Rejected:
    """One `completed` status callback -> one usage event keyed by CallSid."""
    sid = form.get("CallSid", "")
    if not _CALL_SID.fullmatch(sid):  # fullmatch: `$` would take 'CA…\n', a second id for one call
        return Rejected(400, "malformed", "CallSid is missing or not a call SID")
    status = form.get("CallStatus", "")
    if status != "completed":
        if status in ("queued", "initiated", "ringing", "in-progress", "busy", "failed", "no-answer", "canceled"):
            return Ignored(status)
        return Rejected(400, "malformed", "CallStatus is missing or unknown")
    raw_duration = form.get("CallDuration", "")
    if not raw_duration.isascii() or not raw_duration.isdigit() or len(raw_duration) > 6:
        return Rejected(400, "bad_duration", "CallDuration must be a whole number of seconds")
    seconds = int(raw_duration)
    if seconds > MAX_CALL_SECONDS:
        return Rejected(400, "bad_duration", "CallDuration is longer than any call can last")
    try:
        ended = parsedate_to_datetime(form.get("Timestamp", ""))
    except (TypeError, ValueError, IndexError):
        return Rejected(400, "bad_timestamp", "Timestamp is missing or not an RFC 2822 date")
    if ended.tzinfo is None:
        return Rejected(400, "bad_timestamp", "Timestamp has no time zone")
    try:
        # An offset at either end of the calendar (9999-12-31 23:59 -1400) leaves datetime's range.
        ended = ended.astimezone(dt.UTC)
        ended - dt.timedelta(seconds=seconds)  # the start must be representable too
    except OverflowError:
        return Rejected(400, "bad_timestamp", "Timestamp is out of range")
    if ended > now + CLOCK_SKEW:
        return Rejected(400, "future_timestamp", "Timestamp is in the future")
    if ended < now - MAX_AGE:
        return Rejected(400, "stale_timestamp", f"Timestamp is more than {MAX_AGE.days} days old")
    country = country_of(form.get("To", ""), form.get("ToCountry") or None)
    if country is None:
        return Rejected(400, "unknown_country", "the To number's country cannot be determined")
    minutes = math.ceil(seconds / 60)
    started = ended - dt.timedelta(seconds=seconds)
    partner = partner.for_period(_period(ended))  # a currency change prices from its first month on
    amount = Decimal(minutes) * partner.rate
    row = {
        "EVENT_ID": sid,
        "PARTNER_ID": partner.id,
        "COUNTRY": country,
        "CALL_STARTED_AT": started.isoformat(),
        "PERIOD": _period(ended),
        "BILLABLE_SECONDS": seconds,
        "MINUTES": minutes,
        "TIER": partner.tier,
        "CURRENCY": partner.currency,
        "RATE": str(partner.rate),
        "AMOUNT": str(amount),
        "RECEIVED_AT": now.isoformat(),
        # Not a warehouse column (the MERGE takes the table's columns only): the number call.completed names.
        "CALLED_NUMBER": form.get("To", ""),
    }
    # What Twilio says about the call, not what we derive (rates may change between a call and its retry).
    fingerprint = _digest(partner.id, sid, str(seconds), ended.isoformat(), form.get("To", ""))
    return Event(sid, "call", fingerprint, row)


def kong_event(entry: Any, roster: dict[str, Partner], now: dt.datetime) -> Event | Rejected:
    """One Kong http-log entry -> one API request row keyed by a stable hash of the entry."""
    if not isinstance(entry, dict):
        return Rejected(400, "malformed", "a log entry must be a JSON object")
    consumer = entry.get("consumer")
    partner_id = consumer.get("custom_id") if isinstance(consumer, dict) else None
    if not isinstance(partner_id, str):
        return Rejected(400, "no_consumer", "the entry has no consumer custom_id")
    if partner_id not in roster:
        return Rejected(404, "unknown_partner", "the consumer is not a partner of this region")
    request = entry.get("request")
    response = entry.get("response")
    route = entry.get("route")
    started_ms = entry.get("started_at")
    if not isinstance(request, dict) or not isinstance(response, dict):
        return Rejected(400, "malformed", "request and response must be objects")
    status = response.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        return Rejected(400, "malformed", "response.status must be an HTTP status")
    if not isinstance(started_ms, int) or isinstance(started_ms, bool) or started_ms < 0:
        return Rejected(400, "malformed", "started_at must be epoch milliseconds")
    try:
        started = dt.datetime.fromtimestamp(started_ms / 1000, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return Rejected(400, "bad_timestamp", "started_at is out of range")
    if started > now + CLOCK_SKEW:
        return Rejected(400, "future_timestamp", "started_at is in the future")
    if started < now - MAX_AGE:
        return Rejected(400, "stale_timestamp", f"started_at is more than {MAX_AGE.days} days old")
    route_name = route.get("name") if isinstance(route, dict) else None
    route_name = route_name if isinstance(route_name, str) and _ROUTE.fullmatch(route_name) else "unrouted"
    # Kong 3.x logs a per-request id; without it, the fields that identify one request.
    request_id = request.get("id")
    identity = (
        ("id", str(request_id))
        if isinstance(request_id, str) and request_id
        else (
            "fields",
            str(started_ms),
            str(request.get("method")),
            str(request.get("uri")),
            str(entry.get("client_ip")),
        )
    )
    event_id = _digest(partner_id, *identity)
    row = {
        "EVENT_ID": event_id,
        "PARTNER_ID": partner_id,
        "ROUTE": route_name,
        "STATUS_CLASS": f"{status // 100}xx",
        "REQUESTED_AT": started.isoformat(),
        "PERIOD": _period(started),
    }
    return Event(event_id, "api", _digest(event_id, route_name, str(status)), row)


def _period(moment: dt.datetime) -> str:
    """YYYY-MM (UTC): what strftime("%Y-%m") gives for the years the meter accepts, at a tenth of its cost."""
    return f"{moment.year:04d}-{moment.month:02d}"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
