"""The management API and the dispatcher in one process (the real app, store and dispatcher; a loopback receiver;
DNS answers injected into the guard), for the cases the end-to-end test cannot arrange: hostile input, other owners'
ids, DNS that changes after registration, redirects, integrations, Retry-After, a slow endpoint."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from services.webhooks.app import WebhooksState, build_app
from services.webhooks.dispatcher import Dispatcher
from services.webhooks.metrics import Metrics
from services.webhooks.netguard import Guard, Policy
from services.webhooks.sealing import SecretBox
from services.webhooks.store import Store
from tests.services.webhooks_harness import EVENT_TOKEN, KONG_TOKEN, PRODUCER, Receiver, event, owner_headers


@dataclass
class Rig:
    client: httpx.AsyncClient
    state: WebhooksState
    answers: dict[str, list[str]]

    async def create(self, owner: str, **spec: Any) -> httpx.Response:
        return await self.client.post("/v1/webhooks/endpoints", json=spec, headers=owner_headers(owner))

    async def publish(self, doc: dict[str, Any]) -> httpx.Response:
        return await self.client.post("/events", json=doc, headers=PRODUCER)

    async def get(self, path: str, owner: str, **params: str) -> httpx.Response:
        return await self.client.get(path, params=params, headers=owner_headers(owner))

    async def wait(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, "condition not met in time"
            await asyncio.sleep(0.02)


@asynccontextmanager
async def rig(
    tmp_path: Path, *, loopback: bool = True, scale: float = 0.001, per_endpoint: int = 8
) -> AsyncIterator[Rig]:
    answers: dict[str, list[str]] = {}

    async def resolve(host: str) -> list[str]:
        if host not in answers:
            raise OSError(f"NXDOMAIN {host}")
        return answers[host]

    store = Store(tmp_path / "webhooks.db", failing_disable_seconds=5 * 86400 * scale)
    store.box = SecretBox(b"s" * 32)
    guard = Guard(Policy(allow_loopback=loopback, platform_domains=("voice-platform.example",)), resolve)
    metrics = Metrics()
    dispatcher = Dispatcher(store, guard, metrics, scale=scale, per_endpoint=per_endpoint)
    state = WebhooksState(store, dispatcher, guard, EVENT_TOKEN, KONG_TOKEN, metrics)
    await dispatcher.start()
    transport = httpx.ASGITransport(app=build_app(state))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://webhooks") as client:
            yield Rig(client, state, answers)
    finally:
        await dispatcher.stop(1.0)
        store.close()


def test_owners_never_reach_each_others_endpoints_or_messages(tmp_path: Path) -> None:
    async def scenario() -> None:
        with Receiver() as receiver:
            async with rig(tmp_path) as r:
                mine = (await r.create("acme-voice", url=receiver.url())).json()
                await r.publish(event())
                await r.wait(lambda: len(receiver.received) == 1)
                (message,) = (await r.get("/v1/webhooks/messages", "acme-voice")).json()["data"]
                other = owner_headers("sakura-calls")
                base = f"/v1/webhooks/endpoints/{mine['id']}"
                assert (await r.client.get(base, headers=other)).status_code == 404
                assert (await r.client.patch(base, json={"enabled": False}, headers=other)).status_code == 404
                assert (await r.client.delete(base, headers=other)).status_code == 404
                assert (await r.client.post(f"{base}/rotate-secret", headers=other)).status_code == 404
                replay = f"/v1/webhooks/messages/{message['id']}/replay"
                assert (await r.client.post(replay, headers=other)).status_code == 404
                assert (await r.get("/v1/webhooks/endpoints", "sakura-calls")).json() == {"data": []}
                assert (await r.get("/v1/webhooks/messages", "sakura-calls")).json()["data"] == []
                assert (await r.get("/v1/webhooks/attempts", "sakura-calls")).json()["data"] == []
                filtered = await r.get("/v1/webhooks/attempts", "sakura-calls", message_id=message["id"])
                assert filtered.json()["data"] == []
                # The owner still has everything, and the secret is never shown again after creation.
                shown = (await r.client.get(base, headers=owner_headers("acme-voice"))).json()
                assert shown["id"] == mine["id"] and "secret" not in shown
                assert len((await r.get("/v1/webhooks/attempts", "acme-voice")).json()["data"]) == 1

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("body", "headers", "status", "error"),
    [
        (b"{" + b'"a":' * 10 + b"1", {}, 400, "malformed"),
        (b"[1, 2]", {}, 400, "malformed"),
        (b"\xff\xfe", {}, 400, "malformed"),
        (b"[" * 5000 + b"]" * 5000, {}, 400, "malformed"),  # past orjson's nesting limit
        (b'{"url": "https://hooks.partner.example/", "x": 1}', {}, 422, "invalid"),
        (b'{"url": 5}', {}, 422, "invalid"),
        (b'{"url": "https://hooks.partner.example/", "enabled": "yes"}', {}, 422, "invalid"),
        (b'{"url": "https://hooks.partner.example/", "event_types": ["call.created"]}', {}, 422, "invalid"),
        (b'{"url": "https://hooks.partner.example/", "description": "' + b"d" * 600 + b'"}', {}, 422, "invalid"),
        (b'{"url": "https://hooks.partner.example/"}', {"content-type": "text/plain"}, 415, "content_type"),
        (b'{"url": "' + b"a" * 70_000 + b'"}', {}, 413, "too_large"),
        (b"{}", {"content-length": "99999999"}, 413, "too_large"),
    ],
)
def test_hostile_management_bodies_are_refused(
    tmp_path: Path, body: bytes, headers: dict[str, str], status: int, error: str
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            r.answers["hooks.partner.example"] = ["93.184.216.34"]
            sent = {"content-type": "application/json", **owner_headers("acme-voice"), **headers}
            answer = await r.client.post("/v1/webhooks/endpoints", content=body, headers=sent)
            assert (answer.status_code, answer.json()["error"]) == (status, error), answer.text
            assert "Traceback" not in answer.text
            assert r.state.store.count_all_endpoints() == 0

    asyncio.run(scenario())


def test_bad_queries_paths_and_events(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            assert (await r.get("/v1/webhooks/messages", "acme-voice", limit="0")).status_code == 422
            assert (await r.get("/v1/webhooks/messages", "acme-voice", state="lost")).status_code == 422
            assert (await r.get("/v1/webhooks/messages", "acme-voice", before="x' OR 1=1")).status_code == 422
            assert (await r.get("/v1/webhooks/attempts", "acme-voice", before="-1")).status_code == 422
            assert (await r.get("/v1/webhooks/endpoints/..%2f..%2fevents", "acme-voice")).status_code == 404
            huge = await r.client.post("/events", content=b"{" + b" " * 300_000 + b"}", headers=PRODUCER)
            assert huge.status_code == 413
            bad = event(billable_seconds=-1)
            answer = await r.publish(bad)
            assert answer.status_code == 422 and answer.json()["detail"].startswith("data.billable_seconds")
            internal = event("endpoint.disabled", data={"endpoint_id": "ep_1", "url": "x", "reason": "gone"})
            assert (await r.publish(internal)).status_code == 422  # only the service produces it
            assert (await r.publish({**event(), "partner": "../etc"})).status_code == 422
            assert r.state.store.counts() == {"pending": 0, "delivered": 0, "dead": 0}

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (["10.0.0.5"], "may not go to"),
        (["127.0.0.1"], "may not go to"),
        (["169.254.169.254"], "may not go to"),
        (["fd00:ec2::254"], "may not go to"),
        (["93.184.216.34", "192.168.0.10"], "may not go to"),
        ([], "does not resolve"),
    ],
)
def test_names_resolving_to_private_addresses_are_refused_at_registration(
    tmp_path: Path, answer: list[str], detail: str
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, loopback=False) as r:
            r.answers["hooks.partner.example"] = answer
            refused = await r.create("acme-voice", url="https://hooks.partner.example/in")
            assert refused.status_code == 422 and detail in refused.json()["detail"]
            r.answers["hooks.partner.example"] = ["93.184.216.34"]
            assert (await r.create("acme-voice", url="https://hooks.partner.example/in")).status_code == 201
            own = await r.create("acme-voice", url="https://api.voice-platform.example/in")
            assert own.status_code == 422

    asyncio.run(scenario())


def test_dns_that_turns_private_after_registration_is_refused_at_delivery(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, loopback=False, scale=10.0) as r:  # scale: the retry waits, the test does not
            r.answers["hooks.partner.example"] = ["93.184.216.34"]
            endpoint = (await r.create("acme-voice", url="https://hooks.partner.example/in")).json()
            r.answers["hooks.partner.example"] = ["169.254.169.254"]  # the metadata address
            await r.publish(event())
            attempts: list[dict[str, Any]] = []

            async def refused() -> bool:
                attempts[:] = (await r.get("/v1/webhooks/attempts", "acme-voice")).json()["data"]
                return bool(attempts)

            deadline = time.monotonic() + 10
            while not await refused():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            (attempt,) = attempts
            assert attempt["outcome"] == "refused" and attempt["status"] is None
            assert "169.254.169.254" in attempt["error"]
            (message,) = (await r.get("/v1/webhooks/messages", "acme-voice")).json()["data"]
            assert message["state"] == "pending" and message["endpoint_id"] == endpoint["id"]  # retried later

    asyncio.run(scenario())


def test_redirects_are_not_followed(tmp_path: Path) -> None:
    async def scenario() -> None:
        with Receiver() as target:
            redirect = Receiver(lambda path, headers, body, seen: (307, {"location": target.url("/stolen")}))
            with redirect:
                async with rig(tmp_path, scale=10.0) as r:
                    await r.create("acme-voice", url=redirect.url())
                    await r.publish(event())
                    await r.wait(lambda: len(redirect.received) == 1)
                    await r.wait(lambda: r.state.metrics.failed["redirect"] == 1)
                    (attempt,) = (await r.get("/v1/webhooks/attempts", "acme-voice")).json()["data"]
                    assert (attempt["outcome"], attempt["status"]) == ("redirect", 307)
            assert target.received == []

    asyncio.run(scenario())


def test_integrations_receive_only_installed_partners_and_subscribed_types(tmp_path: Path) -> None:
    async def scenario() -> None:
        with Receiver() as receiver:
            async with rig(tmp_path) as r:
                crm = (await r.create("crm-sync", url=receiver.url("/crm"))).json()
                await r.publish(event())  # acme-voice has not installed crm-sync
                installed = event("integration.installed", integration="crm-sync", event_types=["call.completed"])
                assert (await r.publish(installed)).json()["messages"] == 1  # the integration hears of it
                call = event()
                assert (await r.publish(call)).json()["messages"] == 1
                payout = event(
                    "payout.paid", period="2026-11", currency="EUR", amount_minor=100, transfer="tr_1"
                )  # not subscribed in its spec
                assert (await r.publish(payout)).json()["messages"] == 0
                assert (await r.publish(event(partner="sakura-calls"))).json()["messages"] == 0  # not installed
                removed = event("integration.removed", integration="crm-sync")
                assert (await r.publish(removed)).json()["messages"] == 1
                assert (await r.publish(event())).json()["messages"] == 0
                await r.wait(lambda: len(receiver.received) == 3)
                kinds = [Webhook(crm["secret"]).verify(x.body, x.headers)["type"] for x in receiver.received]
                assert sorted(kinds) == ["call.completed", "integration.installed", "integration.removed"]

    asyncio.run(scenario())


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    async def scenario() -> None:
        def busy(path: str, headers: dict[str, str], body: bytes, seen: int) -> tuple[int, dict[str, str]]:
            return (429, {"retry-after": "1"}) if seen == 0 else (200, {})

        with Receiver(busy) as receiver:
            async with rig(tmp_path, scale=0.001) as r:  # the schedule's 5 s step would be 5 ms
                await r.create("acme-voice", url=receiver.url())
                await r.publish(event())
                await r.wait(lambda: len(receiver.received) == 2)
                first, second = receiver.received
                assert second.at - first.at >= 1.0
                assert first.headers["webhook-id"] == second.headers["webhook-id"]

    asyncio.run(scenario())


def test_a_slow_endpoint_does_not_delay_another(tmp_path: Path) -> None:
    async def scenario() -> None:
        def slow(path: str, headers: dict[str, str], body: bytes, seen: int) -> tuple[int, dict[str, str]]:
            time.sleep(2.0)
            return 200, {}

        with Receiver(slow) as tortoise, Receiver() as hare:
            async with rig(tmp_path, per_endpoint=2) as r:
                await r.create("acme-voice", url=tortoise.url())
                await r.create("acme-voice", url=hare.url())
                for _ in range(20):
                    await r.publish(event())
                await r.wait(lambda: len(hare.received) == 20, timeout=15)
                # Had the hare waited behind the tortoise, it would take 20 x 2 s; it finished while the tortoise
                # had answered at most a couple of requests, and the tortoise holds only its own two slots.
                assert len(tortoise.received) <= 2
                assert r.state.dispatcher.in_flight <= 2

    asyncio.run(scenario())
