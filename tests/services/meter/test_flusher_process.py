"""The flusher in its own process: restarted when it dies, gone with the meter, drained within 30 s on SIGTERM;
the embedded warehouse's memory limits."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from foundation.warehouse_schema import PARTNERS
from services.warehouse import KEEP_RESULTS, LOCAL_MEMORY_LIMIT, LOCAL_THREADS, connect, ensure_schema, merge_rows
from tests.services.meter_harness import (
    LOOPBACK_TLS,
    Meter,
    alive,
    callback,
    kong_entry,
    post_callback,
    post_kong,
    seize_warehouse,
    warehouse_rows,
)

API_COUNT = "SELECT COUNT(*) FROM PLATFORM_LOCAL.RAW.API_REQUESTS"


def _one_flusher(meter: Meter, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = meter.flushers()
        if len(children) == 1:
            return children[0]
        time.sleep(0.1)
    raise AssertionError(f"expected one flusher process, found {meter.flushers()}")


def test_a_killed_flusher_is_started_again_and_the_events_still_flow(
    tmp_path: Path, meters: Callable[..., Meter]
) -> None:
    meter = meters()
    first = _one_flusher(meter)
    os.kill(first, signal.SIGKILL)
    with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as c:
        assert post_kong(c, meter, [kong_entry() for _ in range(25)]).json()["accepted"] == 25
        assert post_callback(c, meter, "acme-voice", callback()).status_code == 200  # the request path never noticed
    meter.wait_flushed(timeout=40)
    second = _one_flusher(meter)
    assert second != first and not alive(first)
    assert meter.metrics()["meter_flusher_restarts_total"] == 1
    assert meter.stop() in (0, -signal.SIGTERM)
    assert not alive(second)
    assert warehouse_rows(tmp_path / "warehouse", API_COUNT) == [(25,)]


def test_kill_9_of_the_meter_takes_the_flusher_with_it(tmp_path: Path, meters: Callable[..., Meter]) -> None:
    meter = meters()
    flusher = _one_flusher(meter)
    meter.stop(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(flusher) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(flusher)  # or it would hold the embedded warehouse against the next meter
    restarted = meters(port=meter.port)
    with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as c:
        assert post_kong(c, restarted, [kong_entry() for _ in range(3)]).json()["accepted"] == 3
    restarted.wait_flushed()
    assert restarted.stop() in (0, -signal.SIGTERM)


def test_sigterm_with_a_backlog_drains_within_30_seconds_and_loses_nothing(
    tmp_path: Path, meters: Callable[..., Meter]
) -> None:
    meter = meters()
    holder = seize_warehouse(meter)  # the backlog builds up while the warehouse is busy
    flusher = _one_flusher(meter)
    with httpx.Client(timeout=30, verify=LOOPBACK_TLS) as c:
        for _ in range(30):
            assert post_kong(c, meter, [kong_entry() for _ in range(1000)]).json()["accepted"] == 1000
    holder.close()
    time.sleep(1.0)  # the flusher is back at work (its retry backoff is short at first) when SIGTERM comes
    started = time.monotonic()
    assert meter.stop() in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 30
    assert not alive(flusher)
    written = warehouse_rows(tmp_path / "warehouse", API_COUNT)[0][0]
    restarted = meters(port=meter.port)
    assert restarted.metrics()["meter_spool_depth"] in (30_000 - written, 0)
    restarted.wait_flushed(timeout=60)
    assert restarted.stop() in (0, -signal.SIGTERM)
    assert warehouse_rows(tmp_path / "warehouse", API_COUNT) == [(30_000,)]


def test_the_embedded_warehouse_has_a_memory_limit_one_thread_and_a_bounded_results_cache(tmp_path: Path) -> None:
    conn = connect(f"local:{tmp_path / 'wh'}")
    try:
        limit, threads = conn.instance.duck_conn.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads')"
        ).fetchone()
        expected_mib = int(LOCAL_MEMORY_LIMIT.removesuffix("MB")) * 1000**2 / 1024**2
        assert limit.endswith("MiB") and abs(float(limit.removesuffix(" MiB")) - expected_mib) < 1, limit
        assert threads == LOCAL_THREADS
        ensure_schema(conn)
        for i in range(3 * KEEP_RESULTS):
            merge_rows(conn, PARTNERS, [_partner_row(f"partner-{i:03d}")])
        assert len(conn.instance.results_cache) <= KEEP_RESULTS
    finally:
        conn.close()


def _partner_row(partner_id: str) -> dict[str, object]:
    """A PARTNERS row as `platformctl warehouse sync` writes it, under another id."""
    from fleet.repo import Repo
    from platformctl.warehouse_sync import terms_rows
    from tests.services.meter_harness import ROOT

    return {**terms_rows(Repo(ROOT))[0], "PARTNER_ID": partner_id, "ONBOARDED_ON": "2026-11-01"}
