"""What a payouts run says: the status of each month it looked at (`PayoutResult`) and the run's `Report`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PAID = "paid"
"""A transfer was made in this run."""
REPAIRED = "repaired"
"""The transfer existed (an earlier run crashed before the statement write); the statement is written now."""
ALREADY_PAID = "already paid"
"""Settled by an earlier run; nothing new to pay."""
EXTERNAL = "external"
"""Paid outside Stripe (payout_method bank_transfer): the statement is written, finance pays it."""
CARRIED = "carried"
"""Too small to transfer, a debt, or a currency without a documented minimum: the amount goes onto a later
statement as a carry line."""
HELD = "held"
"""The partner's Stripe account cannot receive transfers yet (none, or onboarding unfinished): the statement says
why; every later run retries the month."""
FAILED = "failed"
"""Stripe refused, could not be reached, or answered something other than what was asked; or the usage cannot be
stated. Retried by every later run."""
WOULD_PAY = "would pay"
"""Dry run."""

SETTLED = frozenset({"paid", "external", "carried"})
"""Statement statuses of a settled month (the others, pending/held/failed, are retried)."""
OPERATOR_KINDS = frozenset({"credit", "correction"})
"""Adjustment kinds an operator writes (the others, carry, late_usage and integration, the job writes)."""


@dataclass
class PayoutResult:
    """One payee-month's result: its status, its statement as written, why."""

    partner: str
    status: str
    statement: dict[str, Any]
    reason: str = ""
    location: str = ""
    due_minor: int = 0
    period: str = ""
    warnings: list[str] = field(default_factory=list)
    attention: bool = False
    """Carried but never payable as it stands (a currency without a documented minimum): counted as not paid."""

    @property
    def unpaid(self) -> bool:
        return self.status in (HELD, FAILED) or self.attention

    def as_dict(self) -> dict[str, Any]:
        return {
            "partner": self.partner,
            "period": self.period,
            "status": self.status,
            "reason": self.reason,
            "due_minor": self.due_minor,
            "location": self.location,
            "warnings": self.warnings,
            "statement": self.statement,
        }


@dataclass
class Report:
    period: str
    region: str | None
    statements: str
    dry_run: bool
    outcomes: list[PayoutResult]
    developers: list[PayoutResult] = field(default_factory=list)
    """Marketplace developers' months (services.payouts.developers); `partner` reads `developer:<id>`."""
    webhooks: list[str] = field(default_factory=list)
    """Payout events that could not be sent to the webhooks service (the run's money is unaffected)."""

    @property
    def not_paid(self) -> list[PayoutResult]:
        return [o for o in (*self.outcomes, *self.developers) if o.unpaid]

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "region": self.region,
            "statements": self.statements,
            "dry_run": self.dry_run,
            "partners": [o.as_dict() for o in self.outcomes],
            "developers": [o.as_dict() for o in self.developers],
            "not_paid": sorted({o.partner for o in self.not_paid}),
            "webhooks": self.webhooks,
        }
