"""The marketplace conformance check: load an integration's health endpoint and hold it to the seed's bars
(p95 latency <= 1 s, >= 100 requests/s, <= 1 % errors). Run by the Job each integration stack deploys in its
sandbox's companion namespace (`platform-services conformance run --url ...`); prints one JSON result, the shape
`platformctl marketplace build --results DIR` shows (`<id>.json`). Standard library only: the services image
carries nothing else for it.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import math
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Bars:
    max_p95_seconds: float = 1.0
    """Slowest 95th-percentile latency accepted."""
    min_rps: float = 100.0
    """Fewest completed requests per second accepted."""
    max_error_rate: float = 0.01
    """Largest share of failed requests (non-2xx, timeouts, resets) accepted."""


@dataclass(frozen=True)
class Result:
    passed: bool
    """All three bars held."""
    requests: int
    """Requests completed (successful or not)."""
    rps: float
    """Requests per second over the run."""
    p95_seconds: float
    """95th-percentile latency (nearest rank)."""
    error_rate: float
    """Share of requests that failed."""
    failures: tuple[str, ...]
    """Which bars failed, in words."""
    checked_at: str
    """When the run ended (UTC, ISO 8601)."""


def p95(latencies: Sequence[float]) -> float:
    """Nearest-rank 95th percentile (0 for no samples)."""
    if not latencies:
        return 0.0
    ordered = sorted(latencies)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def judge(latencies: Sequence[float], errors: int, elapsed: float, bars: Bars) -> Result:
    total = len(latencies)
    rps = total / elapsed if elapsed > 0 else 0.0
    error_rate = errors / total if total else 1.0
    slow = p95(latencies)
    failures = []
    if slow > bars.max_p95_seconds:
        failures.append(f"p95 {slow:.3f} s is above {bars.max_p95_seconds} s")
    if rps < bars.min_rps:
        failures.append(f"{rps:.1f} requests/s is below {bars.min_rps}")
    if error_rate > bars.max_error_rate:
        failures.append(f"error rate {error_rate:.2%} is above {bars.max_error_rate:.2%}")
    return Result(
        passed=not failures,
        requests=total,
        rps=round(rps, 1),
        p95_seconds=round(slow, 4),
        error_rate=round(error_rate, 4),
        failures=tuple(failures),
        checked_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )


def run(url: str, duration: float, bars: Bars, concurrency: int = 16, timeout: float = 5.0) -> Result:
    """GET `url` from `concurrency` keep-alive connections for `duration` seconds, then judge the run."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"{url!r} is not an http(s) URL")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + duration

    def client() -> None:
        connection = connection_class(host, port, timeout=timeout)
        mine: list[float] = []
        failed = 0
        while time.monotonic() < deadline:
            start = time.monotonic()
            try:
                connection.request("GET", path, headers={"User-Agent": "platform-conformance"})
                response = connection.getresponse()
                response.read()
                ok = 200 <= response.status < 300
                if response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
            mine.append(time.monotonic() - start)
            failed += 0 if ok else 1
        connection.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    began = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + timeout + 5)
    return judge(latencies, errors[0], time.monotonic() - began, bars)


def main(argv: Sequence[str] | None = None) -> int:
    """`conformance --url URL [--duration S] [--min-rps N] [--max-p95 S] [--max-error-rate F]`: exit 0 passed,
    1 failed, 2 bad arguments; the JSON result on stdout."""
    parser = argparse.ArgumentParser(prog="platform-services conformance run", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="The integration's health endpoint.")
    parser.add_argument("--duration", type=float, default=30.0, help="Seconds of load (default 30).")
    parser.add_argument("--min-rps", type=float, default=Bars.min_rps)
    parser.add_argument("--max-p95", type=float, default=Bars.max_p95_seconds)
    parser.add_argument("--max-error-rate", type=float, default=Bars.max_error_rate)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(list(argv) if argv is not None else None)
    bars = Bars(max_p95_seconds=args.max_p95, min_rps=args.min_rps, max_error_rate=args.max_error_rate)
    try:
        result = run(args.url, args.duration, bars, concurrency=args.concurrency)
    except ValueError as exc:
        print(f"error: --url: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(result)))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
