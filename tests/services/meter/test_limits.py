"""The meter process at its edges: SIGTERM after flusher restarts, a second meter on the same spool or port, and
connections that never finish a request."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from services.meter.listener import REQUEST_READ_TIMEOUT, RESERVED_FDS
from tests.services.meter_harness import (
    KONG_TOKEN,
    LOOPBACK_TLS,
    Meter,
    alive,
    callback,
    kong_entry,
    post_callback,
    post_kong,
)


def _new_flusher(meter: Meter, old: set[int], timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = [pid for pid in meter.flushers() if pid not in old]
        if fresh:
            return fresh[0]
        time.sleep(0.05)
    raise AssertionError(f"no new flusher: {meter.flushers()}")


def test_sigterm_after_flusher_restarts_drains_within_30_seconds(meters: Callable[..., Meter]) -> None:
    meter = meters()
    seen: set[int] = set()
    flusher = _new_flusher(meter, seen)
    for _ in range(2):  # killed while it sleeps between flushes (where it spends its time)
        time.sleep(0.6)
        seen.add(flusher)
        os.kill(flusher, signal.SIGKILL)
        flusher = _new_flusher(meter, seen)
    with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as c:
        assert post_kong(c, meter, [kong_entry() for _ in range(5)]).json()["accepted"] == 5
    meter.wait_flushed()
    started = time.monotonic()
    assert meter.stop(timeout=40) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 30
    assert not alive(flusher)
    assert "leaked semaphore" not in meter.log.read_text()


def test_sigterm_while_the_flusher_is_down_between_restarts(meters: Callable[..., Meter]) -> None:
    meter = meters()
    flusher = _new_flusher(meter, set())
    os.kill(flusher, signal.SIGKILL)
    time.sleep(0.2)  # the supervisor waits a second before the next start
    started = time.monotonic()
    assert meter.stop(timeout=40) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 30


def test_a_second_meter_on_the_same_spool_or_port_is_refused_at_start(
    tmp_path: Path, meters: Callable[..., Meter]
) -> None:
    first = meters()
    assert first.proc is not None
    # The same spool (another port, another warehouse): exit 2 naming --spool and the holder, before listening.
    same_spool = meters(wait=False, warehouse=f"local:{tmp_path / 'other-warehouse'}")
    assert same_spool.proc is not None and same_spool.proc.wait(timeout=60) == 2
    log = same_spool.log.read_text()
    assert "--spool" in log and f"pid {first.proc.pid}" in log and "listening" not in log, log
    assert "Traceback" not in log and "leaked" not in log
    # The same port (another spool): exit 2 naming --port and the process holding it.
    same_port = meters(tmp_path / "elsewhere", wait=False, port=first.port)
    assert same_port.proc is not None and same_port.proc.wait(timeout=60) == 2
    log = same_port.log.read_text()
    assert "--port" in log and str(first.port) in log and f"pid {first.proc.pid}" in log, log
    assert "listening" not in log and "Traceback" not in log and "leaked" not in log
    # The first one never noticed.
    with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as c:
        assert post_callback(c, first, "acme-voice", callback()).status_code == 200
    assert first.stop() in (0, -signal.SIGTERM)
    assert "leaked" not in first.log.read_text()


def _half_open(port: int, payload: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    if payload:
        sock.sendall(payload)
    return sock


def _closed_by_peer(sock: socket.socket, wait: float) -> bool:
    """Whether the meter closed the connection within `wait` seconds (an answer it sent first is read past)."""
    deadline = time.monotonic() + wait
    try:
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            if sock.recv(4096) == b"":
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_incomplete_requests_are_cut_off_and_connections_are_capped(meters: Callable[..., Meter]) -> None:
    fd_limit = RESERVED_FDS + 64  # the meter then takes at most 64 connections
    meter = meters(fd_limit=fd_limit)
    head = b"POST /kong/http-log HTTP/1.1\r\nHost: meter\r\nContent-Type: application/json\r\n"
    authorized = head + f"Authorization: Bearer {KONG_TOKEN}\r\n".encode()
    stalled = [
        *(_half_open(meter.port, b"") for _ in range(10)),  # connected, nothing sent
        *(_half_open(meter.port, head) for _ in range(10)),  # headers never finished
        *(_half_open(meter.port, authorized + b"Content-Length: 1000\r\n\r\n[{") for _ in range(10)),  # body trickled
    ]
    try:
        opened = time.monotonic()
        # More connections than the limit: the surplus is closed on arrival, the meter's descriptors are not spent.
        flood = [_half_open(meter.port, b"") for _ in range(80)]
        time.sleep(1.0)
        assert sum(_closed_by_peer(s, 0.01) for s in flood) >= 40
        for s in flood:
            s.close()
        # Every stalled connection is closed by the meter once REQUEST_READ_TIMEOUT has passed, not before.
        assert not any(_closed_by_peer(s, 0.05) for s in stalled[:3])
        remaining = REQUEST_READ_TIMEOUT - (time.monotonic() - opened) + 3
        assert all(_closed_by_peer(s, max(0.1, remaining)) for s in stalled)
        with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as c:  # and the meter serves requests as before
            assert post_kong(c, meter, [kong_entry()]).json()["accepted"] == 1
            assert c.get(f"{meter.base}/healthz").text == "ok\n"
        metrics = meter.metrics()
        assert metrics["meter_requests_timed_out_total"] >= 30
        assert metrics["meter_connections_refused_total"] >= 40
    finally:
        for s in stalled:
            s.close()
    assert meter.stop() in (0, -signal.SIGTERM)
    log = meter.log.read_text()
    assert "Too many open files" not in log
    # A body cut off at the deadline is the client's doing: no application error, no traceback in the log.
    assert "Exception in ASGI application" not in log and "Traceback" not in log, log[-3000:]
