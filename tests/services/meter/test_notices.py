"""The meter produces call.completed (once per call) and usage.threshold (once per threshold) to the webhooks
service, from the outbox in its spool: across duplicate callbacks, restarts, a `kill -9` and a webhooks outage."""

from __future__ import annotations

import datetime as dt
import signal
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.meter.flusher import Flusher, WarehouseStats
from services.meter.notices import OutboxPublisher
from services.meter.roster import Partner
from services.meter.spool import Spool
from services.warehouse import connect, ensure_schema
from tests.services.events_receiver import EventsReceiver, events_receiver, producer_env
from tests.services.meter_harness import LOOPBACK_TLS, Meter, call_sid, callback, post_callback


@pytest.fixture
def receiver() -> Iterator[EventsReceiver]:
    with events_receiver() as running:
        yield running


def _calls(receiver: EventsReceiver) -> set[str]:
    return {e["data"]["call_id"] for e in receiver.of_type("call.completed")}


def test_call_completed_once_per_call_across_duplicates_restarts_kill_9_and_an_outage(
    meters: Callable[..., Meter], receiver: EventsReceiver
) -> None:
    env = producer_env(receiver)
    first, second, third = call_sid(), call_sid(), call_sid()
    meter = meters(env=env)
    with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as client:
        form = callback(first, duration=61)
        assert post_callback(client, meter, "acme-voice", form).status_code == 200
        assert post_callback(client, meter, "acme-voice", form).status_code == 200  # Twilio's retry
        receiver.wait(lambda r: first in _calls(r))
        event = receiver.events[f"call.completed:{first}"]
        assert event["partner"] == "acme-voice"
        assert event["data"] | {"completed_at": None} == {
            "call_id": first,
            "number": form["To"],
            "duration_seconds": 61,
            "billable_seconds": 61,
            "completed_at": None,
        }
        assert meter.stop() in (0, -signal.SIGTERM)

        meter = meters(env=env)  # restarted: the retry of the first call after it is still a duplicate
        assert post_callback(client, meter, "acme-voice", form).status_code == 200
        assert post_callback(client, meter, "acme-voice", callback(second, duration=5)).status_code == 200
        receiver.wait(lambda r: second in _calls(r))

        receiver.down()  # the webhooks service is down: the meter's answers do not change
        began = time.monotonic()
        assert post_callback(client, meter, "acme-voice", callback(third, duration=30)).status_code == 200
        assert time.monotonic() - began < 2.0
        meter.wait_flushed()
        receiver.wait(lambda r: r.unavailable > 0)
        deadline = time.monotonic() + 10
        while meter.metrics()["meter_webhooks_outbox_unsent"] != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        metrics = meter.metrics()
        assert metrics["meter_webhooks_outbox_unsent"] == 1
        assert metrics['meter_webhooks_events_total{outcome="failed"}'] >= 1
        assert metrics['meter_webhooks_events_total{outcome="sent"}'] == 1  # the second call (before the outage)
        meter.stop(signal.SIGKILL)  # killed while the event waits in the outbox

        receiver.up()
        meter = meters(env=env)
        receiver.wait(lambda r: third in _calls(r))
    time.sleep(1.5)  # long enough for a second post of anything to have come
    assert _calls(receiver) == {first, second, third}
    assert [receiver.posts_of(f"call.completed:{sid}") for sid in (first, second, third)] == [1, 1, 1]
    assert receiver.refused == []


def test_without_webhooks_settings_production_is_off_and_says_so(meters: Callable[..., Meter]) -> None:
    meter = meters(env={"WEBHOOKS_URL": "", "WEBHOOKS_EVENT_TOKEN": ""})
    with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as client:
        assert post_callback(client, meter, "acme-voice", callback()).status_code == 200
    meter.wait_flushed()
    assert meter.stop() in (0, -signal.SIGTERM)
    assert meter.log.read_text().count("webhooks production is off") == 1


# ------------------------------------------------------------------ thresholds, in process


