"""The webhooks service's HTTP surface (Starlette on uvicorn, like the meter).

Three kinds of caller: producers (`POST /events`, WEBHOOKS_EVENT_TOKEN, in-region only), owners through Kong
(`/v1/webhooks/...`, WEBHOOKS_KONG_TOKEN plus the X-Consumer-Custom-ID Kong sets; the header is believed only with
that token), and probes (`/healthz`, `/metrics`). Every management query is scoped to the owner: another owner's
ids answer 404, exactly like ids that do not exist.
"""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from foundation.naming import PARTNER_ID_PATTERN
from services.webhooks.dispatcher import Dispatcher
from services.webhooks.events import InvalidEventError, event_types, parse_event, schemas
from services.webhooks.metrics import Metrics
from services.webhooks.netguard import Guard, RefusedError, check_url
from services.webhooks.store import CONFLICT, DEAD, DELIVERED, NEW, PENDING, Store

MAX_EVENT_BODY = 256 * 1024
MAX_MANAGEMENT_BODY = 64 * 1024
MAX_ENDPOINTS_PER_OWNER = 50
MAX_GRACE_SECONDS = 7 * 86400
DEFAULT_GRACE_SECONDS = 86400
OWNER = re.compile(PARTNER_ID_PATTERN)
"""Partner and integration ids (Kong consumers' custom_id)."""
_ID = re.compile(r"^[a-z]{2,3}_[0-9a-f]{12,40}$")


@dataclass
class WebhooksState:
    store: Store
    dispatcher: Dispatcher
    guard: Guard
    event_token: str = field(repr=False)
    kong_token: str = field(repr=False)
    metrics: Metrics = field(default_factory=Metrics)
    draining: bool = False


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def _problem(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def _bearer_ok(request: Request, token: str) -> bool:
    given = request.headers.get("authorization", "").encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, f"Bearer {token}".encode())


async def _json_body(request: Request, limit: int, *, optional: bool = False) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ApiError(413, "too_large", f"the body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body and optional:
        return {}
    if request.headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
        raise ApiError(415, "content_type", "expected application/json")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "malformed", "the body is not JSON") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "malformed", "the body must be a JSON object")
    return doc


def _state(request: Request) -> WebhooksState:
    state: WebhooksState = request.app.state.webhooks
    return state


# ----------------------------------------------------------------------------------------------- producers


async def post_event(request: Request) -> Response:
    state = _state(request)
    if not _bearer_ok(request, state.event_token):
        return _problem(401, "unauthorized", "missing or wrong producer token")
    if state.draining:
        return _problem(503, "draining", "the service is shutting down; retry")
    doc = await _json_body(request, MAX_EVENT_BODY)
    try:
        event = parse_event(doc)
    except InvalidEventError as exc:
        state.metrics.events["invalid"] += 1
        return _problem(422, "invalid_event", str(exc))
    verdict, woken = await state.store.write(state.store.ingest_fn(event, time.time()))
    state.metrics.events[verdict] += 1
    if verdict == CONFLICT:
        return _problem(409, "conflict", "this event id was accepted before with other content")
    for endpoint_id in woken:
        state.dispatcher.wake(endpoint_id)
    answer = {"id": event.id, "result": verdict, "messages": len(woken)}
    return JSONResponse(answer, status_code=202 if verdict == NEW else 200)


# ----------------------------------------------------------------------------------------------- owners


def _owner(request: Request) -> str:
    state = _state(request)
    if not _bearer_ok(request, state.kong_token):
        raise ApiError(401, "unauthorized", "not called through the gateway")
    owner = request.headers.get("x-consumer-custom-id", "")
    if not OWNER.match(owner):
        raise ApiError(401, "unauthorized", "no consumer")
    return owner


EventTypes = Annotated[list[str], Field(max_length=32)]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    url: Annotated[str, Field(max_length=2048)]
    event_types: EventTypes = []
    description: Annotated[str, Field(max_length=500)] = ""
    enabled: bool = True


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    url: Annotated[str, Field(max_length=2048)] | None = None
    event_types: EventTypes | None = None
    description: Annotated[str, Field(max_length=500)] | None = None
    enabled: bool | None = None


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    grace_seconds: Annotated[int, Field(ge=0, le=MAX_GRACE_SECONDS)] = DEFAULT_GRACE_SECONDS


