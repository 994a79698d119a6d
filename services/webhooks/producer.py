"""Posting events to the region's webhooks service: what the meter, the payouts job and platformctl call.

The event is validated against its schema here first (a producer's bug fails where it is, not as a 422 later), then
posted with the producer token; network errors and 5xx answers are retried a few times with backoff (the service
deduplicates by event id, so a retry after a lost answer is harmless). Standard library only: producers need nothing
the services distribution does not have.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from foundation.errors import InputError, PlatformError
from services.webhooks.events import InvalidEventError, parse_event

URL_ENV = "WEBHOOKS_URL"
TOKEN_ENV = "WEBHOOKS_EVENT_TOKEN"


def settings_problem(env: Mapping[str, str]) -> InputError | None:
    """Why the producer settings cannot be used (bad input, naming the variable); None when they can, or when both
    are unset (production off). Producers check this at start: a bad URL must not surface mid-run."""
    url, token = env.get(URL_ENV, ""), env.get(TOKEN_ENV, "")
    if not url and not token:
        return None
    if not url or not token:
        missing = URL_ENV if not url else TOKEN_ENV
        return InputError.single(
            "environment", missing, f"not set, while {({URL_ENV, TOKEN_ENV} - {missing}).pop()} is"
        )
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        return InputError.single("environment", URL_ENV, f"is not a URL: {exc}")
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() or ord(c) < 32 for c in url):
        return InputError.single("environment", URL_ENV, "must be http(s)://HOST[:PORT] of the webhooks service")
    if parts.query or parts.fragment or parts.username or parts.password:
        return InputError.single("environment", URL_ENV, "takes no query, fragment or credentials")
    return None


def publish(
    event: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    timeout: float = 5.0,
    attempts: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Post `event` ({"id", "type", "partner", "data"}) to $WEBHOOKS_URL/events: "new" or "duplicate".

    InputError for an event that does not match its schema or one the service refuses (4xx); PlatformError when the
    service cannot be reached or keeps failing."""
    base, token = env.get(URL_ENV, "").rstrip("/"), env.get(TOKEN_ENV, "")
    if not base or not token:
        raise InputError.single("environment", f"{URL_ENV}, {TOKEN_ENV}", "not set: cannot post events")
    try:
        parse_event(dict(event))
    except InvalidEventError as exc:
        raise InputError.single("event", str(event.get("type", "?")), str(exc)) from None
    body = json.dumps(event).encode()
    last = ""
    for attempt in range(attempts):
        if attempt:
            sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))
        request = urllib.request.Request(
            f"{base}/events",
            data=body,
            method="POST",
            headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return str(json.loads(response.read())["result"])
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace")
            if exc.code < 500:
                raise InputError.single("event", str(event.get("id", "?")), f"refused ({exc.code}): {detail}") from None
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            last = type(exc).__name__
    raise PlatformError(f"the webhooks service at {base} did not take event {event.get('id')!r} ({last})")
