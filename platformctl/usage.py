"""`platformctl usage`: per-partner usage of one period, read back from the warehouse views."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from foundation.errors import InputError, PlatformError
from foundation.naming import PARTNER_ID_PATTERN
from foundation.warehouse_schema import PARTNERS, view
from services import warehouse

_PERIOD = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")  # used with fullmatch: no "2026-11\n", no "２０２６"
_PARTNER = re.compile(PARTNER_ID_PATTERN)


def current_period(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m")


def usage_report(
    warehouse_url: str, period: str | None = None, partner: str | None = None, base: Path | None = None
) -> dict[str, Any]:
    """{"period": P, "partners": {id: {calls, billable_seconds, minutes, currency, gross_minor, api_requests}}}.

    gross_minor is the period's unrounded gross rounded half-even to the currency's minor unit, once.
    """
    period = period or current_period()
    if not _PERIOD.fullmatch(period) or period.startswith("0000"):
        raise InputError.single("--period", "", "must be YYYY-MM, e.g. 2026-11")
    if partner is not None and not _PARTNER.fullmatch(partner):
        raise InputError.single("--partner", "", "not a partner id (3-40 of a-z, 0-9, '-')")
    if base is not None:
        warehouse_url = warehouse.anchored(warehouse_url, base)
    conn = warehouse.connect(warehouse_url)
    try:
        if warehouse_url.startswith("local:"):
            warehouse.ensure_schema(conn)
        return _report(conn, period, partner)
    finally:
        conn.close()


def _report(conn: Any, period: str, partner: str | None) -> dict[str, Any]:
    database = conn.database
    cur = conn.cursor()
    where, params = "PERIOD = %s", [period]
    if partner is not None:
        where += " AND PARTNER_ID = %s"
        params.append(partner)
    usage = view("USAGE_BY_PERIOD")
    cur.execute(
        f"SELECT PARTNER_ID, CURRENCY, CALLS, BILLABLE_SECONDS, MINUTES, GROSS_MINOR "
        f"FROM {database}.{usage.schema}.{usage.name} WHERE {where} ORDER BY PARTNER_ID",
        params,
    )
    partners: dict[str, dict[str, Any]] = {}
    for partner_id, currency, calls, seconds, minutes, gross in cur.fetchall():
        if partner_id in partners:
            raise PlatformError(f"partner {partner_id} has usage in two currencies in {period}; bill them apart")
        partners[partner_id] = {
            "calls": int(calls),
            "billable_seconds": int(seconds),
            "minutes": int(minutes),
            "currency": currency,
            "gross_minor": int(gross),
            "api_requests": 0,
        }
    api = view("API_REQUESTS_BY_PERIOD")
    cur.execute(
        f"SELECT PARTNER_ID, SUM(REQUESTS) FROM {database}.{api.schema}.{api.name} WHERE {where} "
        f"GROUP BY PARTNER_ID ORDER BY PARTNER_ID",
        params,
    )
    api_rows = cur.fetchall()
    cur.execute(f"SELECT PARTNER_ID, CURRENCY FROM {PARTNERS.fqn(database)}")
    roster = dict(cur.fetchall())
    for partner_id, requests in api_rows:
        entry = partners.setdefault(
            partner_id,
            {
                "calls": 0,
                "billable_seconds": 0,
                "minutes": 0,
                "currency": roster.get(partner_id),
                "gross_minor": 0,
                "api_requests": 0,
            },
        )
        entry["api_requests"] = int(requests)
    if partner is not None and not partners and partner not in roster:
        raise InputError.single("--partner", "", f"no partner {partner!r} in the warehouse")
    return {"period": period, "partners": dict(sorted(partners.items()))}
