"""`platformctl usage` over a warehouse the meter filled; the views' figures; bad arguments."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.services.meter_harness import LOOPBACK_TLS, Meter, callback, kong_entry, post_callback, post_kong


def test_usage_reads_back_what_the_meter_wrote(tmp_path: Path, cli: Callable[..., object]) -> None:
    import datetime as dt

    meter = Meter(tmp_path).start()
    period = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    with httpx.Client(timeout=10, verify=LOOPBACK_TLS) as c:
        for seconds in (1, 60, 61, 125):  # minutes 1 + 1 + 2 + 3 = 7
            assert post_callback(c, meter, "acme-voice", callback(duration=seconds)).status_code == 200
        for _ in range(3):  # answered calls of zero seconds: counted, nothing billed
            assert post_callback(c, meter, "acme-voice", callback(duration=0)).status_code == 200
        assert post_kong(c, meter, [kong_entry("acme-voice") for _ in range(5)]).json()["accepted"] == 5
    meter.wait_flushed()
    assert meter.stop() in (0, -signal.SIGTERM)
    warehouse = f"local:{tmp_path / 'warehouse'}"
    result = cli("usage", "--period", period, "--warehouse", warehouse, "--json")
    report = json.loads(result.out)  # type: ignore[attr-defined]
    assert report == {
        "period": period,
        "partners": {
            "acme-voice": {
                "calls": 7,
                "billable_seconds": 247,
                "minutes": 7,
                "currency": "EUR",
                "gross_minor": 10,  # 7 x 0.015 EUR = 10.5 cents, rounded half-even once: 10 (half-up would say 11)
                "api_requests": 5,
            }
        },
    }
    table = cli("usage", "--period", period, "--warehouse", warehouse)
    assert "acme-voice" in table.out  # type: ignore[attr-defined]

    from tests.services.meter_harness import warehouse_rows

    directory = tmp_path / "warehouse"
    assert warehouse_rows(directory, "SELECT * FROM PLATFORM_LOCAL.ANALYTICS.ACTIVE_PARTNERS") == [(1,)]
    minutes = warehouse_rows(
        directory, "SELECT PARTNER_ID, PERIOD, MINUTES FROM PLATFORM_LOCAL.ANALYTICS.MINUTES_PER_PARTNER"
    )
    assert minutes == [("acme-voice", period, 7)]
    mrr = dict(warehouse_rows(directory, "SELECT CURRENCY, MRR_MINOR FROM PLATFORM_LOCAL.ANALYTICS.MRR"))
    # Base fees of the roster (acme-voice professional 999.00 EUR) plus this month's usage, in cents.
    assert mrr["EUR"] == 99900 + 10  # 10.5 cents, half-even like the statements (half-up would say 11)
    assert mrr["JPY"] == 750000  # sakura-calls, enterprise, no usage


def test_usage_bad_arguments(tmp_path: Path, cli: Callable[..., object]) -> None:
    warehouse = f"local:{tmp_path / 'wh'}"
    cli("usage", "--period", "2026-13", "--warehouse", warehouse, code=2)
    cli("usage", "--period", "2026-11\n", "--warehouse", warehouse, code=2)
    cli("usage", "--period", "\uff12\uff10\uff12\uff16-11", "--warehouse", warehouse, code=2)
    cli("usage", "--period", "2026-11", "--partner", "acme-voice\n", "--warehouse", warehouse, code=2)
    cli("usage", "--period", "2026-11", "--partner", "../etc", "--warehouse", warehouse, code=2)
    cli("usage", "--period", "2026-11", "--partner", "nobody-here", "--warehouse", warehouse, code=2)
    cli("usage", "--warehouse", "mysql://x", code=2)
    empty = cli("usage", "--period", "2026-11", "--warehouse", warehouse, "--json")
    assert json.loads(empty.out) == {"period": "2026-11", "partners": {}}  # type: ignore[attr-defined]
