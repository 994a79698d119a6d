"""The meter when its spool cannot take events: a backlog at its limit, a full disk, a crash-looping flusher. It
answers 503 with Retry-After, says why in /healthz and /metrics, and recovers by itself."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.services.meter_harness import (
    LOOPBACK_TLS,
    Meter,
    callback,
    kong_entry,
    post_callback,
    post_kong,
    seize_warehouse,
    warehouse_rows,
)

API_COUNT = "SELECT COUNT(*) FROM PLATFORM_LOCAL.RAW.API_REQUESTS"


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _health(meter: Meter) -> tuple[int, str]:
    response = httpx.get(f"{meter.base}/healthz", timeout=5, verify=LOOPBACK_TLS)
    return response.status_code, response.text


def test_a_full_backlog_is_503_with_retry_after_and_healthz_says_so(meters: Callable[..., Meter]) -> None:
    meter = meters(max_pending="5")
    holder = seize_warehouse(meter)
    try:
        with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as c:
            assert post_kong(c, meter, [kong_entry() for _ in range(5)]).json()["accepted"] == 5
            response = post_callback(c, meter, "acme-voice", callback())
            assert response.status_code == 503 and response.json()["error"] == "spool_full"
            assert int(response.headers["retry-after"]) > 0
        assert _health(meter) == (503, "spool_full\n")
        assert (
            httpx.get(f"{meter.base}/livez", timeout=5, verify=LOOPBACK_TLS).text == "ok\n"
        )  # nothing a restart would fix
        metrics = meter.metrics()
        assert metrics["meter_spool_depth"] == 5 and metrics["meter_spool_pending_limit"] == 5
        assert 0 < metrics["meter_spool_fill_ratio"] < 1 and metrics["meter_spool_capacity_bytes"] > 0
        assert metrics["meter_spool_used_bytes"] > 0 and metrics["meter_spool_volume_free_bytes"] > 0
    finally:
        holder.close()
    meter.wait_flushed(timeout=40)
    assert _health(meter) == (200, "ok\n")
    assert meter.stop() in (0, -signal.SIGTERM)


def test_a_crash_looping_flusher_makes_healthz_fail(meters: Callable[..., Meter]) -> None:
    meter = meters()
    killed: set[int] = set()
    for _ in range(3):
        _wait_for(lambda: bool(set(meter.flushers()) - killed), 20, "a flusher")
        (pid,) = set(meter.flushers()) - killed
        os.kill(pid, signal.SIGKILL)
        killed.add(pid)
    _wait_for(lambda: _health(meter)[0] == 503, 10, "healthz to report the crash loop")
    assert "flusher_crash_loop" in _health(meter)[1]
    assert meter.stop() in (0, -signal.SIGTERM)


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs for the spool: a disk that really fills (ENOSPC), as the spool's volume does."""
    mount = tmp_path / "volume"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(volume: Path) -> Path:
    filler = volume / "filler"
    chunk = b"\0" * 65536
    # Unbuffered: a buffered file keeps the part of the last chunk the disk did not take, and closing it raises
    # ENOSPC again (whether a chunk ends partly written depends on what else is on the volume).
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError:
            pass
    return filler


def test_a_full_disk_degrades_to_503_without_a_flusher_crash_loop_and_recovers(
    tmp_path: Path, small_volume: Path, meters: Callable[..., Meter]
) -> None:
    meter = meters(spool=small_volume / "spool.db")
    holder = seize_warehouse(meter)  # events wait in the spool
    restarts = meter.metrics()["meter_flusher_restarts_total"]  # the seizure's kill, if the flusher had started
    with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as c:
        assert post_kong(c, meter, [kong_entry() for _ in range(200)]).json()["accepted"] == 200
        filler = _fill(small_volume)
        holder.close()  # the flusher writes the batch, then cannot mark it flushed, nor checkpoint: disk full
        _wait_for(lambda: meter.metrics()['meter_flushed_total{kind="api"}'] >= 200, 30, "the warehouse write")
        statuses = set()
        for _ in range(20):  # the request path: 503 with Retry-After, never a 500
            response = post_kong(c, meter, [kong_entry() for _ in range(50)])
            statuses.add(response.status_code)
            if response.status_code == 503:
                assert response.json()["error"] == "spool_error" and response.headers["retry-after"].isdigit()
        assert statuses == {503}
        status, text = _health(meter)
        assert status == 503 and "spool_write_failing" in text
        time.sleep(8)  # the flusher keeps trying (checkpoints, marks) against the full disk
        assert meter.metrics()["meter_flusher_restarts_total"] == restarts  # no crash loop
        assert meter.proc is not None and meter.proc.poll() is None

        filler.unlink()  # space is back: the meter recovers by itself, with no request needed to notice
        _wait_for(lambda: _health(meter) == (200, "ok\n"), 20, "healthz ok again")
        assert post_kong(c, meter, [kong_entry() for _ in range(10)]).json()["accepted"] == 10
    meter.wait_flushed(timeout=40)
    assert meter.metrics()["meter_flusher_restarts_total"] == restarts
    assert meter.stop() in (0, -signal.SIGTERM)
    assert warehouse_rows(tmp_path / "warehouse", API_COUNT) == [(210,)]
    log = meter.log.read_text()
    assert "Traceback" not in log
