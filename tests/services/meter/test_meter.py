"""The meter over real HTTP on loopback: signed callbacks, Kong logs, every bad input, durability, drain."""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.services.meter_harness import (
    KONG_TOKEN,
    LOOPBACK_TLS,
    MASTER_SID,
    MASTER_TOKEN,
    TWILIO_TOKEN,
    Meter,
    call_sid,
    callback,
    kong_entry,
    post_callback,
    post_kong,
    seize_warehouse,
    sign,
    subaccount,
    warehouse_rows,
)

USAGE = (
    "SELECT EVENT_ID, PARTNER_ID, BILLABLE_SECONDS, MINUTES, CURRENCY, RATE, AMOUNT "
    "FROM PLATFORM_LOCAL.RAW.USAGE_EVENTS"
)


@pytest.fixture(scope="module")
def meter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Meter]:
    workdir = tmp_path_factory.mktemp("meter")
    temporary = workdir / "tmp"
    temporary.mkdir()
    running = Meter(workdir).start(env={"TMPDIR": str(temporary)})
    yield running
    assert running.stop() in (0, -signal.SIGTERM)
    # The meter and its flusher opened the embedded warehouse; fakesnow's stage folders went with them.
    assert list(temporary.iterdir()) == []


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as c:
        yield c


def _counter(meter: Meter, name: str) -> float:
    return meter.metrics().get(name, 0.0)


def test_completed_call_is_metered_once(meter: Meter, client: httpx.Client) -> None:
    form = callback(duration=61)
    before = _counter(meter, 'meter_accepted_total{source="twilio"}')
    assert post_callback(client, meter, "acme-voice", form).status_code == 200
    assert post_callback(client, meter, "acme-voice", form).status_code == 200  # Twilio retry
    assert _counter(meter, 'meter_accepted_total{source="twilio"}') == before + 1
    assert _counter(meter, 'meter_duplicates_total{source="twilio"}') >= 1


def test_non_final_statuses_bill_nothing(meter: Meter, client: httpx.Client) -> None:
    before = _counter(meter, 'meter_accepted_total{source="twilio"}')
    response = post_callback(client, meter, "acme-voice", callback(CallStatus="ringing"))
    assert response.status_code == 200 and response.text == "ignored\n"
    assert _counter(meter, 'meter_accepted_total{source="twilio"}') == before
    assert _counter(meter, 'meter_ignored_total{status="ringing"}') >= 1


