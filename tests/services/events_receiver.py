"""A loopback stand-in for the webhooks service's `POST /events`, for the producers' tests.

It answers as the service does (README "Webhooks"; services/webhooks/app.py): the producer token required (401),
the event validated against the same JSON Schemas (services.webhooks.events.parse_event: 422), 202 for a new id,
200 for an id seen with the same content, 409 for an id seen with other content. `down()` makes it answer 503 (an
outage the producers must ride out) until `up()`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from services.webhooks.events import InvalidEventError, parse_event

TOKEN = "producer-token-" + "p" * 20


@dataclass
class EventsReceiver:
    url: str = ""
    posts: list[dict[str, Any]] = field(default_factory=list)
    """Every post taken (new or duplicate), in order."""
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Accepted events by id (the first content)."""
    refused: list[tuple[int, str]] = field(default_factory=list)
    unavailable: int = 0
    """Posts answered 503 while down."""
    is_down: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def down(self) -> None:
        self.is_down = True

    def up(self) -> None:
        self.is_down = False

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events.values() if e["type"] == event_type]

    def posts_of(self, event_id: str) -> int:
        with self.lock:
            return sum(1 for p in self.posts if p.get("id") == event_id)

    def wait(self, predicate: Callable[[EventsReceiver], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            time.sleep(0.1)
        raise AssertionError(f"not received in {timeout} s: {sorted(self.events)}")

    def answer(self, token: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if token != f"Bearer {TOKEN}":
            return 401, {"error": "unauthorized"}
        if self.is_down:
            self.unavailable += 1
            return 503, {"error": "unavailable"}
        try:
            doc = json.loads(body)
            parse_event(doc)
        except (ValueError, InvalidEventError) as exc:
            self.refused.append((422, str(exc)))
            return 422, {"error": str(exc)}
        with self.lock:
            seen = self.events.get(doc["id"])
            if seen is not None and seen != doc:
                self.refused.append((409, doc["id"]))
                return 409, {"error": "id seen with other content"}
            self.posts.append(doc)
            if seen is not None:
                return 200, {"result": "duplicate"}
            self.events[doc["id"]] = doc
        return 202, {"result": "new"}


@contextmanager
def events_receiver() -> Iterator[EventsReceiver]:
    receiver = EventsReceiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            status, answer = (
                receiver.answer(self.headers.get("authorization", ""), body)
                if self.path == "/events"
                else (404, {"error": "not found"})
            )
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    # shutdown() waits for the serving loop's next poll: 0.05 s rather than the default 0.5 s.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def producer_env(receiver: EventsReceiver) -> dict[str, str]:
    return {"WEBHOOKS_URL": receiver.url, "WEBHOOKS_EVENT_TOKEN": TOKEN}
