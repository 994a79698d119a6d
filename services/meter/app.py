"""The meter's HTTP surface.

Starlette on uvicorn: both are maintained by the Encode team, widely deployed, and keep the request path
async end to end, so a request waiting for the spool's group commit holds no thread. uvicorn's httptools
parser and uvloop (the `standard` extra) carry the throughput, and its signal handling gives the graceful
SIGTERM drain the meter needs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator, add_port, remove_port

from foundation.naming import TWILIO_CALLBACK_OVERRIDES, TWILIO_STATUS_CALLBACK_TEMPLATE, twilio_status_callback_path
from services.meter import events
from services.meter.events import Event, Form, Ignored, Rejected
from services.meter.metrics import Metrics, connection_lines, spool_lines, twilio_lines
from services.meter.roster import UNKNOWN_PARTNER_WAIT_SECONDS, Partner, RosterFeed
from services.meter.spool import CONFLICT, NEW, Spool, SpoolFullError, volume_free_bytes
from services.meter.subaccounts import SubaccountTokens, TwilioUnavailableError

MAX_TWILIO_BODY = 16 * 1024
"""A status callback is a few hundred bytes of form fields."""
MAX_KONG_BODY = 4 * 1024 * 1024
"""Kong batches of 100 entries with their headers stay well under this."""
MAX_KONG_ENTRIES = 1000
TWILIO_RETRY_AFTER = 5
"""Seconds, in Retry-After, when Twilio's API cannot be asked for a partner's token."""
SPOOL_RETRY_AFTER = 30
"""Seconds, in Retry-After, when the spool cannot take an event (full, disk full, draining)."""
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")  # the Account resource's documented pattern


@dataclass
class MeterState:
    roster: dict[str, Partner]
    """Partners this region meters."""
    spool: Spool
    """The durable spool."""
    subaccounts: SubaccountTokens
    """Each partner's Twilio subaccount and the token it signs with (looked up with the master credentials)."""
    kong_token: str = field(repr=False)
    """METER_KONG_TOKEN (never printed)."""
    public_url: str
    """Base URL Twilio calls (what it signs), without a trailing slash."""
    metrics: Metrics = field(default_factory=Metrics)
    """Counters."""
    draining: bool = False
    """Set on SIGTERM: refuse new events."""
    flusher: Any = None
    """The FlusherSupervisor, for /healthz (None in tests that run no flusher)."""
    roster_feed: RosterFeed | None = None
    """Where `roster` is refreshed from (the PARTNERS rows the flusher reads); None: `roster` is fixed."""

    def __post_init__(self) -> None:
        self._signed_urls = {partner_id: self._urls(partner_id) for partner_id in self.roster}

    def sync_roster(self) -> None:
        """Take the roster the flusher last read from PARTNERS, if it changed (a memory read when it did not)."""
        feed = self.roster_feed
        if feed is None or not feed.changed():
            return
        roster = feed.load()
        if roster is not None:
            self.roster = roster
            self._signed_urls = {partner_id: self._urls(partner_id) for partner_id in roster}

    async def find_partner(self, partner_id: str) -> Partner | None:
        """The partner from the roster; one not in it makes the flusher read PARTNERS again (rate-limited, see
        RosterFeed.request) and waits for that, so a partner onboarded a moment ago is metered from its first call."""
        self.sync_roster()
        partner = self.roster.get(partner_id)
        feed = self.roster_feed
        if partner is not None or feed is None:
            return partner
        feed.request()
        deadline = time.monotonic() + UNKNOWN_PARTNER_WAIT_SECONDS
        while feed.pending() and not feed.changed() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        self.sync_roster()
        return self.roster.get(partner_id)

    def _urls(self, partner_id: str) -> tuple[str, ...]:
        # The URL Twilio signed is the public one (behind Kong), not the one this process sees.
        url = f"{self.public_url}{twilio_status_callback_path(partner_id)}"
        parsed = urlparse(url)
        # RequestValidator.validate accepts the URL with and without its port ("since sig generation on back end is
        # inconsistent"); the form as configured comes first, the other only for a signature that did not match.
        other = remove_port(parsed) if parsed.port else add_port(parsed)
        forms = (url, other) if other != url else (url,)
        # The numbers' callback URL carries Twilio's connection overrides as a fragment, which is never sent: whether
        # Twilio signs the URL with it is not documented, so both are accepted.
        return forms + tuple(form + TWILIO_CALLBACK_OVERRIDES for form in forms)

    def signature_ok(self, partner_id: str, form: Form, signature: str, token: str) -> bool:
        """RequestValidator.validate's rule (HMAC-SHA1 of URL + sorted fields, the URL with or without its port) for
        `token`, with the URLs worked out once and one HMAC for a good request instead of two and a URL parse each."""
        if not signature:
            return False
        given = signature.encode("utf-8", "surrogateescape")
        urls = self._signed_urls.get(partner_id) or self._urls(partner_id)
        validator = RequestValidator(token)
        return any(hmac.compare_digest(validator.compute_signature(url, form).encode(), given) for url in urls)


