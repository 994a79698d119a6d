"""The webhooks service's Prometheus text exposition (format 0.0.4); like the meter's, without a client library."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)


class Histogram:
    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def render(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        lines, running = [], 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            lines.append(f'{name}_bucket{{{labels}{sep}le="{bound}"}} {running}')
        lines.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.n}')
        lines.append(f"{name}_sum{{{labels}}} {self.total:.6f}" if labels else f"{name}_sum {self.total:.6f}")
        lines.append(f"{name}_count{{{labels}}} {self.n}" if labels else f"{name}_count {self.n}")
        return lines


class Metrics:
    def __init__(self) -> None:
        self.events: Counter[str] = Counter()
        """new | duplicate | conflict | invalid, by what POST /events answered."""
        self.delivered = 0
        self.failed: Counter[str] = Counter()
        """Attempts that did not deliver, by outcome (fixed vocabulary)."""
        self.dead_lettered = 0
        self.disabled: Counter[str] = Counter()
        self.latency: dict[str, Histogram] = {}
        """Per endpoint id: attempt duration. Endpoint ids are ours (ep_...), bounded by the endpoints that exist."""
        self.first_attempt = Histogram((0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
        """Event accepted -> first attempt started."""

    def render(self, counts: dict[str, int], in_flight: int, endpoint_count: Callable[[], int]) -> str:
        lines = [
            "# HELP webhooks_events_total Events producers posted, by answer.",
            "# TYPE webhooks_events_total counter",
            *(f'webhooks_events_total{{result="{k}"}} {v}' for k, v in sorted(self.events.items())),
            "# HELP webhooks_messages Messages in the store by state (pending = queued).",
            "# TYPE webhooks_messages gauge",
            *(f'webhooks_messages{{state="{k}"}} {v}' for k, v in sorted(counts.items())),
            "# HELP webhooks_in_flight Attempts in flight.",
            "# TYPE webhooks_in_flight gauge",
            f"webhooks_in_flight {in_flight}",
            "# HELP webhooks_delivered_total Messages delivered (2xx).",
            "# TYPE webhooks_delivered_total counter",
            f"webhooks_delivered_total {self.delivered}",
            "# HELP webhooks_failed_attempts_total Attempts that did not deliver, by outcome.",
            "# TYPE webhooks_failed_attempts_total counter",
            *(f'webhooks_failed_attempts_total{{outcome="{k}"}} {v}' for k, v in sorted(self.failed.items())),
            "# HELP webhooks_dead_lettered_total Messages that ran out of attempts (or lost their endpoint).",
            "# TYPE webhooks_dead_lettered_total counter",
            f"webhooks_dead_lettered_total {self.dead_lettered}",
            "# HELP webhooks_endpoints_disabled_total Endpoints the service disabled, by reason.",
            "# TYPE webhooks_endpoints_disabled_total counter",
            *(f'webhooks_endpoints_disabled_total{{reason="{k}"}} {v}' for k, v in sorted(self.disabled.items())),
            "# HELP webhooks_endpoints Endpoints registered.",
            "# TYPE webhooks_endpoints gauge",
            f"webhooks_endpoints {endpoint_count()}",
            "# HELP webhooks_first_attempt_delay_seconds From an event's acceptance to its first attempt.",
            "# TYPE webhooks_first_attempt_delay_seconds histogram",
            *self.first_attempt.render("webhooks_first_attempt_delay_seconds"),
            "# HELP webhooks_attempt_duration_seconds Attempt duration per endpoint.",
            "# TYPE webhooks_attempt_duration_seconds histogram",
        ]
        for endpoint_id, histogram in sorted(self.latency.items()):
            lines += histogram.render("webhooks_attempt_duration_seconds", f'endpoint="{endpoint_id}"')
        return "\n".join(lines) + "\n"
