"""Delivery: per-endpoint queues with a concurrency limit, Standard Webhooks signatures, the retry schedule.

Each endpoint with pending messages has one delivery loop (a task) that takes due messages from the store, at most
`per_endpoint` at a time, so an endpoint that is slow or down holds its own slots only and never delays another
endpoint's messages. A message's outcome is committed before the loop may take it again; a message whose attempt
was in flight when the process died is still pending and goes out again with the same webhook-id.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import random
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import aiohttp

from services.webhooks.deliveries import AttemptResult
from services.webhooks.metrics import Histogram, Metrics
from services.webhooks.netguard import Guard, GuardedResolver, RefusedError, check_url
from services.webhooks.store import DEAD, DELIVERED, Due, Store

log = logging.getLogger("webhooks.dispatcher")
SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
"""Seconds before attempt n (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); after the last, dead-lettered."""
JITTER = 0.1
"""Each delay is drawn from +-10 % of its step, so retries of many messages to one receiver do not arrive in step."""
ATTEMPT_TIMEOUT = 15.0
MAX_RETRY_AFTER = 86400.0
"""A Retry-After beyond a day is read as a day."""
USER_AGENT = "platform-webhooks/1"


def next_delay(attempts_done: int, retry_after: float | None, scale: float, rng: random.Random) -> float | None:
    """Seconds until the next attempt after `attempts_done` attempts failed; None: no attempt left.

    The schedule is multiplied by `scale` (a test setting); a receiver's Retry-After (429, 503) is its own clock and
    is honoured as given: the next attempt is never earlier than it asks."""
    if attempts_done >= len(SCHEDULE):
        return None
    delay = SCHEDULE[attempts_done] * (1 + rng.uniform(-JITTER, JITTER)) * scale
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def parse_retry_after(value: str | None, now: float) -> float | None:
    """RFC 9110 10.2.3: delay-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - now)