def _call_row(partner: str, minutes: int, when: dt.datetime) -> dict[str, Any]:
    sid = call_sid()
    return {
        "EVENT_ID": sid,
        "PARTNER_ID": partner,
        "COUNTRY": "DE",
        "CALL_STARTED_AT": when.isoformat(),
        "PERIOD": f"{when.year:04d}-{when.month:02d}",
        "BILLABLE_SECONDS": minutes * 60,
        "MINUTES": minutes,
        "TIER": "starter",
        "CURRENCY": "EUR",
        "RATE": "0.02",
        "AMOUNT": str(minutes * 0.02),
        "RECEIVED_AT": when.isoformat(),
        "CALLED_NUMBER": "+4930123456",
    }


def test_thresholds_at_80_and_100_percent_once_each(tmp_path: Path, receiver: EventsReceiver) -> None:
    from services.meter.events import Event

    spool = Spool(tmp_path / "spool.db")
    reader = spool.reader()
    conn = connect(f"local:{tmp_path / 'wh'}")
    ensure_schema(conn)
    flusher = Flusher(reader, lambda: conn, WarehouseStats(), None, False, notices=True)
    flusher._partners = {
        "alpha-voice": Partner("alpha-voice", "starter", "EUR", Decimal("0.02"), 0, 100),
        "no-quota": Partner("no-quota", "starter", "EUR", Decimal("0.02"), 0, None),
    }
    publisher = OutboxPublisher(tmp_path / "spool.db", producer_env(receiver))
    when = dt.datetime.now(dt.UTC).replace(day=2, hour=12)
    period = f"{when.year:04d}-{when.month:02d}"

    def meter(partner: str, *minutes: int) -> None:
        import asyncio

        rows = [_call_row(partner, m, when) for m in minutes]
        asyncio.run(spool.append([Event(r["EVENT_ID"], "call", r["EVENT_ID"], r) for r in rows]))
        assert flusher.flush_once() == len(rows)
        publisher.publish_due()

    def thresholds() -> list[tuple[str, int, int]]:
        found = receiver.of_type("usage.threshold")
        return [(e["partner"], e["data"]["threshold_percent"], e["data"]["used_minutes"]) for e in found]

    try:
        meter("alpha-voice", 50, 29)  # 79 %
        assert thresholds() == []
        meter("alpha-voice", 1)  # 80 %
        assert thresholds() == [("alpha-voice", 80, 80)]
        meter("alpha-voice", 5, 5)  # 90 %: nothing new
        meter("no-quota", 1_000)
        assert thresholds() == [("alpha-voice", 80, 80)]
        receiver.down()  # the 100 % event waits for the service
        meter("alpha-voice", 15)
        assert thresholds() == [("alpha-voice", 80, 80)] and publisher.pending() == 2  # the call and the threshold
        receiver.up()
        publisher._resume_at = 0.0  # the backoff has passed
        publisher.publish_due()
        assert thresholds() == [("alpha-voice", 80, 80), ("alpha-voice", 100, 105)]
        meter("alpha-voice", 30)  # 135 %: both stay sent once
        assert len(thresholds()) == 2
        assert receiver.posts_of(f"usage.threshold:alpha-voice:{period}:80") == 1
        assert receiver.posts_of(f"usage.threshold:alpha-voice:{period}:100") == 1
        assert len(receiver.of_type("call.completed")) == 8  # no-quota's call too
    finally:
        publisher.close()
        reader.close()
        spool.close()
        conn.close()


def test_a_call_reaches_the_partners_endpoint_through_the_real_webhooks_service(
    tmp_path: Path, meters: Callable[..., Meter]
) -> None:
    """The whole path on loopback: Twilio's callback -> meter -> spool outbox -> webhooks service (a process of this
    checkout) -> a signed delivery to the endpoint the partner registered."""
    import json

    from standardwebhooks import Webhook

    from tests.services.webhooks_harness import EVENT_TOKEN, Receiver, Service

    with Receiver() as endpoint:
        service = Service(tmp_path).start()
        try:
            created = service.post("/v1/webhooks/endpoints", "acme-voice", {"url": endpoint.url(), "event_types": []})
            assert created.status_code == 201, created.text
            meter = meters(env={"WEBHOOKS_URL": service.base, "WEBHOOKS_EVENT_TOKEN": EVENT_TOKEN})
            sid = call_sid()
            form = callback(sid, duration=61)  # one form, sent twice as Twilio retries (its Timestamp unchanged)
            with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as client:
                assert post_callback(client, meter, "acme-voice", form).status_code == 200
                assert post_callback(client, meter, "acme-voice", form).status_code == 200
            (delivery,) = endpoint.wait(lambda got: len(got) >= 1)
            payload = Webhook(created.json()["secret"]).verify(delivery.body, delivery.headers)
            assert payload["type"] == "call.completed" and payload["data"]["call_id"] == sid
            assert payload["id"] == f"call.completed:{sid}" and payload["partner"] == "acme-voice"
            time.sleep(1.5)
            assert len(endpoint.received) == 1, [json.loads(r.body)["id"] for r in endpoint.received]
            assert meter.stop() in (0, -signal.SIGTERM)
        finally:
            service.stop()