class _TooLargeError(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _TooLargeError
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def _reject(state: MeterState, source: str, rejected: Rejected, retry_after: int | None = None) -> Response:
    state.metrics.reject(source, rejected.reason)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(
        {"error": rejected.reason, "detail": rejected.detail}, status_code=rejected.status, headers=headers
    )


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def _spool(state: MeterState, source: str, batch: list[Event]) -> list[str] | Response:
    if state.draining:
        return _reject(state, source, Rejected(503, "draining", "the meter is shutting down; retry"), SPOOL_RETRY_AFTER)
    try:
        return await state.spool.append(batch)
    except SpoolFullError:
        return _reject(state, source, Rejected(503, "spool_full", "the spool is full; retry later"), SPOOL_RETRY_AFTER)
    except Exception:
        # Disk full, I/O error: nothing was written; the spool says so in /healthz until a write succeeds again.
        return _reject(
            state, source, Rejected(503, "spool_error", "the spool could not write; retry"), SPOOL_RETRY_AFTER
        )


async def twilio_status(request: Request) -> Response:
    state: MeterState = request.app.state.meter
    partner_id = request.path_params["partner_id"]
    try:
        body = await _read_body(request, MAX_TWILIO_BODY)
    except _TooLargeError:
        return _reject(state, "twilio", Rejected(413, "too_large", "the body is larger than a status callback"))
    if _media_type(request) != "application/x-www-form-urlencoded":
        return _reject(state, "twilio", Rejected(400, "content_type", "expected application/x-www-form-urlencoded"))
    form = events.parse_form(body)
    if isinstance(form, Rejected):
        return _reject(state, "twilio", form)
    if not events.partner_id_ok(partner_id):
        # Not a partner id at all (path tricks, encoded slashes): nothing to sign or look up.
        return _reject(state, "twilio", Rejected(404, "unknown_partner", "no such partner in this region"))
    partner = await state.find_partner(partner_id)
    if partner is None:
        # Before the signature: only a partner of this region may make the meter ask Twilio for a token.
        return _reject(state, "twilio", Rejected(404, "unknown_partner", "no such partner in this region"))
    account_sid = form.get("AccountSid", "")
    signature = request.headers.get("x-twilio-signature", "")
    if not _ACCOUNT_SID.fullmatch(account_sid) or not signature:
        return _reject(state, "twilio", Rejected(403, "bad_signature", "X-Twilio-Signature does not match"))
    try:
        verified = await state.subaccounts.verify(
            partner_id, account_sid, lambda token: state.signature_ok(partner_id, form, signature, token)
        )
    except TwilioUnavailableError:
        # Not a 403: Twilio does not retry a 4xx, and this callback may well be genuine.
        return _reject(
            state,
            "twilio",
            Rejected(503, "twilio_unavailable", "the partner's Twilio subaccount cannot be looked up; retry"),
            retry_after=TWILIO_RETRY_AFTER,
        )
    if not verified:
        return _reject(state, "twilio", Rejected(403, "bad_signature", "X-Twilio-Signature does not match"))
    outcome = events.call_event(partner, form, dt.datetime.now(dt.UTC))
    if isinstance(outcome, Rejected):
        return _reject(state, "twilio", outcome)
    if isinstance(outcome, Ignored):
        state.metrics.ignored[outcome.status] += 1
        return PlainTextResponse("ignored\n")
    result = await _spool(state, "twilio", [outcome])
    if isinstance(result, Response):
        return result
    (verdict,) = result
    if verdict == CONFLICT:
        # Malformed, not a conflict to resolve: the answers are 200/400/403/404/413/503, and a retry of it
        # can never succeed. The spool kept the first version; nothing was written for this one.
        return _reject(
            state, "twilio", Rejected(400, "conflicting_replay", "this CallSid was metered with other fields")
        )
    if verdict == NEW:
        state.metrics.accepted["twilio"] += 1
    else:
        state.metrics.duplicates["twilio"] += 1
    return PlainTextResponse("ok\n")


async def kong_log(request: Request) -> Response:
    state: MeterState = request.app.state.meter
    auth = request.headers.get("authorization", "")
    expected = f"Bearer {state.kong_token}"
    if not hmac.compare_digest(auth.encode("utf-8", "surrogateescape"), expected.encode()):
        return _reject(state, "kong", Rejected(403, "bad_token", "missing or wrong bearer token"))
    try:
        body = await _read_body(request, MAX_KONG_BODY)
    except _TooLargeError:
        return _reject(state, "kong", Rejected(413, "too_large", "the batch is too large"))
    if _media_type(request) != "application/json":
        return _reject(state, "kong", Rejected(400, "content_type", "expected application/json"))
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:  # a ValueError; also what orjson raises past its nesting limit
        return _reject(state, "kong", Rejected(400, "malformed", "the body is not JSON"))
    entries = doc if isinstance(doc, list) else [doc]
    if not entries or len(entries) > MAX_KONG_ENTRIES:
        return _reject(state, "kong", Rejected(400, "malformed", f"a batch holds 1 to {MAX_KONG_ENTRIES} entries"))
    now = dt.datetime.now(dt.UTC)
    state.sync_roster()
    consumers = {_consumer(entry) for entry in entries} - {None}
    for partner_id in sorted(str(c) for c in consumers if c not in state.roster)[:1]:
        await state.find_partner(partner_id)  # one wait per batch at most: the refresh brings every new partner
    good: list[Event] = []
    rejected: dict[str, int] = {}
    last: Rejected | None = None
    for entry in entries:
        outcome = events.kong_event(entry, state.roster, now)
        if isinstance(outcome, Rejected):
            state.metrics.reject("kong", outcome.reason)
            rejected[outcome.reason] = rejected.get(outcome.reason, 0) + 1
            last = outcome
        else:
            good.append(outcome)
    if not good and last is not None and len(entries) == 1:
        return JSONResponse({"error": last.reason, "detail": last.detail}, status_code=last.status)
    result = await _spool(state, "kong", good) if good else []
    if isinstance(result, Response):
        return result
    accepted = result.count(NEW)
    duplicates = len(result) - accepted - result.count(CONFLICT)
    conflicts = result.count(CONFLICT)
    state.metrics.accepted["kong"] += accepted
    state.metrics.duplicates["kong"] += duplicates
    if conflicts:
        state.metrics.reject("kong", "conflicting_replay", conflicts)
        rejected["conflicting_replay"] = conflicts
    # A batch answers 200 for what it could take: Kong would resend a refused batch whole, and an entry that
    # is bad once is bad on every resend. The refusals are counted under their reasons.
    return JSONResponse({"accepted": accepted, "duplicates": duplicates, "rejected": rejected})


def _consumer(entry: Any) -> str | None:
    consumer = entry.get("consumer") if isinstance(entry, dict) else None
    partner_id = consumer.get("custom_id") if isinstance(consumer, dict) else None
    return partner_id if isinstance(partner_id, str) and events.partner_id_ok(partner_id) else None


async def healthz(request: Request) -> Response:
    """`ok` only when the meter can take events: not draining, the spool writable with room and disk, the flusher not
    crash-looping. Otherwise 503 with one reason a line (alert on it; it is no liveness probe: a restart fixes none)."""
    state: MeterState = request.app.state.meter
    problems = ["draining"] if state.draining else []
    problems += state.spool.problems()
    flusher = state.flusher.problem() if state.flusher is not None else None
    if flusher is not None:
        problems.append(flusher)
    if problems:
        return PlainTextResponse("".join(f"{p}\n" for p in problems), status_code=503)
    return PlainTextResponse("ok\n")


async def livez(request: Request) -> Response:
    """The process answers HTTP: the liveness probe. /healthz is for readiness and alerts: what it reports (a full
    spool or disk, a crash-looping flusher) a restart does not fix."""
    return PlainTextResponse("ok\n")


async def metrics(request: Request) -> Response:
    state: MeterState = request.app.state.meter
    try:
        free: int | None = volume_free_bytes(state.spool.path.parent)
    except OSError:
        free = None
    more = [*spool_lines(state.spool, free), *twilio_lines(state.subaccounts), *connection_lines()]
    return PlainTextResponse(state.metrics.render(state.spool.pending, more), media_type="text/plain; version=0.0.4")


async def _not_found(request: Request, exc: Any) -> Response:
    return JSONResponse({"error": "not_found"}, status_code=404)


async def _method(request: Request, exc: Any) -> Response:
    return JSONResponse({"error": "method_not_allowed"}, status_code=405)


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client left mid-body (a half-open request cut at the read deadline, a dropped connection): nothing was
    # spooled and nobody reads the answer. Handled here, it is not logged as an application error with a traceback.
    return Response(status_code=400)


async def _internal(request: Request, exc: Exception) -> Response:
    # Never a traceback in a response.
    return JSONResponse({"error": "internal"}, status_code=500)


def build_app(state: MeterState, lifespan: Any = None) -> Starlette:
    app = Starlette(
        routes=[
            Route(TWILIO_STATUS_CALLBACK_TEMPLATE, twilio_status, methods=["POST"]),
            Route("/kong/http-log", kong_log, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/livez", livez, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        exception_handlers={404: _not_found, 405: _method, ClientDisconnect: _client_gone, Exception: _internal},
        lifespan=lifespan,
    )
    # No 307 to the slash-less path: built from the Host header, before any signature check. The documented answers
    # only: an unknown path is a 404.
    app.router.redirect_slashes = False
    app.state.meter = state
    return app