def _bad_cases(meter: Meter) -> list[tuple[str, int, str, dict[str, object]]]:
    """(name, status, reason, request kwargs) for every bad input the issue names, and a few more."""
    path = "/twilio/acme-voice/status"
    url = meter.base + path
    good = callback()
    tampered = dict(good)
    signature = sign(url, good)
    tampered["CallDuration"] = "6000"
    future = callback(when=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))
    negative = callback(duration="-5")
    text = callback(duration="sixty")
    huge_duration = callback(duration="999999")
    nanp = callback(To="+12125550100")
    unknown = callback()
    form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    as_master = {**good, "AccountSid": MASTER_SID}
    sakura_sid, sakura_token = subaccount("sakura-calls")
    as_sakura = {**good, "AccountSid": sakura_sid}

    def signed(form: dict[str, str], partner: str = "acme-voice") -> dict[str, object]:
        p = f"/twilio/{partner}/status"
        return {"url": meter.base + p, "data": form, "headers": {"X-Twilio-Signature": sign(meter.base + p, form)}}

    return [
        ("malformed form", 400, "malformed", {"url": url, "content": b"a=1&&&=%%", "headers": form_headers}),
        ("not utf-8", 400, "malformed", {"url": url, "content": b"CallSid=\xff\xfe", "headers": form_headers}),
        ("repeated field", 400, "malformed", {"url": url, "content": b"a=1&a=2", "headers": form_headers}),
        ("json body", 400, "content_type", {"url": url, "json": good}),
        ("huge body", 413, "too_large", {"url": url, "content": b"a=" + b"x" * 100_000, "headers": form_headers}),
        ("no signature", 403, "bad_signature", {"url": url, "data": good}),
        (
            "wrong token",
            403,
            "bad_signature",
            {"url": url, "data": good, "headers": {"X-Twilio-Signature": sign(url, good, "other")}},
        ),
        (
            "replay with changed fields",
            403,
            "bad_signature",
            {"url": url, "data": tampered, "headers": {"X-Twilio-Signature": signature}},
        ),
        ("unknown partner", 404, "unknown_partner", signed(unknown, "nobody-here")),
        ("path trick", 404, "not_found", {"url": meter.base + "/twilio/..%2F..%2Fetc/status", "data": good}),
        ("negative duration", 400, "bad_duration", signed(negative)),
        ("duration not a number", 400, "bad_duration", signed(text)),
        ("duration beyond any call", 400, "bad_duration", signed(huge_duration)),
        ("timestamp in the future", 400, "future_timestamp", signed(future)),
        (
            "a call from another era (or an already paid month)",
            400,
            "stale_timestamp",
            signed(callback(Timestamp="Fri, 01 Jan 1999 10:00:00 +0000")),
        ),
        ("no timestamp", 400, "bad_timestamp", signed({k: v for k, v in good.items() if k != "Timestamp"})),
        (
            "timestamp past the calendar's end once in UTC",
            400,
            "bad_timestamp",
            signed(callback(Timestamp="Fri, 31 Dec 9999 23:59:00 -1400")),
        ),
        ("bad call sid", 400, "malformed", signed(callback(sid="CA../../x"))),
        ("call sid with a trailing newline", 400, "malformed", signed(callback(sid="CA" + "0" * 32 + "\n"))),
        ("NANP number without ToCountry", 400, "unknown_country", signed(nanp)),
        # Twilio signs a subaccount's callbacks with the subaccount's token; nothing else passes.
        (
            "signed with the master token",
            403,
            "bad_signature",
            {"url": url, "data": good, "headers": {"X-Twilio-Signature": sign(url, good, MASTER_TOKEN)}},
        ),
        (
            "as the master account, with its token",
            403,
            "bad_signature",
            {
                "url": url,
                "data": as_master,
                "headers": {"X-Twilio-Signature": sign(url, as_master, MASTER_TOKEN)},
            },
        ),
        (
            "another partner's subaccount and token",
            403,
            "bad_signature",
            {"url": url, "data": as_sakura, "headers": {"X-Twilio-Signature": sign(url, as_sakura, sakura_token)}},
        ),
        (
            "this partner's subaccount named, another partner's token",
            403,
            "bad_signature",
            {"url": url, "data": good, "headers": {"X-Twilio-Signature": sign(url, good, sakura_token)}},
        ),
        ("no AccountSid", 403, "bad_signature", signed({k: v for k, v in good.items() if k != "AccountSid"})),
    ]


def test_every_bad_input_is_refused_counted_and_not_written(meter: Meter, client: httpx.Client) -> None:
    before = meter.metrics()
    for name, status, reason, request in _bad_cases(meter):
        url = request.pop("url")
        response = client.post(str(url), **request)  # type: ignore[arg-type]
        assert response.status_code == status, (name, response.text)
        assert "Traceback" not in response.text
        if reason != "not_found":
            assert response.json()["error"] == reason, name
    after = meter.metrics()
    assert after.get('meter_accepted_total{source="twilio"}', 0) == before.get(
        'meter_accepted_total{source="twilio"}', 0
    )
    for _, _, reason, _ in _bad_cases(meter):
        if reason != "not_found":
            key = f'meter_rejected_total{{source="twilio",reason="{reason}"}}'
            assert after.get(key, 0) > before.get(key, 0), reason


