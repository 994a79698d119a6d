"""The marketplace conformance check: load an integration's health endpoint and hold it to the seed's bars
(p95 latency <= 1 s, >= 100 requests/s, <= 1 % errors). Run by the Job each integration stack deploys in its
sandbox's companion namespace (`platform-services conformance run --url ...`); prints one JSON result (the shape
`platformctl marketplace build --results DIR` also reads, `<id>.json`) and, given a warehouse (`--warehouse` or
CONFORMANCE_WAREHOUSE_URL, the way the payouts job gets PAYOUTS_WAREHOUSE_URL), records it in the region's
CONFORMANCE_RESULTS with the integration, region and measured image digest: insert-if-absent by a result id
derived from the run, so a retried write adds nothing. The listing shows the latest result per integration and
region. The load itself is standard library only; the write uses services.warehouse (the image's connector).
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import math
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from foundation.naming import PARTNER_ID_PATTERN, REGION_CODE_PATTERN

WAREHOUSE_ENV = "CONFORMANCE_WAREHOUSE_URL"
"""Where the job records its result (with SNOWFLAKE_PRIVATE_KEY beside it), set from the job's Secret."""
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
RECORD_ATTEMPTS = 3
"""Writes tried before the job gives up (the write is idempotent; the Job itself is not retried)."""


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


def result_row(result: Result, integration_id: str, region: str, image_digest: str) -> dict[str, Any]:
    """The CONFORMANCE_RESULTS row of one run."""
    from foundation.marketplace_queries import conformance_result_id

    return {
        "RESULT_ID": conformance_result_id(integration_id, region, image_digest, result.checked_at),
        "INTEGRATION_ID": integration_id,
        "REGION": region,
        "CHECKED_AT": result.checked_at,
        "P95_MS": round(result.p95_seconds * 1000, 1),
        "REQUESTS_PER_SECOND": result.rps,
        "ERROR_RATE": result.error_rate,
        "REQUESTS": result.requests,
        "PASSED": result.passed,
        "IMAGE_DIGEST": image_digest,
    }


def record(row: dict[str, Any], warehouse_url: str, pause: float = 2.0) -> bool:
    """Write the row insert-if-absent (services.warehouse.merge_rows); True when it was new. A bad URL or key is
    InputError; a warehouse that stays unreachable after RECORD_ATTEMPTS is WarehouseUnavailableError."""
    from foundation.warehouse_schema import CONFORMANCE_RESULTS
    from services import warehouse

    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            conn = warehouse.connect(warehouse_url)
            try:
                if warehouse_url.startswith("local:"):
                    warehouse.ensure_schema(conn)  # the embedded warehouse is made here; a region's is deployed
                return warehouse.merge_rows(conn, CONFORMANCE_RESULTS, [row]) == 1
            finally:
                conn.close()
        except warehouse.WarehouseUnavailableError:
            if attempt == RECORD_ATTEMPTS:
                raise
            time.sleep(pause * attempt)
    raise AssertionError("unreachable")


def _recording(args: argparse.Namespace) -> tuple[str, str, str, str] | None:
    """(warehouse URL, integration, region, image digest) when the run is to be recorded; ValueError names the
    argument that is wrong or missing."""
    url = args.warehouse if args.warehouse is not None else os.environ.get(WAREHOUSE_ENV, "")
    given = {"--integration": args.integration, "--region": args.region, "--image-digest": args.image_digest}
    if not url:
        if any(v is not None for v in given.values()):
            raise ValueError(f"--warehouse: needed to record the result (or set {WAREHOUSE_ENV})")
        return None
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise ValueError(f"{missing[0]}: required to record the result in {WAREHOUSE_ENV}'s warehouse")
    checks = (
        ("--integration", args.integration, PARTNER_ID_PATTERN, "an integration id (3-40 of a-z, 0-9, '-')"),
        ("--region", args.region, REGION_CODE_PATTERN, "a region code such as eu-central"),
        ("--image-digest", args.image_digest, DIGEST_PATTERN, "sha256:<64 lower-case hex>"),
    )
    for name, value, pattern, what in checks:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"{name}: {value!r} is not {what}")
    return url, args.integration, args.region, args.image_digest


def main(argv: Sequence[str] | None = None) -> int:
    """`conformance --url URL [--duration S] [--min-rps N] [--max-p95 S] [--max-error-rate F]
    [--warehouse URL --integration ID --region CODE --image-digest sha256:...]`: exit 0 passed, 1 failed (or not
    recorded), 2 bad arguments; the JSON result on stdout."""
    parser = argparse.ArgumentParser(
        prog="platform-services conformance run",
        description=__doc__.splitlines()[0],
        epilog="example: platform-services conformance run --url http://calsync.integration-calsync.svc.cluster.local"
        ":8080/healthz --integration calsync --region eu-central --image-digest sha256:<64 hex> "
        "--warehouse 'snowflake://ORG-ACCOUNT/PLATFORM_EU_CENTRAL?user=U&role=R&warehouse=W'",
    )
    parser.add_argument("--url", required=True, help="The integration's health endpoint.")
    parser.add_argument("--duration", type=float, default=30.0, help="Seconds of load (default 30).")
    parser.add_argument("--min-rps", type=float, default=Bars.min_rps)
    parser.add_argument("--max-p95", type=float, default=Bars.max_p95_seconds)
    parser.add_argument("--max-error-rate", type=float, default=Bars.max_error_rate)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warehouse", help=f"Record the result there (default ${WAREHOUSE_ENV}; unset: print only).")
    parser.add_argument("--integration", help="The integration's id (recorded with the result).")
    parser.add_argument("--region", help="The region code the sandbox runs in (recorded with the result).")
    parser.add_argument("--image-digest", help="sha256:... of the integration image measured (recorded).")
    args = parser.parse_args(list(argv) if argv is not None else None)
    bars = Bars(max_p95_seconds=args.max_p95, min_rps=args.min_rps, max_error_rate=args.max_error_rate)
    try:
        recording = _recording(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = run(args.url, args.duration, bars, concurrency=args.concurrency)
    except ValueError as exc:
        print(f"error: --url: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(result)), flush=True)
    if recording is not None:
        from foundation.errors import InputError, PlatformError

        url, integration_id, region, image_digest = recording
        try:
            record(result_row(result, integration_id, region, image_digest), url)
        except InputError as exc:
            print(f"error: {'; '.join(str(p) for p in exc.problems) or exc}", file=sys.stderr)
            return 2
        except PlatformError as exc:
            print(f"error: the result was not recorded: {exc}", file=sys.stderr)
            return 1
        except Exception as exc:  # the driver refused the statement (a grant, a missing table): say so, no traceback
            first = str(exc).splitlines()[0] if str(exc) else ""
            print(f"error: the result was not recorded: {type(exc).__name__}: {first}", file=sys.stderr)
            return 1
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
