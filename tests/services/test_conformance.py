"""The conformance check against real HTTP servers on loopback: a healthy endpoint passes the seed's bars; a slow,
a failing and a throttled one each fail the bar they break."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
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
        result = run(url, duration=2.0, bars=Bars(), concurrency=8)
    assert result.passed, result
    assert result.rps >= 100 and result.error_rate == 0.0 and result.p95_seconds <= 1.0


def test_a_slow_endpoint_fails_the_p95_bar() -> None:
    with server(delay=1.2) as url:
        result = run(url, duration=2.5, bars=Bars(min_rps=0.1), concurrency=4)
    assert not result.passed
    assert any(f.startswith("p95 ") for f in result.failures)


def test_an_endpoint_failing_two_percent_fails_the_error_bar() -> None:
    with server(fail_every=50) as url:
        result = run(url, duration=2.0, bars=Bars(), concurrency=8)
    assert [f for f in result.failures if f.startswith("error rate")], result


def test_a_throttled_endpoint_fails_the_throughput_bar() -> None:
    with server(delay=0.02, serial=True) as url:  # at most ~50 requests/s
        result = run(url, duration=2.0, bars=Bars(), concurrency=8)
    assert [f for f in result.failures if "requests/s is below 100" in f], result


def test_main_prints_the_json_result_and_exits_by_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    with server() as url:
        # Loose bars: this checks the wiring (exit code, JSON), not the machine's speed under a loaded CI host.
        code = main(["--url", url, "--duration", "1", "--min-rps", "1", "--max-p95", "30", "--concurrency", "2"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["passed"] is True and set(result) >= {"p95_seconds", "rps", "error_rate"}
    assert main(["--url", "ftp://x", "--duration", "1"]) == 2


def test_the_services_console_script_runs_it(capsys: pytest.CaptureFixture[str]) -> None:
    from services.cli import main as services_main

    with server() as url:
        code = services_main(
            ["conformance", "run", "--url", url, "--duration", "1", "--min-rps", "1", "--max-p95", "30"]
        )
    assert code == 0 and json.loads(capsys.readouterr().out)["passed"] is True