def _model(model: type[BaseModel], doc: Any) -> Any:
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(body)"
        raise ApiError(422, "invalid", f"{where}: {first['msg']}") from None


def _types(types: list[str]) -> list[str]:
    unknown = sorted(set(types) - event_types())
    if unknown:
        known = ", ".join(sorted(event_types()))
        raise ApiError(422, "invalid", f"event_types: unknown type {unknown[0]!r} (known: {known})")
    return types


async def _check_url(state: WebhooksState, url: str) -> None:
    try:
        target = check_url(url, state.guard.policy)
        await state.guard.addresses(target.host)
    except RefusedError as exc:
        raise ApiError(422, "invalid", str(exc)) from None


def _path_id(request: Request, name: str) -> str:
    value = str(request.path_params[name])
    if not _ID.match(value):
        raise ApiError(404, "not_found", "no such id")
    return value


async def create_endpoint(request: Request) -> Response:
    owner = _owner(request)
    state = _state(request)
    spec: EndpointIn = _model(EndpointIn, await _json_body(request, MAX_MANAGEMENT_BODY))
    _types(spec.event_types)
    await _check_url(state, spec.url)
    if state.store.count_endpoints(owner) >= MAX_ENDPOINTS_PER_OWNER:
        raise ApiError(409, "too_many", f"at most {MAX_ENDPOINTS_PER_OWNER} endpoints per owner")
    endpoint, secret = await state.store.write(
        state.store.create_fn(owner, spec.url, spec.event_types, spec.description, spec.enabled, time.time())
    )
    return JSONResponse({**endpoint.public(), "secret": secret}, status_code=201)


async def list_endpoints(request: Request) -> Response:
    owner = _owner(request)
    return JSONResponse({"data": [e.public() for e in _state(request).store.endpoints(owner)]})


async def get_endpoint(request: Request) -> Response:
    owner = _owner(request)
    endpoint = _state(request).store.endpoint(owner, _path_id(request, "endpoint_id"))
    if endpoint is None:
        raise ApiError(404, "not_found", "no such endpoint")
    return JSONResponse(endpoint.public())


async def patch_endpoint(request: Request) -> Response:
    owner = _owner(request)
    state = _state(request)
    endpoint_id = _path_id(request, "endpoint_id")
    patch: EndpointPatch = _model(EndpointPatch, await _json_body(request, MAX_MANAGEMENT_BODY))
    changes = patch.model_dump(exclude_none=True)
    if state.store.endpoint(owner, endpoint_id) is None:
        raise ApiError(404, "not_found", "no such endpoint")
    if "event_types" in changes:
        _types(changes["event_types"])
    if "url" in changes:
        await _check_url(state, changes["url"])
    endpoint = await state.store.write(state.store.update_fn(owner, endpoint_id, changes, time.time()))
    if endpoint is None:
        raise ApiError(404, "not_found", "no such endpoint")
    if endpoint.enabled:
        state.dispatcher.wake(endpoint_id)
    return JSONResponse(endpoint.public())


async def delete_endpoint(request: Request) -> Response:
    owner = _owner(request)
    state = _state(request)
    if not await state.store.write(state.store.delete_fn(owner, _path_id(request, "endpoint_id"))):
        raise ApiError(404, "not_found", "no such endpoint")
    return Response(status_code=204)


async def rotate_secret(request: Request) -> Response:
    owner = _owner(request)
    state = _state(request)
    endpoint_id = _path_id(request, "endpoint_id")
    spec: RotateIn = _model(RotateIn, await _json_body(request, MAX_MANAGEMENT_BODY, optional=True))
    secret = await state.store.write(state.store.rotate_fn(owner, endpoint_id, spec.grace_seconds, time.time()))
    if secret is None:
        raise ApiError(404, "not_found", "no such endpoint")
    return JSONResponse({"id": endpoint_id, "secret": secret, "previous_secret_valid_seconds": spec.grace_seconds})


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 250:
        raise ApiError(422, "invalid", "limit: 1 to 250")
    return int(raw)


