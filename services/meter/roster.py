"""The partners a region meters, with what a minute costs each: the warehouse's PARTNERS table, read at run time.

Nothing about partners is baked into the image. PARTNERS holds each partner's billing terms, upserted by the
partner's stack at `up` (and by `platformctl warehouse sync` locally); the meter meters the rows that are active
(OFFBOARDED_ON is NULL) and homed in its region, at the row's tier, currency and per-minute rate.

Who reads: the flusher process, which holds the warehouse connection (the embedded DuckDB warehouse admits one
process at a time). It reads the roster when it connects, every ROSTER_REFRESH_SECONDS after, and when the HTTP
process asks (a callback for a partner it does not know). It hands the roster over through a file beside the spool
(replaced atomically) and a generation counter in shared memory; the HTTP process reloads the file when the
generation moves. The file also lets a restarted meter serve known partners before the warehouse answers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from foundation.currencies import MINOR_UNITS
from foundation.naming import PARTNER_ID_PATTERN
from foundation.warehouse_schema import PARTNERS

log = logging.getLogger("meter.roster")
ROSTER_REFRESH_SECONDS = 30.0
"""How often the flusher reads PARTNERS again: a partner onboarded (or re-tiered) is metered within this."""
UNKNOWN_PARTNER_REFRESH_SECONDS = 5.0
"""A callback for a partner the meter does not know asks for a refresh at most this often (a stream of callbacks
for a partner that does not exist must not turn into a stream of warehouse queries)."""
UNKNOWN_PARTNER_WAIT_SECONDS = 3.0
"""How long such a callback waits for the refreshed roster before it is answered 404."""


@dataclass(frozen=True)
class Partner:
    id: str
    """Partner id (PARTNER_ID; the Kong consumer's custom_id)."""
    tier: str
    """Billed tier."""
    currency: str
    """Billing currency (ISO 4217)."""
    rate: Decimal
    """Price of one call minute in `currency`."""
    base_fee_minor: int
    """Monthly base fee in minor units."""
    minutes_quota: int | None = None
    """The tier's monthly call minutes (PARTNERS.MONTHLY_MINUTES_QUOTA); None: no usage.threshold events."""
    pending: tuple[str, Decimal, int, str] | None = None
    """A currency change not in effect yet (PARTNERS.PENDING_*): currency, rate, base fee in minor units, and the
    first period (YYYY-MM) it prices."""

    def for_period(self, period: str) -> Partner:
        """The terms that price an event of `period`: the pending ones from their first period on, so that a
        month's usage holds one currency."""
        if self.pending is None or period < self.pending[3]:
            return self
        currency, rate, base_fee_minor, _ = self.pending
        return Partner(self.id, self.tier, currency, rate, base_fee_minor, self.minutes_quota)

    def as_json(self) -> dict[str, Any]:
        pending = self.pending
        return {
            "id": self.id,
            "tier": self.tier,
            "currency": self.currency,
            "rate": f"{self.rate:f}",
            "base_fee_minor": self.base_fee_minor,
            "minutes_quota": self.minutes_quota,
            "pending": None if pending is None else [pending[0], f"{pending[1]:f}", pending[2], pending[3]],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Partner:
        quota = doc.get("minutes_quota")  # absent in a roster file written before it existed
        pending = doc.get("pending")
        return cls(
            doc["id"],
            doc["tier"],
            doc["currency"],
            Decimal(doc["rate"]),
            int(doc["base_fee_minor"]),
            None if quota is None else int(quota),
            None if not pending else (str(pending[0]), Decimal(pending[1]), int(pending[2]), str(pending[3])),
        )


def roster_sql(database: str, region: str | None) -> tuple[str, tuple[str, ...]]:
    """The active PARTNERS rows (of `region`, when given) with the columns the meter prices by."""
    sql = (
        "SELECT PARTNER_ID, TIER, CURRENCY, TO_VARCHAR(RATE), BASE_FEE_MINOR, MONTHLY_MINUTES_QUOTA, "
        "PENDING_CURRENCY, TO_VARCHAR(PENDING_RATE), PENDING_BASE_FEE_MINOR, PENDING_FROM "
        f"FROM {PARTNERS.fqn(database)} "
        "WHERE OFFBOARDED_ON IS NULL"
    )
    if region is None:
        return sql + " ORDER BY PARTNER_ID", ()
    return sql + " AND HOME_REGION = %s ORDER BY PARTNER_ID", (region,)


def read_roster(conn: Any, region: str | None) -> dict[str, Partner]:
    """The roster from the warehouse. A row the meter cannot price (unknown currency, bad rate or id) is left out
    and logged: metering it at a guessed price would be worse than not metering it."""
    sql, params = roster_sql(conn.database, region)
    cur = conn.cursor()
    cur.execute(sql, params)
    roster: dict[str, Partner] = {}
    for row in cur.fetchall():
        partner_id, tier, currency, rate, base_fee_minor, quota, new_currency, new_rate, new_fee, new_from = row
        try:
            if not re.fullmatch(PARTNER_ID_PATTERN, str(partner_id)) or currency not in MINOR_UNITS:
                raise ValueError(f"id {partner_id!r} or currency {currency!r}")
            price = _price(rate)
            minutes_quota = None if quota is None else int(quota)
            if minutes_quota is not None and minutes_quota <= 0:
                minutes_quota = None  # a quota of nothing has no 80 % to pass; metering goes on regardless
            pending = None
            if new_from is not None:
                if new_currency not in MINOR_UNITS or not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", str(new_from)):
                    raise ValueError(f"pending currency {new_currency!r} from {new_from!r}")
                pending = (str(new_currency), _price(new_rate), int(new_fee), str(new_from))
            roster[partner_id] = Partner(
                partner_id, str(tier), currency, price, int(base_fee_minor), minutes_quota, pending
            )
        except (ValueError, TypeError, InvalidOperation) as exc:
            log.error("PARTNERS row %r cannot be metered (%s); its callbacks are answered 404", partner_id, exc)
    return roster


def _price(rate: Any) -> Decimal:
    price = Decimal(str(rate))
    if not price.is_finite() or price < 0:
        raise ValueError(f"rate {rate!r}")
    return price


def roster_path(spool_path: Path) -> Path:
    """The file the flusher hands the roster over in, beside the spool."""
    return spool_path.with_name(spool_path.name + ".roster.json")


def write_roster(path: Path, roster: Mapping[str, Partner]) -> None:
    """Replace the roster file atomically (a reader sees the old roster or the new one, never half)."""
    body = json.dumps([p.as_json() for p in roster.values()], separators=(",", ":"))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_roster(path: Path) -> dict[str, Partner] | None:
    """The roster the flusher last handed over; None when there is none yet (or it cannot be read)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {p.id: p for p in (Partner.from_json(item) for item in doc)}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, InvalidOperation) as exc:
        log.error("the roster file %s cannot be read (%s); waiting for the next refresh", path, exc)
        return None


class RosterFeed:
    """The HTTP process's side: the roster file, reloaded when the flusher bumps `generation`; `request()` asks the
    flusher for a refresh, at most once per UNKNOWN_PARTNER_REFRESH_SECONDS."""

    def __init__(self, path: Path, generation: Any, wanted: Any) -> None:
        self.path = path
        self._generation = generation
        self._wanted = wanted
        self._seen = -1
        self._last_request = -UNKNOWN_PARTNER_REFRESH_SECONDS

    @property
    def generation(self) -> int:
        return int(self._generation.value)

    def changed(self) -> bool:
        return self.generation != self._seen

    def load(self) -> dict[str, Partner] | None:
        self._seen = self.generation
        return load_roster(self.path)

    def pending(self) -> bool:
        """A refresh was asked for and the flusher has not answered yet."""
        return bool(self._wanted.is_set())

    def request(self) -> bool:
        """Ask for a refresh; False when one was asked for too recently."""
        now = time.monotonic()
        if now - self._last_request < UNKNOWN_PARTNER_REFRESH_SECONDS:
            return False
        self._last_request = now
        self._wanted.set()
        return True
