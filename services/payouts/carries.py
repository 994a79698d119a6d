"""Carries: what a settled month owes beyond what moved, handed to a later statement as a signed line."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.payouts import money
from services.payouts.money import Adjustment
from services.payouts.partner_terms import MonthUsage, Terms
from services.payouts.report import CARRIED, OPERATOR_KINDS, PayoutResult


@dataclass
class Carry:
    source: str
    amount_minor: int
    kind: str
    currency: str = ""
    """The source statement's currency: a carry lands only on a statement in the same currency."""
    reason: str = ""
    """An operator line's own reason (kind credit or correction: a line of the source month that its transfer did
    not include); empty for the job's own kinds."""

    def line(self) -> Adjustment:
        if self.kind in OPERATOR_KINDS:
            reason = self.reason
        elif self.kind == "late_usage":
            reason = f"usage metered into {self.source} after its statement"
        else:
            reason = f"not paid in {self.source}, carried"
        return Adjustment(kind=self.kind, amount_minor=self.amount_minor, reason=reason)  # type: ignore[arg-type]

    def followup(self, into: str | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"into": into, "amount_minor": self.amount_minor, "kind": self.kind}
        if self.kind in OPERATOR_KINDS:
            entry["reason"] = self.reason
        return entry


def line_key(line: Any) -> tuple[str, int, str]:
    return (str(line["kind"]), int(line["amount_minor"]), str(line.get("reason") or ""))


def open_carries(month: str, statement: dict[str, Any], usage: list[MonthUsage], existing: set[str]) -> list[Carry]:
    """What a settled month owes beyond what moved (its transfer, or nothing if carried, and the followups that
    landed on a statement that exists): an operator line its transfer did not include keeps its kind and reason;
    the rest is late usage (a paid month) or a carry (a carried month)."""
    currency = statement.get("currency") or ""
    gross = next((u.gross_minor for u in usage if u.currency == currency), 0) or 0
    followups = statement.get("followups") or []
    operator = [f for f in followups if f["kind"] in OPERATOR_KINDS]
    owed = money.payout_minor(gross, Decimal(statement["share"]))
    owed += sum(int(a["amount_minor"]) for a in statement.get("adjustments") or [])
    owed += sum(int(f["amount_minor"]) for f in operator)
    settled_as = statement.get("status") or legacy_status(statement)
    moved = int((statement.get("transfer") or {}).get("amount_minor") or 0) if settled_as != "carried" else 0
    moved += sum(int(f["amount_minor"]) for f in followups if f["into"] in existing)
    open_minor = owed - moved
    carries = []
    for f in operator:
        if f["into"] not in existing:
            carries.append(Carry(month, int(f["amount_minor"]), f["kind"], currency, str(f.get("reason") or "")))
            open_minor -= int(f["amount_minor"])
    if open_minor:
        carries.append(Carry(month, open_minor, "carry" if settled_as == "carried" else "late_usage", currency))
    return carries


def describe_carries(carries: list[Carry]) -> str:
    return ", ".join(f"{c.amount_minor} minor units more ({c.kind.replace('_', ' ')})" for c in carries)


def legacy_status(statement: dict[str, Any]) -> str:
    """Statements written before `status` existed: a transfer made it paid; none left it to be retried."""
    transfer = statement.get("transfer")
    if transfer is None:
        return "held"
    return "external" if transfer.get("method") == "bank_transfer" else "paid"


def waiting_result(terms: Terms, carry: Carry, period: str) -> PayoutResult:
    """An open amount that no statement of this run took. Said, and counted as not paid (exit 1) when no later
    statement can come for it: the partner is offboarded by the run's period, or its currency has no documented
    Stripe minimum."""
    currency = carry.currency or terms.currency
    offboarded = bool(terms.offboarded_on) and str(terms.offboarded_on)[:7] <= period
    kind = carry.kind.replace("_", " ")
    reason = f"{money.format_minor(carry.amount_minor, currency)} owed from {carry.source} ({kind})"
    attention = carry.amount_minor > 0 and (offboarded or currency not in money.STRIPE_MINIMUM_MINOR)
    if attention:
        why = (
            f"offboarded on {terms.offboarded_on}: no later statement will take it"
            if offboarded
            else f"Stripe documents no minimum for {currency}"
        )
        hold = money.below_minimum(carry.amount_minor, currency) or "not payable by transfer"
        reason += (
            f" is NOT paid: {hold}; {why}. Pay it by hand and write it off with an adjustments line "
            f"(kind correction, -{carry.amount_minor}) for {period}, or set payout_method bank_transfer"
        )
    else:
        reason += " goes onto the next new statement"
    return PayoutResult(
        terms.partner,
        CARRIED,
        {},
        reason=reason,
        due_minor=carry.amount_minor,
        period=carry.source,
        attention=attention,
    )
