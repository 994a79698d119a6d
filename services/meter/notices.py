"""The meter's webhook events: `call.completed` per metered call and `usage.threshold` at 80 % and 100 % of a
partner's monthly minutes, produced from the durable side and posted to the region's webhooks service.

Where they come from: the flusher, after a batch is in the warehouse, writes the batch's events into the spool's
`outbox` table, then marks the batch flushed (spool.SpoolReader.mark_flushed). So an event exists once its usage is
in the warehouse: a `kill -9` before the mark leaves both to be done again (the MERGE ignores the rows written twice,
the outbox ignores ids it holds), and a duplicate Twilio callback never reaches the outbox at all (the spool
answered it as a duplicate). Ids are derived from what the event is about
(the CallSid; partner, period and threshold), and the webhooks service deduplicates by id, so a post repeated
after a lost answer is one event.

Who posts: `OutboxPublisher`, a thread of the flusher process (never the HTTP process: a request's latency never
includes a webhooks call). A webhooks outage leaves the events in the outbox, retried with backoff until the
service takes them; an event the service refuses (4xx: a bug, not an outage) is logged and set aside, never retried
forever. What the outbox may hold unsent is bounded (OUTBOX_MAX_PENDING): past it, during a long outage, new
call.completed events are counted and logged as not produced rather than let the spool fill up - the meter's
acknowledgements must never wait for the webhooks service.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from foundation.errors import InputError, PlatformError
from foundation.warehouse_schema import USAGE_EVENTS
from services.meter.roster import Partner
from services.meter.spool import Notice, open_db
from services.webhooks.producer import TOKEN_ENV, URL_ENV, publish

log = logging.getLogger("meter.notices")
THRESHOLDS = (80, 100)
"""Percent of the monthly minutes quota at which a partner gets usage.threshold (the event schema's enum)."""
OUTBOX_MAX_PENDING = 200_000
"""Unsent events the outbox may hold (~70 MB of spool) before new call.completed events are not produced."""
THRESHOLD_KEEP_SECONDS = 70 * 86400
"""How long a sent usage.threshold id is kept: past its period's end, so the same threshold is never posted again
(a call.completed id is not kept: the spool's CallSid dedupe already stops a second one)."""
RETRY_MIN_SECONDS = 1.0
RETRY_MAX_SECONDS = 300.0
PUBLISH_TIMEOUT = 5.0
ROUND = 200
"""Events taken per round of the publisher."""
PRUNE_EVERY = 3600.0
UNSENT_EVERY = 2.0
"""How often the outbox's unsent count (a gauge of /metrics) is taken."""
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def webhooks_configured(env: Mapping[str, str]) -> bool:
    return bool(env.get(URL_ENV) and env.get(TOKEN_ENV))


def _notice(event: dict[str, Any], keep_until: float | None = None) -> Notice:
    return Notice(event["id"], orjson.dumps(event).decode(), keep_until)


def call_completed(row: Mapping[str, Any]) -> Notice | None:
    """The call.completed event of a spooled call row; None when the row cannot make one (a spool written before the
    meter kept the called number, or a To that is not an E.164 number)."""
    number = row.get("CALLED_NUMBER")
    if not isinstance(number, str) or not _E164.fullmatch(number):
        return None
    seconds = int(row["BILLABLE_SECONDS"])
    started = dt.datetime.fromisoformat(str(row["CALL_STARTED_AT"]))
    completed = (started + dt.timedelta(seconds=seconds)).astimezone(dt.UTC)
    return _notice(
        {
            "id": f"call.completed:{row['EVENT_ID']}",
            "type": "call.completed",
            "partner": row["PARTNER_ID"],
            "data": {
                "call_id": row["EVENT_ID"],
                "number": number,
                # Twilio's CallDuration is the one length a status callback gives; the meter bills it whole.
                "duration_seconds": seconds,
                "billable_seconds": seconds,
                "completed_at": completed.isoformat().replace("+00:00", "Z"),
            },
        }
    )


def thresholds_passed(partner: str, period: str, used_minutes: int, quota: int, now: float) -> list[Notice]:
    """usage.threshold for every threshold `used_minutes` has reached (80 before 100)."""
    return [
        _notice(
            {
                "id": f"usage.threshold:{partner}:{period}:{percent}",
                "type": "usage.threshold",
                "partner": partner,
                "data": {
                    "period": period,
                    "threshold_percent": percent,
                    "used_minutes": used_minutes,
                    "quota_minutes": quota,
                },
            },
            keep_until=now + THRESHOLD_KEEP_SECONDS,
        )
        for percent in THRESHOLDS
        if used_minutes * 100 >= quota * percent
    ]


def usage_sql(database: str, partners: int, periods: int) -> str:
    """Minutes per partner and period so far, for the pairs a batch touched (bound: partner ids, then periods)."""
    return (
        f"SELECT PARTNER_ID, PERIOD, SUM(CAST(MINUTES AS NUMBER(38,0))) FROM {USAGE_EVENTS.fqn(database)} "
        f"WHERE PARTNER_ID IN ({', '.join(['%s'] * partners)}) AND PERIOD IN ({', '.join(['%s'] * periods)}) "
        "GROUP BY PARTNER_ID, PERIOD"
    )


def batch_notices(
    conn: Any, call_rows: Iterable[str], roster: Mapping[str, Partner], room: int, now: float
) -> tuple[list[Notice], int]:
    """The events of a batch just written to the warehouse: call.completed per call (at most `room` of them) and
    usage.threshold for the partners whose month the batch moved past 80 or 100 % of their quota (reads the
    warehouse: a failure raises, and the batch is written again later). Returns (events, call events left out)."""
    notices: list[Notice] = []
    touched: set[tuple[str, str]] = set()
    left_out = 0
    for text in call_rows:
        row = orjson.loads(text)
        touched.add((row["PARTNER_ID"], row["PERIOD"]))
        notice = call_completed(row)
        if notice is None:
            continue
        if len(notices) >= room:
            left_out += 1
            continue
        notices.append(notice)
    quotas = {p: roster[p].minutes_quota for p, _ in touched if p in roster and roster[p].minutes_quota}
    if quotas:
        periods = sorted({period for p, period in touched if p in quotas})
        cur = conn.cursor()
        cur.execute(usage_sql(conn.database, len(quotas), len(periods)), (*sorted(quotas), *periods))
        for partner, period, minutes in sorted(cur.fetchall()):
            if (partner, period) in touched:
                notices += thresholds_passed(partner, period, int(minutes or 0), int(quotas[partner] or 0), now)
    return notices, left_out


class OutboxPublisher:
    """Posts the outbox's events in order, oldest first; waits and retries while the webhooks service is down."""

    def __init__(
        self,
        spool_path: Path,
        env: Mapping[str, str],
        post: Callable[..., str] = publish,
        clock: Callable[[], float] = time.time,
        stats: Any = None,
    ) -> None:
        self._db = open_db(spool_path)
        self._db.execute("PRAGMA synchronous=NORMAL")  # a lost "sent" only posts an event again: a duplicate
        self._env = dict(env)
        self._post = post
        self._clock = clock
        self._last_prune = 0.0
        self._failures = 0
        self._resume_at = 0.0
        self.sent = 0
        self.refused = 0
        self._stats = stats
        """flusher.WarehouseStats (shared with /metrics), or None."""
        self._last_count = 0.0

    def pending(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM outbox WHERE sent IS NULL").fetchone()[0])

    def publish_due(self, stopping: Callable[[], bool] = lambda: False) -> int | None:
        """Post the events that are due: how many were taken, or None when the service could not be reached (they
        wait, and the next try comes after a backoff that doubles per failed try, up to RETRY_MAX_SECONDS)."""
        now = self._clock()
        if now < self._resume_at:
            return None
        rows = self._db.execute(
            "SELECT seq, event_id, body FROM outbox WHERE sent IS NULL ORDER BY seq LIMIT ?", (ROUND,)
        ).fetchall()
        taken = 0
        for seq, event_id, body in rows:
            if stopping():  # a draining flusher waits for one post at most; the rest stays in the outbox
                break
            try:
                self._post(orjson.loads(body), self._env, timeout=PUBLISH_TIMEOUT, attempts=1)
            except InputError as exc:
                # Refused (4xx) or not matching its schema: a producer bug; retrying would never succeed.
                self.refused += 1
                self._count("refused")
                log.error("the webhooks service refused event %s, set aside: %s", event_id, exc)
                self._db.execute("UPDATE outbox SET sent = ?, refused = ? WHERE seq = ?", (now, str(exc)[:500], seq))
                continue
            except PlatformError as exc:
                self._db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", (seq,))
                self._failures += 1
                self._count("failed")
                wait = min(RETRY_MAX_SECONDS, RETRY_MIN_SECONDS * 2 ** min(self._failures - 1, 16))
                self._resume_at = self._clock() + wait
                if self._failures == 1:
                    log.warning("webhooks service unavailable, %d events wait in the outbox: %s", self.pending(), exc)
                return None
            self._done(seq)
            taken += 1
        if self._failures and taken:
            log.info("webhooks service reachable again after %d failed tries; posting the outbox", self._failures)
        if taken:
            self._failures = 0
        return taken

    def _count(self, what: str, count: int = 1) -> None:
        if self._stats is not None:
            self._stats.webhooks(what, count)

    def _done(self, seq: int) -> None:
        self.sent += 1
        self._count("sent")
        self._db.execute("DELETE FROM outbox WHERE seq = ? AND keep_until IS NULL", (seq,))
        self._db.execute("UPDATE outbox SET sent = ? WHERE seq = ?", (self._clock(), seq))

    def prune(self) -> int:
        """Forget sent ids past their keep time."""
        return int(
            self._db.execute(
                "DELETE FROM outbox WHERE sent IS NOT NULL AND COALESCE(keep_until, 0) < ?", (self._clock(),)
            ).rowcount
        )

    def run(self, stopping: Callable[[], bool], sleep: Callable[[float], None], interval: float = 0.5) -> None:
        """Post until `stopping()`. A spool error (disk full) is logged and retried: the publisher never dies."""
        while not stopping():
            try:
                taken = self.publish_due(stopping)
                if self._stats is not None and time.monotonic() - self._last_count > UNSENT_EVERY:
                    self._stats.webhooks("unsent", self.pending())
                    self._last_count = time.monotonic()
                if time.monotonic() - self._last_prune > PRUNE_EVERY:
                    self.prune()
                    self._last_prune = time.monotonic()
            except sqlite3.Error as exc:
                log.warning("the outbox could not be read or written, retrying: %s", exc)
                taken = None
            except Exception:  # a bug must not end the thread silently while events pile up: said, retried later
                log.exception("posting the outbox failed; retrying")
                taken = None
                self._resume_at = self._clock() + RETRY_MAX_SECONDS
            if not taken or taken < ROUND:
                sleep(interval)

    def close(self) -> None:
        self._db.close()
