"""The meter's counters and their Prometheus text exposition (format 0.0.4), without a client library:
a handful of counters, two gauges and one histogram do not need one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from services.meter.flusher import WarehouseStats

if TYPE_CHECKING:
    from services.meter.spool import Spool
    from services.meter.subaccounts import SubaccountTokens


class Metrics:
    def __init__(self) -> None:
        self.accepted: Counter[str] = Counter()
        self.duplicates: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        # Keys come from fixed vocabularies (sources, reasons, call statuses), never from callers: bounded.
        self.rejected: Counter[tuple[str, str]] = Counter()
        self.warehouse = WarehouseStats()
        """Written by the flusher process (shared memory)."""

    def reject(self, source: str, reason: str, count: int = 1) -> None:
        self.rejected[(source, reason)] += count

    def render(self, spool_depth: int, more: Iterable[str] = ()) -> str:
        lines = [
            "# HELP meter_accepted_total Events made durable in the spool (first time seen).",
            "# TYPE meter_accepted_total counter",
            *(f'meter_accepted_total{{source="{s}"}} {n}' for s, n in sorted(self.accepted.items())),
            "# HELP meter_duplicates_total Events seen before (answered 200, counted once).",
            "# TYPE meter_duplicates_total counter",
            *(f'meter_duplicates_total{{source="{s}"}} {n}' for s, n in sorted(self.duplicates.items())),
            "# HELP meter_ignored_total Valid callbacks that bill nothing (call status other than completed).",
            "# TYPE meter_ignored_total counter",
            *(f'meter_ignored_total{{status="{s}"}} {n}' for s, n in sorted(self.ignored.items())),
            "# HELP meter_rejected_total Requests or entries refused, by reason; nothing was written for them.",
            "# TYPE meter_rejected_total counter",
            *(f'meter_rejected_total{{source="{s}",reason="{r}"}} {n}' for (s, r), n in sorted(self.rejected.items())),
            "# HELP meter_spool_depth Events durable in the spool, not yet in the warehouse.",
            "# TYPE meter_spool_depth gauge",
            f"meter_spool_depth {spool_depth}",
            *self.warehouse.render(),
            *more,
        ]
        return "\n".join(lines) + "\n"


def spool_lines(spool: Spool, free_bytes: int | None) -> list[str]:
    """How full the spool is: what alerts watch (fill ratio near 1, or free space near 0, means 503s)."""
    size = spool.size
    kept = max(0, size.last_seq - size.first_seq + 1 - spool.pending) if size.last_seq else 0
    lines = [
        "# HELP meter_spool_used_bytes Spool database pages in use (pending events and the replay window).",
        "# TYPE meter_spool_used_bytes gauge",
        f"meter_spool_used_bytes {size.used_bytes}",
        "# HELP meter_spool_file_bytes Spool database file and WAL on disk.",
        "# TYPE meter_spool_file_bytes gauge",
        f"meter_spool_file_bytes {size.file_bytes}",
        "# HELP meter_spool_capacity_bytes What the spool may fill (a share of its volume); at it, events get 503.",
        "# TYPE meter_spool_capacity_bytes gauge",
        f"meter_spool_capacity_bytes {spool.capacity_bytes}",
        "# HELP meter_spool_fill_ratio Used bytes over capacity.",
        "# TYPE meter_spool_fill_ratio gauge",
        f"meter_spool_fill_ratio {size.used_bytes / max(1, spool.capacity_bytes)!r}",
        "# HELP meter_spool_pending_limit Pending events at which the spool answers 503.",
        "# TYPE meter_spool_pending_limit gauge",
        f"meter_spool_pending_limit {spool.max_pending}",
        "# HELP meter_spool_replay_events Flushed events still kept to answer resends as duplicates.",
        "# TYPE meter_spool_replay_events gauge",
        f"meter_spool_replay_events {kept}",
        "# HELP meter_spool_write_errors_total Spool writes that failed (disk full, I/O errors); answered 503.",
        "# TYPE meter_spool_write_errors_total counter",
        f"meter_spool_write_errors_total {spool.write_errors}",
    ]
    if free_bytes is not None:
        lines += [
            "# HELP meter_spool_volume_free_bytes Free space on the spool's volume.",
            "# TYPE meter_spool_volume_free_bytes gauge",
            f"meter_spool_volume_free_bytes {free_bytes}",
        ]
    return lines


def twilio_lines(subaccounts: SubaccountTokens) -> list[str]:
    return [
        "# HELP meter_twilio_lookups_total Subaccount token lookups made with the master credentials.",
        "# TYPE meter_twilio_lookups_total counter",
        f"meter_twilio_lookups_total {subaccounts.lookups}",
        "# HELP meter_twilio_lookup_failures_total Lookups that failed (callbacks answered 503 meanwhile).",
        "# TYPE meter_twilio_lookup_failures_total counter",
        f"meter_twilio_lookup_failures_total {subaccounts.lookup_failures}",
    ]


def connection_lines() -> list[str]:
    from services.meter.listener import ConnectionStats

    return [
        "# HELP meter_connections_refused_total Connections closed on arrival: the connection limit was reached.",
        "# TYPE meter_connections_refused_total counter",
        f"meter_connections_refused_total {ConnectionStats.refused}",
        "# HELP meter_requests_timed_out_total Connections closed: a request did not arrive whole in time.",
        "# TYPE meter_requests_timed_out_total counter",
        f"meter_requests_timed_out_total {ConnectionStats.timed_out}",
    ]
