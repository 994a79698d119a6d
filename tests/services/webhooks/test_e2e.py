"""The webhooks service end to end: the real `platformctl webhooks serve` process, a loopback receiver that verifies
signatures with the spec authors' `standardwebhooks` package, time compressed by WEBHOOKS_TIME_SCALE."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.webhooks.dispatcher import JITTER, SCHEDULE
from tests.services.image_env import ImageEnv
from tests.services.meter_harness import LOOPBACK_TLS
from tests.services.webhooks_harness import (
    PLATFORMCTL,
    ROOT,
    Received,
    Receiver,
    Script,
    Service,
    event,
    service_env,
)


def verify(secret: str, request: Received) -> dict[str, object]:
    payload: dict[str, object] = Webhook(secret).verify(request.body, request.headers)
    return payload


def fail_first(n: int, status: int = 500) -> Script:
    def script(path: str, headers: dict[str, str], body: bytes, seen: int) -> tuple[int, dict[str, str]]:
        return (status, {}) if seen < n else (200, {})

    return script


def test_retries_follow_the_schedule_and_every_message_survives_kill_9(tmp_path: Path, image: ImageEnv) -> None:
    scale = 0.002
    with Receiver(fail_first(2)) as receiver:
        service = Service(tmp_path, image, WEBHOOKS_TIME_SCALE=str(scale)).start()
        try:
            created = service.post("/v1/webhooks/endpoints", "acme-voice", {"url": receiver.url(), "event_types": []})
            assert created.status_code == 201, created.text
            secret = created.json()["secret"]
            assert secret.startswith("whsec_")
            events = [event() for _ in range(20)]
            for doc in events:
                answer = service.publish(doc)
                assert answer.status_code == 202 and answer.json() == {"id": doc["id"], "result": "new", "messages": 1}
            # The same id again is the same event: answered, nothing new sent.
            assert service.publish(events[0]).json()["result"] == "duplicate"
            changed = {**events[0], "data": {**events[0]["data"], "billable_seconds": 1}}
            assert service.publish(changed).status_code == 409

            ids = set()
            received = receiver.wait(lambda got: sum(r.status == 200 for r in got) >= 20)
            for request in received:
                payload = verify(secret, request)  # raises unless the signature and timestamp verify
                ids.add(request.headers["webhook-id"])
                assert payload["partner"] == "acme-voice"
            assert len(ids) == 20
            delivered_ids = {str(verify(secret, r)["id"]) for r in received}
            assert delivered_ids == {str(doc["id"]) for doc in events}
            for webhook_id in ids:
                tries = receiver.for_id(webhook_id)
                assert [r.status for r in tries] == [500, 500, 200]
                assert len({r.body for r in tries}) == 1  # the same message each time
                for gap, step in zip(
                    (tries[1].at - tries[0].at, tries[2].at - tries[1].at), (SCHEDULE[1], SCHEDULE[2]), strict=True
                ):
                    assert step * scale * (1 - JITTER) - 0.01 <= gap <= step * scale * (1 + JITTER) + 0.5, (gap, step)
            metrics = _settled(service)
            assert metrics["webhooks_delivered_total"] == 20
            assert metrics['webhooks_failed_attempts_total{outcome="failed"}'] == 40
            assert metrics['webhooks_messages{state="pending"}'] == 0

            # kill -9 with messages acknowledged and waiting for their retries: none is lost.
            receiver.script = fail_first(1, 503)
            more = [event() for _ in range(100)]
            for doc in more:
                assert service.publish(doc).status_code == 202
            service.stop(signal.SIGKILL)
        finally:
            service.stop(signal.SIGKILL)
        service = Service(tmp_path, image, WEBHOOKS_TIME_SCALE=str(scale)).start()
        try:
            want = {str(doc["id"]) for doc in more}
            received = receiver.wait(
                lambda got: want <= {str(verify(secret, r)["id"]) for r in got if r.status == 200}, timeout=60
            )
            assert _settled(service)['webhooks_messages{state="pending"}'] == 0
            messages = service.get("/v1/webhooks/messages", "acme-voice", limit="250").json()["data"]
            assert {m["state"] for m in messages} == {"delivered"} and len(messages) == 120
        finally:
            service.stop()


def test_rotation_gone_dead_letter_and_replay(tmp_path: Path, image: ImageEnv) -> None:
    gone = Receiver(lambda path, headers, body, seen: (410, {}))
    down = Receiver(lambda path, headers, body, seen: (500, {}))
    with Receiver() as ok, gone, down:
        service = Service(tmp_path, image, WEBHOOKS_TIME_SCALE="0.00001").start()
        try:
            first = service.post("/v1/webhooks/endpoints", "acme-voice", {"url": ok.url("/ok")}).json()
            old_secret = first["secret"]
            rotated = service.post(f"/v1/webhooks/endpoints/{first['id']}/rotate-secret", "acme-voice", {})
            assert rotated.status_code == 200
            new_secret = rotated.json()["secret"]
            assert new_secret != old_secret
            assert service.publish(event()).status_code == 202
            (request,) = ok.wait(lambda got: len(got) == 1)
            assert len(request.headers["webhook-signature"].split(" ")) == 2
            verify(old_secret, request)  # both secrets sign during the grace period
            verify(new_secret, request)

            # No grace: only the newest secret signs.
            newest = service.post(
                f"/v1/webhooks/endpoints/{first['id']}/rotate-secret", "acme-voice", {"grace_seconds": 0}
            ).json()["secret"]
            assert service.publish(event()).status_code == 202
            request = ok.wait(lambda got: len(got) == 2)[1]
            verify(newest, request)
            with pytest.raises(WebhookVerificationError):
                verify(new_secret, request)
            too_long = service.post(
                f"/v1/webhooks/endpoints/{first['id']}/rotate-secret", "acme-voice", {"grace_seconds": 8 * 86400}
            )
            assert too_long.status_code == 422

            # 410 Gone disables the endpoint; the owner hears of it on its other endpoint.
            doomed = service.post("/v1/webhooks/endpoints", "acme-voice", {"url": gone.url()}).json()
            assert service.publish(event()).status_code == 202
            gone.wait(lambda got: len(got) == 1)
            notice = ok.wait(lambda got: any(b'"endpoint.disabled"' in r.body for r in got))[-1]
            assert verify(newest, notice)["data"] == {"endpoint_id": doomed["id"], "url": gone.url(), "reason": "gone"}
            shown = service.get(f"/v1/webhooks/endpoints/{doomed['id']}", "acme-voice").json()
            assert shown["enabled"] is False and shown["disabled_reason"] == "gone"
            assert service.publish(event()).status_code == 202
            ok.wait(lambda got: sum(b'"call.completed"' in r.body for r in got) == 4)
            assert len(gone.received) == 1  # nothing more to a disabled endpoint

            # Eight failed attempts: dead-lettered, listed, replayed with the same webhook-id.
            service.post(f"/v1/webhooks/endpoints/{doomed['id']}", "acme-voice")  # POST on an id: 405, harmless
            flaky = service.post(
                "/v1/webhooks/endpoints", "sakura-calls", {"url": down.url(), "event_types": ["payout.paid"]}
            ).json()
            payout = event(
                "payout.paid", "sakura-calls", period="2026-11", currency="JPY", amount_minor=1200, transfer="tr_1"
            )
            assert service.publish(payout).status_code == 202
            assert service.publish(event(partner="sakura-calls")).json()["messages"] == 0  # not subscribed
            down.wait(lambda got: len(got) == len(SCHEDULE))
            dead = _wait_state(service, "sakura-calls", "dead")
            assert dead["attempts"] == len(SCHEDULE) and dead["last_status"] == 500
            attempts = service.get("/v1/webhooks/attempts", "sakura-calls", message_id=str(dead["id"])).json()["data"]
            assert len(attempts) == len(SCHEDULE) and {a["status"] for a in attempts} == {500}
            down.script = lambda path, headers, body, seen: (200, {})
            replay = service.post(f"/v1/webhooks/messages/{dead['id']}/replay", "sakura-calls")
            assert replay.status_code == 202
            resent = down.wait(lambda got: got[-1].status == 200)[-1]
            assert resent.headers["webhook-id"] == dead["id"]
            assert verify(flaky["secret"], resent)["type"] == "payout.paid"
            assert _wait_state(service, "sakura-calls", "delivered")["id"] == dead["id"]
            # Another owner can neither see nor replay it.
            assert service.post(f"/v1/webhooks/messages/{dead['id']}/replay", "acme-voice").status_code == 404
            metrics = service.metrics()
            assert metrics["webhooks_dead_lettered_total"] >= 1
            assert metrics['webhooks_endpoints_disabled_total{reason="gone"}'] == 1
        finally:
            service.stop()


def _settled(service: Service, timeout: float = 10.0) -> dict[str, float]:
    """The service's metrics once no message is pending (or `timeout` passed): the receiver records a delivery
    before its 200 reaches the service, which only then marks the message delivered."""
    import time

    deadline = time.monotonic() + timeout
    metrics = service.metrics()
    while metrics['webhooks_messages{state="pending"}'] != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        metrics = service.metrics()
    return metrics


def _wait_state(service: Service, owner: str, state: str) -> dict[str, object]:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = service.get("/v1/webhooks/messages", owner, state=state).json()["data"]
        if rows:
            return dict(rows[0])
        time.sleep(0.05)
    raise AssertionError(f"no {state} message for {owner}")


@pytest.mark.parametrize("setting", [("WEBHOOKS_ALLOW_LOOPBACK", "1"), ("WEBHOOKS_TIME_SCALE", "0.01")])
def test_test_settings_are_refused_in_a_cluster(tmp_path: Path, setting: tuple[str, str]) -> None:
    cluster = {"KUBERNETES_SERVICE_HOST": "10.100.0.1", "WEBHOOKS_ALLOW_LOOPBACK": "0"}
    env = service_env(**{**cluster, setting[0]: setting[1]})
    result = subprocess.run(
        [PLATFORMCTL, "--root", str(ROOT), "webhooks", "serve", "--store", f"local:{tmp_path}", "--port", "1"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert setting[0].encode() in result.stdout + result.stderr
    assert not (tmp_path / "webhooks.db").exists()


def test_help_names_the_command(image: ImageEnv, tmp_path: Path) -> None:
    for command, env in (
        ([PLATFORMCTL, "webhooks", "serve", "--help"], service_env()),
        ([str(image.script), "webhooks", "serve", "--help"], image.environ()),
    ):
        result = subprocess.run(command, env=env, capture_output=True, timeout=60, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert b"--store" in result.stdout and b"WEBHOOKS_EVENT_TOKEN" in result.stdout


def test_producers_and_owners_are_authenticated(tmp_path: Path) -> None:
    service = Service(tmp_path).start()
    try:
        doc = event()
        assert httpx.post(f"{service.base}/events", json=doc, timeout=5, verify=LOOPBACK_TLS).status_code == 401
        wrong = {"authorization": "Bearer test-kong-token-" + "k" * 16}
        assert (
            httpx.post(f"{service.base}/events", json=doc, headers=wrong, timeout=5, verify=LOOPBACK_TLS).status_code
            == 401
        )
        no_token = {"x-consumer-custom-id": "acme-voice"}
        assert (
            httpx.get(
                f"{service.base}/v1/webhooks/endpoints", headers=no_token, timeout=5, verify=LOOPBACK_TLS
            ).status_code
            == 401
        )
        assert service.get("/v1/webhooks/endpoints", "").status_code == 401
        assert service.get("/v1/webhooks/endpoints", "acme-voice").json() == {"data": []}
    finally:
        service.stop()


def test_producers_post_through_the_library(tmp_path: Path) -> None:
    from foundation.errors import InputError, PlatformError
    from services.webhooks.producer import publish
    from tests.services.webhooks_harness import EVENT_TOKEN

    service = Service(tmp_path).start()
    try:
        env = {"WEBHOOKS_URL": service.base, "WEBHOOKS_EVENT_TOKEN": EVENT_TOKEN}
        doc = event()
        assert publish(doc, env) == "new"
        assert publish(doc, env) == "duplicate"
        with pytest.raises(InputError, match="billable_seconds"):
            publish(event(billable_seconds="61"), env)  # caught before it is sent
        with pytest.raises(InputError, match="401"):
            publish(event(), {**env, "WEBHOOKS_EVENT_TOKEN": "wrong"})
    finally:
        service.stop()
    waits: list[float] = []
    with pytest.raises(PlatformError, match="did not take"):
        publish(event(), env, sleep=waits.append)  # the service is gone: retried, then a runtime failure
    assert waits == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("store", ["local:/etc/passwd", "local:/proc/self"])
def test_a_store_that_cannot_be_a_folder_is_bad_input(store: str) -> None:
    """A file where the store's folder should be, or a folder nothing can be created in: exit 2 naming --store."""
    result = subprocess.run(
        [PLATFORMCTL, "--root", str(ROOT), "webhooks", "serve", "--store", store, "--port", "1"],
        env=service_env(),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert b"--store" in result.stderr and b"Traceback" not in result.stderr
