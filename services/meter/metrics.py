"""The meter's counters and their Prometheus text exposition (format 0.0.4), without a client library:
a handful of counters, one gauge and one histogram do not need one."""

from __future__ import annotations

import bisect
import threading
from collections import Counter

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.accepted: Counter[str] = Counter()
        self.duplicates: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.rejected: Counter[tuple[str, str]] = Counter()
        self.flushed: Counter[str] = Counter()
        self.warehouse_errors = 0
        self._lock = threading.Lock()  # the flusher thread records writes
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._latency_count = 0

    def reject(self, source: str, reason: str, count: int = 1) -> None:
        self.rejected[(source, reason)] += count

    def warehouse_write(self, seconds: float, rows_by_kind: dict[str, int]) -> None:
        with self._lock:
            self._buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self._latency_sum += seconds
            self._latency_count += 1
            self.flushed.update(rows_by_kind)

    def warehouse_error(self) -> None:
        with self._lock:
            self.warehouse_errors += 1

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
            "# HELP meter_flushed_total Rows written to the warehouse.",
            "# TYPE meter_flushed_total counter",
            *(f'meter_flushed_total{{kind="{k}"}} {n}' for k, n in sorted(self.flushed.items())),
            "# HELP meter_warehouse_errors_total Warehouse writes that failed (retried later).",
            "# TYPE meter_warehouse_errors_total counter",
            f"meter_warehouse_errors_total {self.warehouse_errors}",
            "# HELP meter_warehouse_write_seconds Latency of one batched warehouse write.",
            "# TYPE meter_warehouse_write_seconds histogram",
        ]
        with self._lock:
            cumulative = 0
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self._buckets, strict=True):
                cumulative += count
                label = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f'meter_warehouse_write_seconds_bucket{{le="{label}"}} {cumulative}')
            lines.append(f"meter_warehouse_write_seconds_sum {self._latency_sum}")
            lines.append(f"meter_warehouse_write_seconds_count {self._latency_count}")
        return "\n".join(lines) + "\n"
