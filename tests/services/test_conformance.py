"""The conformance check against real HTTP servers on loopback: a healthy endpoint passes the seed's bars; a slow,
a failing and a throttled one each fail the bar they break."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from services.conformance import Bars, judge, main, p95, run


@contextmanager
def server(delay: float = 0.0, fail_every: int = 0, serial: bool = False) -> Iterator[str]:
    counter = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            with lock:
                counter[0] += 1
                n = counter[0]
                if serial:
                    time.sleep(delay)  # one request at a time: throughput capped at 1/delay
            if delay and not serial:
                time.sleep(delay)
            status = 500 if fail_every and n % fail_every == 0 else 200
            body = b'{"status":"ok"}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    # shutdown() waits for the serving loop's next poll: 0.05 s rather than the default 0.5 s at the end of each test.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/healthz"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_nearest_rank_p95_and_verdicts() -> None:
    assert p95([0.1] * 95 + [2.0] * 5) == 0.1
    assert p95([0.1] * 94 + [2.0] * 6) == 2.0
    verdict = judge([0.01] * 1000, errors=11, elapsed=5.0, bars=Bars())
    assert not verdict.passed and verdict.failures == ("error rate 1.10% is above 1.00%",)
    assert judge([0.01] * 1000, errors=10, elapsed=5.0, bars=Bars()).passed
    assert judge([], errors=0, elapsed=1.0, bars=Bars()).passed is False


def test_a_healthy_endpoint_passes_the_seed_bars() -> None:
    with server() as url:
        result = run(url, duration=1.0, bars=Bars(), concurrency=8)  # ~170 requests/s here, above the bar of 100
    assert result.passed, result
    assert result.rps >= 100 and result.error_rate == 0.0 and result.p95_seconds <= 1.0


def test_a_slow_endpoint_fails_the_p95_bar() -> None:
    # Every request takes 1.1 s, above the seed's 1 s bar; the run's short duration lets each client make one.
    with server(delay=1.1) as url:
        result = run(url, duration=0.5, bars=Bars(min_rps=0.1), concurrency=4)
    assert not result.passed
    assert any(f.startswith("p95 ") for f in result.failures)


def test_an_endpoint_failing_two_percent_fails_the_error_bar() -> None:
    with server(fail_every=50) as url:  # a second makes well over the 50 requests a failure needs
        result = run(url, duration=1.0, bars=Bars(), concurrency=8)
    assert [f for f in result.failures if f.startswith("error rate")], result


def test_a_throttled_endpoint_fails_the_throughput_bar() -> None:
    with server(delay=0.02, serial=True) as url:  # at most ~50 requests/s, however long the run
        result = run(url, duration=0.5, bars=Bars(), concurrency=8)
    assert [f for f in result.failures if "requests/s is below 100" in f], result


def test_main_prints_the_json_result_and_exits_by_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    with server() as url:
        # Loose bars: this checks the wiring (exit code, JSON), not the machine's speed under a loaded CI host.
        code = main(["--url", url, "--duration", "0.5", "--min-rps", "1", "--max-p95", "30", "--concurrency", "2"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["passed"] is True and set(result) >= {"p95_seconds", "rps", "error_rate"}
    assert main(["--url", "ftp://x", "--duration", "1"]) == 2


def test_the_services_console_script_runs_it(capsys: pytest.CaptureFixture[str]) -> None:
    from services.cli import main as services_main

    with server() as url:
        code = services_main(
            ["conformance", "run", "--url", url, "--duration", "0.5", "--min-rps", "1", "--max-p95", "30"]
        )
    assert code == 0 and json.loads(capsys.readouterr().out)["passed"] is True


DIGEST = "sha256:" + "ab" * 32
LOOSE = ["--duration", "0.5", "--min-rps", "1", "--max-p95", "30", "--concurrency", "2"]
"""Loose bars: these tests check the recording, not the machine's speed."""


def _recorded(directory: Path) -> list[tuple[Any, ...]]:
    from foundation.warehouse_schema import CONFORMANCE_RESULTS
    from services import warehouse

    conn = warehouse.connect(f"local:{directory}")
    try:
        names = ", ".join(c.name for c in CONFORMANCE_RESULTS.columns)
        cur = conn.cursor()
        cur.execute(f"SELECT {names} FROM {CONFORMANCE_RESULTS.fqn(conn.database)} ORDER BY CHECKED_AT")
        return list(cur.fetchall())
    finally:
        conn.close()