def _query_id(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is not None and not _ID.match(value):
        raise ApiError(422, "invalid", f"{name}: not an id")
    return value


async def list_messages(request: Request) -> Response:
    owner = _owner(request)
    state_filter = request.query_params.get("state")
    if state_filter is not None and state_filter not in (PENDING, DELIVERED, DEAD):
        raise ApiError(422, "invalid", "state: pending, delivered or dead")
    rows = _state(request).store.messages(
        owner,
        state=state_filter,
        endpoint_id=_query_id(request, "endpoint_id"),
        before=_query_id(request, "before"),
        limit=_limit(request),
    )
    return JSONResponse({"data": rows, "next_before": rows[-1]["id"] if rows else None})


async def list_attempts(request: Request) -> Response:
    owner = _owner(request)
    before = request.query_params.get("before")
    if before is not None and not before.isdigit():
        raise ApiError(422, "invalid", "before: an attempt id")
    rows = _state(request).store.attempts(
        owner,
        message_id=_query_id(request, "message_id"),
        endpoint_id=_query_id(request, "endpoint_id"),
        before=int(before) if before else None,
        limit=_limit(request),
    )
    return JSONResponse({"data": rows, "next_before": rows[-1]["id"] if rows else None})


async def replay_message(request: Request) -> Response:
    owner = _owner(request)
    state = _state(request)
    message_id = _path_id(request, "message_id")
    endpoint_id = await state.store.write(state.store.replay_fn(owner, message_id, time.time()))
    if endpoint_id is None:
        raise ApiError(404, "not_found", "no such message")
    state.dispatcher.wake(endpoint_id)
    return JSONResponse({"id": message_id, "state": PENDING}, status_code=202)


async def list_event_types(request: Request) -> Response:
    _owner(request)
    return JSONResponse({"data": [{"type": t, "version": v, "schema": s} for t, (v, s) in sorted(schemas().items())]})


# ----------------------------------------------------------------------------------------------- probes


async def healthz(request: Request) -> Response:
    if _state(request).draining:
        return PlainTextResponse("draining\n", status_code=503)
    return PlainTextResponse("ok\n")


async def metrics(request: Request) -> Response:
    state = _state(request)
    text = state.metrics.render(
        state.store.counts(), state.dispatcher.in_flight, lambda: state.store.count_all_endpoints()
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _problem(exc.status, exc.error, exc.detail)


async def _not_found(request: Request, exc: Any) -> Response:
    return _problem(404, "not_found", "no such path")


async def _method(request: Request, exc: Any) -> Response:
    return _problem(405, "method_not_allowed", "method not allowed")


async def _internal(request: Request, exc: Exception) -> Response:
    return _problem(500, "internal", "internal error")  # never a traceback in a response


def build_app(state: WebhooksState, lifespan: Any = None) -> Starlette:
    base = "/v1/webhooks"
    app = Starlette(
        routes=[
            Route("/events", post_event, methods=["POST"]),
            Route(f"{base}/endpoints", list_endpoints, methods=["GET"]),
            Route(f"{base}/endpoints", create_endpoint, methods=["POST"]),
            Route(f"{base}/endpoints/{{endpoint_id}}", get_endpoint, methods=["GET"]),
            Route(f"{base}/endpoints/{{endpoint_id}}", patch_endpoint, methods=["PATCH"]),
            Route(f"{base}/endpoints/{{endpoint_id}}", delete_endpoint, methods=["DELETE"]),
            Route(f"{base}/endpoints/{{endpoint_id}}/rotate-secret", rotate_secret, methods=["POST"]),
            Route(f"{base}/messages", list_messages, methods=["GET"]),
            Route(f"{base}/messages/{{message_id}}/replay", replay_message, methods=["POST"]),
            Route(f"{base}/attempts", list_attempts, methods=["GET"]),
            Route(f"{base}/event-types", list_event_types, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        exception_handlers={ApiError: _on_problem, 404: _not_found, 405: _method, Exception: _internal},
        lifespan=lifespan,
    )
    app.state.webhooks = state
    return app