def test_a_refused_event_is_set_aside_and_a_full_outbox_stops_only_call_events(
    tmp_path: Path, receiver: EventsReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from services.meter import flusher as flusher_module
    from services.meter.events import Event

    spool = Spool(tmp_path / "spool.db")
    reader = spool.reader()
    conn = connect(f"local:{tmp_path / 'wh'}")
    ensure_schema(conn)
    stats = WarehouseStats()
    flusher = Flusher(reader, lambda: conn, stats, None, False, notices=True)
    flusher._partners = {"alpha-voice": Partner("alpha-voice", "starter", "EUR", Decimal("0.02"), 0, 10)}
    publisher = OutboxPublisher(tmp_path / "spool.db", producer_env(receiver), stats=stats)
    when = dt.datetime.now(dt.UTC).replace(day=2, hour=12)

    def meter(*minutes: int) -> None:
        rows = [_call_row("alpha-voice", m, when) for m in minutes]
        asyncio.run(spool.append([Event(r["EVENT_ID"], "call", r["EVENT_ID"], r) for r in rows]))
        assert flusher.flush_once() == len(rows)

    try:
        # An event the service refuses (here: one no schema allows, as a producer bug would make) is not retried
        # forever and does not hold up the ones behind it.
        row = _call_row("alpha-voice", 1, when) | {"BILLABLE_SECONDS": 90_000}
        asyncio.run(spool.append([Event(row["EVENT_ID"], "call", row["EVENT_ID"], row)]))
        assert flusher.flush_once() == 1
        meter(1)
        assert publisher.publish_due() == 1 and publisher.refused == 1 and publisher.pending() == 0
        assert len(receiver.of_type("call.completed")) == 1

        monkeypatch.setattr(flusher_module, "OUTBOX_MAX_PENDING", 2)
        receiver.down()
        meter(1, 1)  # two waiting: the outbox is full
        assert publisher.publish_due() is None and publisher.pending() == 2
        meter(7)  # its call.completed is not produced; the 80 % and 100 % thresholds still are
        assert stats.render().count('meter_webhooks_events_total{outcome="not_produced"} 1') == 1
        assert publisher.pending() == 4
        receiver.up()
        publisher._resume_at = 0.0
        assert publisher.publish_due() == 4
        assert [e["data"]["threshold_percent"] for e in receiver.of_type("usage.threshold")] == [80, 100]
        assert len(receiver.of_type("call.completed")) == 3
        assert 'meter_webhooks_events_total{outcome="refused"} 1' in stats.render()
    finally:
        publisher.close()
        reader.close()
        spool.close()
        conn.close()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"WEBHOOKS_URL": "webhooks:8788", "WEBHOOKS_EVENT_TOKEN": "t" * 20}, "WEBHOOKS_URL"),
        ({"WEBHOOKS_URL": "http://[::1", "WEBHOOKS_EVENT_TOKEN": "t" * 20}, "WEBHOOKS_URL"),
        ({"WEBHOOKS_URL": "http://127.0.0.1:8788", "WEBHOOKS_EVENT_TOKEN": ""}, "WEBHOOKS_EVENT_TOKEN"),
    ],
)
def test_bad_webhooks_settings_are_refused_at_start(tmp_path: Path, env: dict[str, str], named: str) -> None:
    meter = Meter(tmp_path).start(env=env, wait=False)
    assert meter.proc is not None and meter.proc.wait(timeout=30) == 2
    log = meter.log.read_text()
    assert named in log and "Traceback" not in log and "t" * 20 not in log
    assert not (tmp_path / "spool.db").exists()  # refused before anything was opened
