"""The meter's counters and their Prometheus text exposition (format 0.0.4), without a client library:
a handful of counters, two gauges and one histogram do not need one."""

from __future__ import annotations

from collections import Counter

from services.meter.flusher import WarehouseStats


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

    def render(self, spool_depth: int) -> str:
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
        ]
        return "\n".join(lines) + "\n"