def sign(keys: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per key, space-separated (Standard Webhooks)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    out = []
    for key in keys:
        raw = base64.b64decode(key.removeprefix("whsec_"))
        out.append("v1," + base64.b64encode(hmac.new(raw, signed, hashlib.sha256).digest()).decode())
    return " ".join(out)


@dataclass
class _EndpointQueue:
    endpoint_id: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    inflight: set[str] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class Dispatcher:
    def __init__(
        self,
        store: Store,
        guard: Guard,
        metrics: Metrics,
        *,
        scale: float = 1.0,
        per_endpoint: int = 8,
        timeout: float = ATTEMPT_TIMEOUT,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.guard = guard
        self.metrics = metrics
        self.scale = scale
        self.per_endpoint = per_endpoint
        self.timeout = timeout
        self.rng = rng or random.Random()
        self._queues: dict[str, _EndpointQueue] = {}
        self._stopping = False
        self._session: aiohttp.ClientSession | None = None

    @property
    def in_flight(self) -> int:
        return sum(len(queue.inflight) for queue in self._queues.values())

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.guard),
            use_dns_cache=False,  # every new connection resolves (and is checked) again
            # No pool limits: the delivery loops bound attempts per endpoint. A pool limit per host would be shared by
            # every endpoint on that host (many partners use one integration platform's host), so one slow endpoint
            # could take the connections another needs; a global one could be filled by the slow ones alone.
            limit=0,
            limit_per_host=0,
            keepalive_timeout=30,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            trust_env=False,  # no proxy from the environment: the connection goes to the checked address
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            headers={"User-Agent": USER_AGENT},
        )
        for endpoint_id in self.store.endpoints_with_pending():
            self.wake(endpoint_id)

    def wake(self, endpoint_id: str) -> None:
        if self._stopping:
            return
        queue = self._queues.get(endpoint_id)
        if queue is None:
            queue = self._queues[endpoint_id] = _EndpointQueue(endpoint_id)
            queue.task = asyncio.get_running_loop().create_task(
                self._deliver_loop(queue), name=f"endpoint-{endpoint_id}"
            )
        queue.wake.set()

    async def stop(self, grace: float = 5.0) -> None:
        """Attempts in flight get `grace` seconds; whatever is not recorded by then stays pending (sent again)."""
        self._stopping = True
        queues = list(self._queues.values())
        for queue in queues:
            queue.wake.set()
        tasks = [q.task for q in queues if q.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _deliver_loop(self, queue: _EndpointQueue) -> None:
        deliveries: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping:
                queue.wake.clear()
                free = self.per_endpoint - len(queue.inflight)
                if free > 0:
                    for due in self.store.due(queue.endpoint_id, time.time(), sorted(queue.inflight), free):
                        queue.inflight.add(due.message_id)
                        task = asyncio.get_running_loop().create_task(self._deliver(queue, due))
                        deliveries.add(task)
                        task.add_done_callback(deliveries.discard)
                if len(queue.inflight) >= self.per_endpoint:
                    timeout: float | None = None  # a finished delivery wakes us
                else:
                    nxt = self.store.next_due(queue.endpoint_id, sorted(queue.inflight))
                    if nxt is None and not queue.inflight:
                        break  # nothing pending: the loop ends (wake() starts a new one)
                    timeout = None if nxt is None else max(0.0, nxt - time.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queue.wake.wait(), timeout)
            if deliveries:
                await asyncio.gather(*deliveries, return_exceptions=True)
        except asyncio.CancelledError:
            for task in deliveries:
                task.cancel()
            raise
        except Exception:
            log.exception("endpoint delivery loop %s failed; its messages stay pending", queue.endpoint_id)
        finally:
            if self._queues.get(queue.endpoint_id) is queue:
                del self._queues[queue.endpoint_id]
            if not self._stopping and (queue.inflight or self.store.next_due(queue.endpoint_id, ()) is not None):
                # Ended with work left (a failure above, or a wake that raced the exit): start again shortly.
                asyncio.get_running_loop().call_later(1.0, self.wake, queue.endpoint_id)

    async def _deliver(self, queue: _EndpointQueue, due: Due) -> None:
        try:
            if due.attempts == 0:
                self.metrics.first_attempt.observe(max(0.0, time.time() - due.created))
            outcome = await self._attempt(queue.endpoint_id, due)
            if outcome is None:
                return
            recorded = await self.store.write(
                self.store.record_fn(due.message_id, queue.endpoint_id, outcome, time.time())
            )
            if outcome.outcome == "delivered":
                self.metrics.delivered += 1
            else:
                self.metrics.failed[outcome.outcome] += 1
            if recorded.state == DEAD and outcome.outcome != DELIVERED:
                self.metrics.dead_lettered += 1
            if recorded.disabled:
                self.metrics.disabled[recorded.disabled] += 1
                log.warning("endpoint %s disabled (%s)", queue.endpoint_id, recorded.disabled)
            for endpoint_id in recorded.notified:
                self.wake(endpoint_id)
        except Exception:
            log.exception("recording an attempt of %s failed; it stays pending", due.message_id)
        finally:
            queue.inflight.discard(due.message_id)
            queue.wake.set()

    async def _attempt(self, endpoint_id: str, due: Due) -> AttemptResult | None:
        found = self.store.delivery(endpoint_id)
        if found is None:
            return None  # the endpoint was deleted (its messages with it)
        url, enabled, keys = found
        if not enabled:
            return None  # paused by its owner: pending until enabled again
        body = self.store.payload(due.event_id)
        started = time.monotonic()

        def done(kind: str, status: int | None, error: str | None, retry_after: float | None = None) -> AttemptResult:
            final = kind in ("delivered", "gone")
            delay = None if final else next_delay(due.attempts + 1, retry_after, self.scale, self.rng)
            return AttemptResult(kind, status, error, (time.monotonic() - started) * 1000, delay)

        try:
            target = check_url(url, self.guard.policy)
            await self.guard.addresses(target.host)  # resolved and checked at every delivery
        except RefusedError as exc:
            return done("refused", None, str(exc)[:300])
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": due.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(keys, due.message_id, timestamp, body),
        }
        assert self._session is not None
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                status = response.status
                retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
                with contextlib.suppress(Exception):
                    await response.content.read(1024)  # what it says is not kept; a little is read to reuse the socket
        except TimeoutError:
            outcome = done("timeout", None, f"no answer within {self.timeout:g} s")
        except aiohttp.ClientConnectorDNSError as exc:
            outcome = done("refused", None, str(exc.os_error)[:300])
        except aiohttp.ClientError as exc:
            outcome = done("error", None, f"{type(exc).__name__}: {str(exc)[:200]}")
        else:
            if 200 <= status < 300:
                outcome = done("delivered", status, None)
            elif status == 410:
                outcome = done("gone", status, "410 Gone: the endpoint is disabled")
            elif 300 <= status < 400:
                outcome = done("redirect", status, "redirects are not followed")
            elif status in (429, 503):
                outcome = done("failed", status, f"HTTP {status}", retry_after)
            else:
                outcome = done("failed", status, f"HTTP {status}")
        self.metrics.latency.setdefault(endpoint_id, Histogram()).observe(outcome.duration_ms / 1000)
        return outcome