def test_a_replayed_sid_with_other_fields_and_a_valid_signature_is_malformed(tmp_path: Path) -> None:
    meter = Meter(tmp_path).start()
    sid = call_sid()
    first = callback(sid=sid, duration=30)
    with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as c:
        assert post_callback(c, meter, "acme-voice", first).status_code == 200
        response = post_callback(c, meter, "acme-voice", callback(sid=sid, duration=3000))
        # The answers are 200/400/403/404/413/503: a changed replay is malformed, under its own reason.
        assert response.status_code == 400 and response.json()["error"] == "conflicting_replay"
        assert post_callback(c, meter, "acme-voice", first).status_code == 200  # the recorded version still is
    metrics = meter.metrics()
    assert metrics['meter_rejected_total{source="twilio",reason="conflicting_replay"}'] == 1
    assert metrics['meter_accepted_total{source="twilio"}'] == 1
    assert metrics['meter_duplicates_total{source="twilio"}'] == 1
    meter.wait_flushed()
    assert meter.stop() in (0, -signal.SIGTERM)
    rows = warehouse_rows(tmp_path / "warehouse", USAGE)
    assert [(r[0], r[2]) for r in rows] == [(sid, 30)]


def test_kong_batches(meter: Meter, client: httpx.Client) -> None:
    batch = [kong_entry(status=200 + i % 3 * 100) for i in range(100)]
    response = post_kong(client, meter, batch)
    assert response.status_code == 200 and response.json() == {"accepted": 100, "duplicates": 0, "rejected": {}}
    again = post_kong(client, meter, [*batch[:10], kong_entry(partner="nobody-here"), {"consumer": None}])
    assert again.json() == {"accepted": 0, "duplicates": 10, "rejected": {"unknown_partner": 1, "no_consumer": 1}}
    # Without a request id the entry's identifying fields make the key: a resend is still one request.
    bare = kong_entry()
    bare["request"].pop("id")
    assert post_kong(client, meter, bare).json()["accepted"] == 1
    assert post_kong(client, meter, bare).json()["duplicates"] == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (b"[]", {"Authorization": f"Bearer {KONG_TOKEN}", "Content-Type": "application/json"}, 400, "malformed"),
        (b"{not json", {"Authorization": f"Bearer {KONG_TOKEN}", "Content-Type": "application/json"}, 400, "malformed"),
        (b"[1]" * 1, {"Authorization": f"Bearer {KONG_TOKEN}", "Content-Type": "application/json"}, 400, "malformed"),
        (b"{}", {"Authorization": "Bearer wrong", "Content-Type": "application/json"}, 403, "bad_token"),
        (b"{}", {"Content-Type": "application/json"}, 403, "bad_token"),
        (b"{}", {"Authorization": f"Bearer {KONG_TOKEN}", "Content-Type": "text/plain"}, 400, "content_type"),
        (
            b"[" + b"1," * 3_000_000 + b"1]",
            {"Authorization": f"Bearer {KONG_TOKEN}", "Content-Type": "application/json"},
            413,
            "too_large",
        ),
        (
            b"[" * 100_000,
            {"Authorization": f"Bearer {KONG_TOKEN}", "Content-Type": "application/json"},
            400,
            "malformed",
        ),
    ],
)
def test_bad_kong_posts(
    meter: Meter, client: httpx.Client, body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    response = client.post(f"{meter.base}/kong/http-log", content=body, headers=headers)
    assert response.status_code == status and response.json()["error"] == reason
    assert _counter(meter, f'meter_rejected_total{{source="kong",reason="{reason}"}}') >= 1


def test_health_and_unknown_routes(meter: Meter, client: httpx.Client) -> None:
    assert client.get(f"{meter.base}/healthz").text == "ok\n"
    assert client.get(f"{meter.base}/nope").status_code == 404
    assert client.get(f"{meter.base}/kong/http-log").status_code == 405
    assert "meter_spool_depth" in client.get(f"{meter.base}/metrics").text


def test_no_redirects_a_trailing_slash_is_a_plain_404(meter: Meter, client: httpx.Client) -> None:
    form = callback()
    path = "/twilio/acme-voice/status/"
    headers = {"Host": "attacker.example", "X-Twilio-Signature": sign(meter.base + path, form)}
    for method, url, kwargs in [
        ("POST", meter.base + path, {"data": form, "headers": headers}),
        ("POST", f"{meter.base}/kong/http-log/", {"json": [kong_entry()], "headers": {"Host": "attacker.example"}}),
        ("GET", f"{meter.base}/healthz/", {"headers": {"Host": "attacker.example"}}),
        ("GET", f"{meter.base}/metrics/", {}),
    ]:
        response = client.request(method, url, follow_redirects=False, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 404 and "location" not in response.headers, (url, response.status_code)
        assert "attacker.example" not in response.text


def test_twilio_unreachable_answers_503_with_retry_after_then_recovers(tmp_path: Path) -> None:
    from services.meter.subaccounts import RETRY_AFTER_FAILURE
    from tests.components.twilio_fake import serve
    from tests.services.meter_harness import free_port, twilio

    port = free_port()  # nothing listens there yet: Twilio's API unreachable
    meter = Meter(tmp_path).start(env={"PLATFORMCTL_TWILIO_API_URL": f"http://127.0.0.1:{port}"})
    server = None
    try:
        with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as c:
            form = callback()
            response = post_callback(c, meter, "acme-voice", form)
            # Not 403: Twilio does not retry a 4xx, and this callback is genuine.
            assert response.status_code == 503 and response.json()["error"] == "twilio_unavailable"
            assert response.headers["retry-after"].isdigit()
            metrics = meter.metrics()
            assert metrics['meter_rejected_total{source="twilio",reason="twilio_unavailable"}'] == 1
            assert metrics["meter_twilio_lookup_failures_total"] == 1
            assert metrics.get('meter_accepted_total{source="twilio"}', 0) == 0
            server = serve(twilio()[0], port)  # Twilio is back
            time.sleep(RETRY_AFTER_FAILURE)
            assert post_callback(c, meter, "acme-voice", form).status_code == 200  # Twilio's retry
            assert meter.metrics()['meter_accepted_total{source="twilio"}'] == 1
    finally:
        assert meter.stop() in (0, -signal.SIGTERM)
        if server is not None:
            server.shutdown()
            server.server_close()
    log = meter.log.read_text()
    assert subaccount("acme-voice")[1] not in log and MASTER_TOKEN not in log


def test_refuses_to_start_without_tokens(tmp_path: Path) -> None:
    meter = Meter(tmp_path).start(env={"TWILIO_AUTH_TOKEN": ""}, wait=False)
    assert meter.proc is not None and meter.proc.wait(timeout=30) == 2
    log = meter.log.read_text()
    assert "TWILIO_AUTH_TOKEN" in log and "Traceback" not in log
    assert KONG_TOKEN not in log and TWILIO_TOKEN not in log
    bare = Meter(tmp_path).start(env={"TWILIO_ACCOUNT_SID": ""}, wait=False)
    assert bare.proc is not None and bare.proc.wait(timeout=30) == 2
    assert "TWILIO_ACCOUNT_SID" in bare.log.read_text()


def test_kill_9_loses_no_acknowledged_event_and_duplicates_stay_single(tmp_path: Path) -> None:
    meter = Meter(tmp_path).start()
    acknowledged: list[dict[str, str]] = []
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(timeout=5, verify=LOOPBACK_TLS) as c:
            while not stop.is_set():
                form = callback(duration=int(time.time() * 1000) % 600)
                try:
                    if post_callback(c, meter, "acme-voice", form).status_code == 200:
                        acknowledged.append(form)
                except httpx.HTTPError:
                    return

    senders = [threading.Thread(target=send) for _ in range(4)]
    for t in senders:
        t.start()
    deadline = time.monotonic() + 20  # on a busy machine the first acknowledgements take a while
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)  # and some in flight when the kill comes
    meter.stop(signal.SIGKILL)
    stop.set()
    for t in senders:
        t.join(timeout=10)
    assert len(acknowledged) > 20

    restarted = Meter(tmp_path, port=meter.port).start()
    with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as c:
        for form in acknowledged[:20]:  # Twilio retries what it sent before the crash
            assert post_callback(c, restarted, "acme-voice", form).status_code == 200
    restarted.wait_flushed()
    assert restarted.metrics()['meter_duplicates_total{source="twilio"}'] == 20
    assert restarted.stop() in (0, -signal.SIGTERM)
    rows = {r[0]: r for r in warehouse_rows(tmp_path / "warehouse", USAGE)}
    for form in acknowledged:
        row = rows[form["CallSid"]]
        seconds = int(form["CallDuration"])
        minutes = -(-seconds // 60)
        assert row[1:] == ("acme-voice", seconds, minutes, "EUR", Decimal("0.015"), minutes * Decimal("0.015"))
    count = warehouse_rows(
        tmp_path / "warehouse", "SELECT COUNT(*), COUNT(DISTINCT EVENT_ID) FROM PLATFORM_LOCAL.RAW.USAGE_EVENTS"
    )
    assert count[0][0] == count[0][1]


def test_warehouse_down_then_up(tmp_path: Path) -> None:
    meter = Meter(tmp_path).start()
    holder = seize_warehouse(meter)  # holds the DuckDB file: the meter cannot reach it
    with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as c:
        forms = [callback() for _ in range(5)]
        for form in forms:
            assert post_callback(c, meter, "acme-voice", form).status_code == 200
        assert post_kong(c, meter, [kong_entry() for _ in range(7)]).json()["accepted"] == 7
    deadline = time.monotonic() + 20  # the flusher process needs a moment to start and try
    while meter.metrics()["meter_warehouse_errors_total"] < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    metrics = meter.metrics()
    assert metrics["meter_spool_depth"] == 12 and metrics["meter_warehouse_errors_total"] >= 1
    assert metrics["meter_warehouse_up"] == 0
    holder.close()
    meter.wait_flushed(timeout=40)
    assert meter.stop() in (0, -signal.SIGTERM)
    assert warehouse_rows(tmp_path / "warehouse", "SELECT COUNT(*) FROM PLATFORM_LOCAL.RAW.API_REQUESTS") == [(7,)]
    assert len(warehouse_rows(tmp_path / "warehouse", USAGE)) == 5


def test_sigterm_drains_within_30_seconds_and_keeps_what_it_could_not_flush(tmp_path: Path) -> None:
    meter = Meter(tmp_path).start()
    holder = seize_warehouse(meter)
    with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as c:
        assert post_kong(c, meter, [kong_entry() for _ in range(3)]).json()["accepted"] == 3
    started = time.monotonic()
    meter.stop()
    assert time.monotonic() - started < 30
    holder.close()
    restarted = Meter(tmp_path, port=meter.port).start()
    assert restarted.metrics()["meter_spool_depth"] in (0, 3)  # 3 until the first flush, then 0
    restarted.wait_flushed()
    restarted.stop()
    assert warehouse_rows(tmp_path / "warehouse", "SELECT COUNT(*) FROM PLATFORM_LOCAL.RAW.API_REQUESTS") == [(3,)]


def test_a_kong_entry_names_its_partner_by_the_consumers_custom_id_only() -> None:
    from services.meter import events
    from services.meter.events import Event, Rejected
    from tests.services.meter_harness import repo_roster

    roster = repo_roster()
    now = dt.datetime.now(dt.UTC)
    named = events.kong_event(kong_entry("acme-voice"), roster, now)
    assert isinstance(named, Event) and named.row["PARTNER_ID"] == "acme-voice"
    # The username looks like a partner's, but only custom_id counts (Kong sets it from the partner stack).
    by_username = kong_entry()
    by_username["consumer"] = {"id": "c1", "username": "partner-acme-voice"}
    outcome = events.kong_event(by_username, roster, now)
    assert isinstance(outcome, Rejected) and outcome.reason == "no_consumer"
    for custom_id in ("nobody-here", "ACME-VOICE", "acme-voice ", 7):
        entry = kong_entry()
        entry["consumer"]["custom_id"] = custom_id
        outcome = events.kong_event(entry, roster, now)
        assert isinstance(outcome, Rejected) and outcome.reason in ("unknown_partner", "no_consumer"), custom_id