def test_a_run_is_recorded_in_the_warehouse_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The job's result lands in CONFORMANCE_RESULTS (the embedded fakesnow warehouse), with the integration, region
    and measured image; writing the same run again adds nothing (insert-if-absent by the run's result id)."""
    from services.conformance import record, result_row

    store = tmp_path / "warehouse"
    with server() as url:
        code = main(
            [
                "--url",
                url,
                *LOOSE,
                "--warehouse",
                f"local:{store}",
                "--integration",
                "calsync",
                "--region",
                "eu-central",
                "--image-digest",
                DIGEST,
            ]
        )
    printed = json.loads(capsys.readouterr().out)
    assert code == 0
    (row,) = _recorded(store)
    result_id, integration, region, checked_at, p95_ms, rps, error_rate, requests, passed, digest = row
    assert (integration, region, passed, digest) == ("calsync", "eu-central", True, DIGEST)
    assert float(p95_ms) == round(printed["p95_seconds"] * 1000, 1) and float(rps) == printed["rps"]
    assert float(error_rate) == printed["error_rate"] and requests == printed["requests"]
    assert checked_at.isoformat(timespec="seconds").replace("+00:00", "") in printed["checked_at"]
    # The same run written again (a retried write): no second row.
    from services.conformance import Result

    again = Result(**{**printed, "failures": tuple(printed["failures"])})
    assert result_row(again, "calsync", "eu-central", DIGEST)["RESULT_ID"] == result_id
    assert record(result_row(again, "calsync", "eu-central", DIGEST), f"local:{store}") is False
    assert len(_recorded(store)) == 1
    # Another run (another time) is another row.
    later = Result(**{**printed, "failures": (), "checked_at": "2030-01-01T00:00:00+00:00"})
    assert record(result_row(later, "calsync", "eu-central", DIGEST), f"local:{store}") is True
    assert len(_recorded(store)) == 2


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--integration", "calsync", "--region", "eu-central", "--image-digest", DIGEST], "--warehouse"),
        (["--warehouse", "local:W", "--region", "eu-central", "--image-digest", DIGEST], "--integration"),
        (["--warehouse", "local:W", "--integration", "calsync", "--image-digest", DIGEST], "--region"),
        (["--warehouse", "local:W", "--integration", "calsync", "--region", "eu-central"], "--image-digest"),
        (["--warehouse", "local:W", "--integration", "../x", "--region", "eu-central", "--image-digest", DIGEST],
         "--integration"),
        (["--warehouse", "local:W", "--integration", "calsync", "--region", "eu-central", "--image-digest",
          "latest"], "--image-digest"),
        (["--warehouse", "local:W", "--integration", "calsync", "--region", "EU'; DROP", "--image-digest", DIGEST],
         "--region"),
    ],
)  # fmt: skip
def test_recording_arguments_are_checked_before_any_load(
    args: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONFORMANCE_WAREHOUSE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    # No server: a load would fail the run with connection errors; exit 2 comes before any request.
    assert main(["--url", "http://127.0.0.1:9/healthz", "--duration", "5", *args]) == 2
    assert f"error: {named}" in capsys.readouterr().err
    assert not (tmp_path / "W").exists()  # nothing written


def test_the_warehouse_comes_from_the_environment_like_the_payouts_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "warehouse"
    monkeypatch.setenv("CONFORMANCE_WAREHOUSE_URL", f"local:{store}")
    with server() as url:
        code = main(["--url", url, *LOOSE, "--integration", "calsync", "--region", "us-east", "--image-digest", DIGEST])
    assert code == 0 and [r[2] for r in _recorded(store)] == ["us-east"]


def test_a_result_that_cannot_be_recorded_fails_the_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A warehouse in use (locked by another process's connection) is a runtime failure: exit 1, the result still
    printed, the reason said."""
    from services import warehouse

    store = tmp_path / "warehouse"
    holder = warehouse.connect(f"local:{store}")
    try:
        with server() as url:
            code = main(
                [
                    "--url",
                    url,
                    *LOOSE,
                    "--warehouse",
                    f"local:{store}",
                    "--integration",
                    "calsync",
                    "--region",
                    "eu-central",
                    "--image-digest",
                    DIGEST,
                ]
            )
    finally:
        holder.close()
    captured = capsys.readouterr()
    assert code == 1 and json.loads(captured.out)["passed"] is True
    assert "error: the result was not recorded" in captured.err
