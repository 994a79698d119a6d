"""The monthly payouts job: each partner's statements from the region's warehouse, at most one Stripe transfer each.

Inputs are the warehouse alone (the job runs from an image with no repository): terms from RAW.PARTNERS, gross from
ANALYTICS.USAGE_BY_PERIOD.GROSS_MINOR (the one definition of gross), plus the statements already stored.

A run for period P settles, per partner, every month up to P that is not settled yet, oldest first:
- a month with usage and no statement (a run that never happened) is stated now;
- a month whose statement is pending, held or failed is retried: its own transfer, idempotency key
  `payout:<partner>:<month>`; Stripe is asked first whether that transfer exists (a run that died after the transfer
  is repaired, never paid twice);
- a settled month (paid, external, carried) that now owes a different amount (late usage, an amount carried on)
  hands the difference to the first month whose statement does not exist yet, as a signed line; the settled
  statement records where it went (`followups`), written before the receiving statement, so a crash between the
  two repeats the hand-over rather than losing or doubling it.
Nothing owed is dropped: held (no account, account not onboarded) and failed months stay open and are retried by
every later run; an amount too small to transfer, a debt, or a currency Stripe documents no minimum for is carried.
Usage that no run can pay (no PARTNERS row, two currencies in one month) is reported by every run that sees it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from foundation.errors import InputError
from foundation.warehouse_schema import PARTNERS, USAGE_EVENTS, view
from services.payouts import money
from services.payouts.money import Adjustment, AdjustmentLine
from services.payouts.statements import StatementStore
from services.payouts.stripe_gateway import (
    PARTNER_METADATA,
    StripeError,
    StripeGateway,
    transfer_idempotency_key,
    transfer_mismatches,
    transfer_request,
    transfers_capability,
)

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
OPERATOR_KINDS = frozenset({"credit", "correction"})
"""Adjustment kinds an operator writes (the others, carry and late_usage, the job writes)."""
"""Statement statuses of a settled month (the others, pending/held/failed, are retried)."""


@dataclass
class Outcome:
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
    outcomes: list[Outcome]
    webhooks: list[str] = field(default_factory=list)
    """Payout events that could not be sent to the webhooks service (the run's money is unaffected)."""

    @property
    def not_paid(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.unpaid]

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "region": self.region,
            "statements": self.statements,
            "dry_run": self.dry_run,
            "partners": [o.as_dict() for o in self.outcomes],
            "not_paid": sorted({o.partner for o in self.not_paid}),
            "webhooks": self.webhooks,
        }


@dataclass(frozen=True)
class Terms:
    """A partner's row of RAW.PARTNERS."""

    partner: str
    tier: str
    currency: str
    share: Decimal
    payout_method: str
    stripe_account: str | None
    home_region: str
    offboarded_on: str | None
    problem: str = ""
    """Why the row cannot be used (empty: it can)."""


@dataclass(frozen=True)
class MonthUsage:
    """One partner's usage of one period in one currency (ANALYTICS.USAGE_BY_PERIOD)."""

    currency: str
    minutes: int
    gross_minor: int | None
    """USAGE_BY_PERIOD.GROSS_MINOR; None for a currency the warehouse has no minor-unit entry for."""
    rates: tuple[str, ...]


def read_terms(conn: Any) -> dict[str, Terms]:
    cur = conn.cursor()
    cur.execute(
        "SELECT PARTNER_ID, TIER, CURRENCY, CAST(REVENUE_SHARE AS VARCHAR), PAYOUT_METHOD, STRIPE_ACCOUNT, "
        f"HOME_REGION, CAST(OFFBOARDED_ON AS VARCHAR) FROM {PARTNERS.fqn(conn.database)}"
    )
    terms = {}
    for partner, tier, currency, share, method, account, home, offboarded in cur.fetchall():
        problem = ""
        try:
            parsed = Decimal(str(share))
        except InvalidOperation:
            parsed = Decimal(-1)
        if not Decimal(0) <= parsed <= Decimal(1):
            problem = f"its PARTNERS row has REVENUE_SHARE {share!r}, not a fraction between 0 and 1"
        elif method not in ("stripe_connect", "bank_transfer"):
            problem = f"its PARTNERS row has PAYOUT_METHOD {method!r}"
        terms[partner] = Terms(
            partner, tier, currency, parsed, method, account or None, home, offboarded or None, problem
        )
    return terms


def read_usage(conn: Any, through: str) -> dict[str, dict[str, list[MonthUsage]]]:
    """partner -> period -> usage per currency, for every period up to `through`, from USAGE_BY_PERIOD."""
    database = conn.database
    by_period = view("USAGE_BY_PERIOD")
    cur = conn.cursor()
    cur.execute(
        f"SELECT DISTINCT PARTNER_ID, PERIOD, CURRENCY, CAST(RATE AS VARCHAR) FROM {USAGE_EVENTS.fqn(database)} "
        "WHERE PERIOD <= %s",
        (through,),
    )
    rates: dict[tuple[str, str, str], set[Decimal]] = {}
    for partner, period, currency, rate in cur.fetchall():
        rates.setdefault((partner, period, currency), set()).add(Decimal(str(rate)).normalize())
    cur.execute(
        "SELECT PARTNER_ID, PERIOD, CURRENCY, MINUTES, GROSS_MINOR FROM "
        f"{database}.{by_period.schema}.{by_period.name} WHERE PERIOD <= %s ORDER BY PARTNER_ID, PERIOD, CURRENCY",
        (through,),
    )
    usage: dict[str, dict[str, list[MonthUsage]]] = {}
    for partner, period, currency, minutes, gross in cur.fetchall():
        shown = tuple(f"{r:f}" for r in sorted(rates.get((partner, period, currency), ())))
        usage.setdefault(partner, {}).setdefault(period, []).append(
            MonthUsage(currency, int(minutes), None if gross is None else int(gross), shown)
        )
    return usage


def _transfer_record(transfer: dict[str, Any]) -> dict[str, Any]:
    metadata = transfer.get("metadata") or {}
    return {
        "id": transfer["id"],
        "amount_minor": int(transfer["amount"]),
        "currency": str(transfer["currency"]).upper(),
        "destination": transfer["destination"],
        "transfer_group": transfer.get("transfer_group"),
        "idempotency_key": transfer_idempotency_key(metadata.get(PARTNER_METADATA, ""), metadata.get("period", "")),
        "created": dt.datetime.fromtimestamp(int(transfer.get("created") or 0), dt.UTC).isoformat(),
    }


def _answer(transfer: dict[str, Any]) -> dict[str, Any]:
    """What Stripe said, as recorded on a statement whose transfer did not match the request."""
    keys = ("id", "object", "amount", "currency", "destination", "transfer_group", "metadata", "reversed")
    return {k: transfer.get(k) for k in keys}


@dataclass
class _Carry:
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


def _line_key(line: Any) -> tuple[str, int, str]:
    return (str(line["kind"]), int(line["amount_minor"]), str(line.get("reason") or ""))


def _open_carries(month: str, statement: dict[str, Any], usage: list[MonthUsage], existing: set[str]) -> list[_Carry]:
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
    settled_as = statement.get("status") or _legacy_status(statement)
    moved = int((statement.get("transfer") or {}).get("amount_minor") or 0) if settled_as != "carried" else 0
    moved += sum(int(f["amount_minor"]) for f in followups if f["into"] in existing)
    open_minor = owed - moved
    carries = []
    for f in operator:
        if f["into"] not in existing:
            carries.append(_Carry(month, int(f["amount_minor"]), f["kind"], currency, str(f.get("reason") or "")))
            open_minor -= int(f["amount_minor"])
    if open_minor:
        carries.append(_Carry(month, open_minor, "carry" if settled_as == "carried" else "late_usage", currency))
    return carries


def _describe(carries: list[_Carry]) -> str:
    return ", ".join(f"{c.amount_minor} minor units more ({c.kind.replace('_', ' ')})" for c in carries)


@dataclass
class _Run:
    period: str
    region: str | None
    store: StatementStore
    gateway: StripeGateway | None
    dry_run: bool
    now: dt.datetime
    lines: dict[str, list[Adjustment]]
    listed_accounts: dict[str, dict[str, Any]] | None = None
    accounts: dict[str, tuple[str | None, dict[str, Any] | None]] = field(default_factory=dict)

    # ------------------------------------------------------------------ per partner

    def partner(self, terms: Terms, usage: dict[str, list[MonthUsage]], stated: set[str]) -> list[Outcome]:
        partner = terms.partner
        statements: dict[str, dict[str, Any]] = {}
        for month in sorted(m for m in stated if m <= self.period):
            found = self.store.get(month, partner)
            if found is not None:
                if (found.get("partner"), found.get("period")) != (partner, month):
                    raise InputError.single(
                        f"{self.store.where}/{month}/{partner}.json",
                        "partner",
                        f"is the statement of {found.get('partner')!r} for {found.get('period')!r}, not of "
                        f"{partner!r} for {month}: a statement is never moved or copied between partners or months",
                    )
                statements[month] = found
        existing = set(statements) | {m for m in stated if m > self.period}
        months = sorted({m for m in usage if m <= self.period} | set(statements))
        if self.period not in months and self.lines.get(partner):
            months.append(self.period)
        outcomes: list[Outcome] = []
        carries: list[_Carry] = []
        for month in months:
            statement = statements.get(month)
            if statement is not None and statement.get("status", _legacy_status(statement)) in SETTLED:
                outcome = self.settled(terms, month, statement, usage.get(month, []), existing, carries)
            else:
                outcome = self._settle_taking(
                    terms, month, statement, usage.get(month, []), carries, existing, statements
                )
                if outcome.status in (CARRIED, PAID, REPAIRED, EXTERNAL):
                    # Settled now: what it owes beyond its due (all of it, if carried) is open from here on.
                    opened = _open_carries(month, outcome.statement, usage.get(month, []), existing)
                    carries += opened
                    if opened and outcome.status != CARRIED:
                        outcome.reason += f"; {_describe(opened)} go onto the next new statement"
            if outcome is not None:
                outcomes.append(outcome)
        if carries and self.period not in months and self.period not in existing:
            outcomes += self._land(terms, carries, existing, statements)
        shown = {o.period for o in outcomes}
        for carry in carries:  # nothing unstated in this run to take them: the next run's first new statement will
            if carry.source in shown:
                continue
            outcomes.append(self._waiting(terms, carry))
        return outcomes

    def _settle_taking(
        self,
        terms: Terms,
        month: str,
        statement: dict[str, Any] | None,
        usage: list[MonthUsage],
        carries: list[_Carry],
        existing: set[str],
        statements: dict[str, dict[str, Any]],
        currency: str | None = None,
    ) -> Outcome:
        """settle(); a new statement takes the open carries in its currency (the others wait for one in theirs)."""
        if statement is not None:
            return self.settle(terms, month, statement, usage, [], existing, statements, currency)
        own = currency or (usage[0].currency if len(usage) == 1 else terms.currency)
        taken = [c for c in carries if c.currency in ("", own)]
        offered = list(taken)
        outcome = self.settle(terms, month, None, usage, taken, existing, statements, currency)
        if not taken:  # handed over (or shown, in a dry run): no longer open in this run
            carries[:] = [c for c in carries if all(c is not o for o in offered)]
        return outcome

    def _land(
        self, terms: Terms, carries: list[_Carry], existing: set[str], statements: dict[str, dict[str, Any]]
    ) -> list[Outcome]:
        """Open carries and no new statement of this run to take them (no usage in the period: an offboarded
        partner, a quiet month): the period's statement is made for them when their sum can be paid, so that
        nothing owed waits for usage that may never come. Its transfer is the period's own (key
        `payout:<partner>:<period>`), so a rerun finds it rather than paying again. When the sum cannot be paid yet,
        no statement is made: the carries stay on their source statements and wait (see _waiting)."""
        outcomes: list[Outcome] = []
        for currency in sorted({c.currency or terms.currency for c in carries}):
            group = [c for c in carries if (c.currency or terms.currency) == currency]
            total = sum(c.amount_minor for c in group)
            payable = total > 0 and (
                terms.payout_method == "bank_transfer" or money.below_minimum(total, currency) is None
            )
            if not payable or self.period in existing:
                continue
            outcomes.append(self._settle_taking(terms, self.period, None, [], carries, existing, statements, currency))
            break  # one statement per partner and period: a carry in another currency waits for one in its own
        return outcomes

    def _waiting(self, terms: Terms, carry: _Carry) -> Outcome:
        """An open amount that no statement of this run took. Said, and counted as not paid (exit 1) when no later
        statement can come for it: the partner is offboarded by the run's period, or its currency has no documented
        Stripe minimum."""
        currency = carry.currency or terms.currency
        offboarded = bool(terms.offboarded_on) and str(terms.offboarded_on)[:7] <= self.period
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
                f"(kind correction, -{carry.amount_minor}) for {self.period}, or set payout_method bank_transfer"
            )
        else:
            reason += " goes onto the next new statement"
        return Outcome(
            terms.partner,
            CARRIED,
            {},
            reason=reason,
            due_minor=carry.amount_minor,
            period=carry.source,
            attention=attention,
        )

    def settled(
        self,
        terms: Terms,
        month: str,
        statement: dict[str, Any],
        usage: list[MonthUsage],
        existing: set[str],
        carries: list[_Carry],
    ) -> Outcome | None:
        """A settled month: hand any difference between what it owes now and what moved to a later statement."""
        partner = terms.partner
        currency = statement.get("currency")
        other = sorted({u.currency for u in usage} - {currency})
        if other:
            return Outcome(
                partner,
                FAILED,
                statement,
                period=month,
                reason=f"usage in {', '.join(other)} metered into {month} after it was stated in {currency}; "
                "not paid: settle it with an adjustments line",
            )
        settled_as = statement.get("status") or _legacy_status(statement)
        opened = _open_carries(month, statement, usage, existing)
        carries += opened
        if month != self.period:
            return None
        status = ALREADY_PAID if settled_as in ("paid", "external") else CARRIED
        reason = "already paid" if status == ALREADY_PAID else "already stated: carried"
        if opened:
            reason += f"; {_describe(opened)} go onto the next new statement"
        outcome = Outcome(partner, status, statement, reason=reason, location=self.store.where, period=month)
        recorded = Counter(_line_key(a) for a in statement.get("adjustments") or [])
        recorded += Counter(_line_key(f) for f in statement.get("followups") or [] if f["kind"] in OPERATOR_KINDS)
        given = Counter(_line_key(a.model_dump()) for a in self.lines.get(partner, []))
        if given - recorded:  # lines the month has not recorded (the same file again is no news)
            outcome.attention = True  # said, and exit 1: the lines were meant to be paid
            outcome.warnings.append(
                f"{month} is settled: its --adjustments lines were NOT applied; give them to a later period"
            )
        return outcome

    def settle(
        self,
        terms: Terms,
        month: str,
        previous: dict[str, Any] | None,
        usage: list[MonthUsage],
        carries: list[_Carry],
        existing: set[str],
        statements: dict[str, dict[str, Any]],
        currency_of_carries: str | None = None,
    ) -> Outcome:
        """State (or restate) one unsettled month and pay it if it can be paid. `currency_of_carries`: the currency
        of a statement made only for carries (no usage)."""
        partner = terms.partner
        currencies = sorted({u.currency for u in usage})
        if len(currencies) > 1:
            return Outcome(
                partner,
                FAILED,
                previous or {},
                period=month,
                reason=f"usage in {' and '.join(currencies)} in {month}: a statement pays one currency; nothing paid "
                "for this month (its terms' currency changed within it?): settle it with an adjustments line",
            )
        current = usage[0] if usage else None
        if current is not None and current.gross_minor is None:
            return Outcome(
                partner, FAILED, previous or {}, period=month, reason=f"no minor-unit entry for {current.currency}"
            )
        if terms.problem:
            return Outcome(partner, FAILED, previous or {}, period=month, reason=terms.problem)
        if previous is not None and current is not None and previous.get("currency") not in (None, current.currency):
            return Outcome(
                partner,
                FAILED,
                previous,
                period=month,
                reason=f"{month} was stated in {previous.get('currency')}, its usage is now in {current.currency}",
            )
        currency = (
            current.currency if current else (previous or {}).get("currency") or currency_of_carries or terms.currency
        )
        share = Decimal(previous["share"]) if previous else terms.share
        followups = list((previous or {}).get("followups") or [])
        if previous is not None and previous.get("requested"):
            # Its transfer was requested: the statement keeps the figures of that request, so that what it says is
            # due is what its key `payout:<partner>:<month>` moved (or will move: Stripe refuses a key reused with
            # other parameters). Usage metered since, and lines given since, are owed beyond it: they go onto the
            # next new statement once this month is settled (a run's lines are recorded here as followups not
            # landed yet, `into` null, and replace the ones an earlier run recorded).
            statement: dict[str, Any] = {
                "minutes": previous.get("minutes") or 0,
                "rate": previous.get("rate") or "0",
                "gross_minor": previous["gross_minor"],
                "payout_minor": previous["payout_minor"],
                "adjustments": previous.get("adjustments") or [],
                "due_minor": int(previous["requested"].get("amount", previous.get("due_minor") or 0)),
            }
            own = self.lines.get(partner, []) if month == self.period else []
            if own:
                landed = [f for f in followups if f["into"] in existing]
                recorded = Counter(_line_key(a) for a in previous.get("adjustments") or [])
                recorded += Counter(_line_key(f) for f in landed if f["kind"] in OPERATOR_KINDS)
                waiting = Counter(_line_key(a.model_dump()) for a in own) - recorded
                followups = [f for f in followups if f["into"] in existing or f["kind"] not in OPERATOR_KINDS]
                followups += [
                    _Carry(month, amount, kind, currency, reason).followup(None)
                    for (kind, amount, reason), n in sorted(waiting.items())
                    for _ in range(n)
                ]
        else:
            lines = self._lines(partner, month, previous, carries)
            gross = current.gross_minor if current and current.gross_minor is not None else 0
            payout = money.payout_minor(gross, share)
            statement = {
                "minutes": current.minutes if current else 0,
                "rate": _rate_field(current.rates if current else ()),
                "gross_minor": gross,
                "payout_minor": payout,
                "adjustments": [a.model_dump() for a in lines],
                "due_minor": money.due_minor(payout, lines),
            }
        due = int(statement["due_minor"])
        statement = {
            "partner": partner,
            "period": month,
            "currency": currency,
            "minutes": statement["minutes"],
            "rate": statement["rate"],
            "gross_minor": statement["gross_minor"],
            "share": f"{share:f}",
            "payout_minor": statement["payout_minor"],
            "adjustments": statement["adjustments"],
            "due_minor": due,
            "status": "pending",
            "reason": "",
            "transfer": None,
            "requested": (previous or {}).get("requested"),
            "stripe_answer": (previous or {}).get("stripe_answer"),
            "followups": followups,
            "region": self.region,
            "updated_at": self.now.isoformat(timespec="seconds"),
        }
        outcome = Outcome(partner, WOULD_PAY, statement, due_minor=due, period=month)
        if currency != terms.currency:
            outcome.warnings.append(
                f"{month} was metered in {currency}; its terms now bill in {terms.currency} (from its next new period)"
            )
        if terms.offboarded_on:
            outcome.warnings.append(f"offboarded on {terms.offboarded_on}; its usage before that is still paid")

        def write() -> str:
            """Every write of this statement; the first write of a new one hands the carries over first."""
            if previous is None and carries:
                self._hand_over(partner, carries, month, statements, existing)
            location = self.store.put(month, partner, statement)
            existing.add(month)
            statements[month] = statement  # a later month of this run may hand its open amount over
            return location

        def record(status: str, statement_status: str, reason: str) -> Outcome:
            outcome.status, outcome.reason = status, reason
            statement["status"], statement["reason"] = statement_status, reason
            if self.dry_run:
                carries.clear()  # shown on this statement; a real run would hand them over here
            else:
                outcome.location = write()
            return outcome

        if terms.payout_method == "bank_transfer" and due > 0:
            statement["transfer"] = {"method": "bank_transfer", "amount_minor": due, "currency": currency}
            return record(EXTERNAL, "external", "payout method bank_transfer: finance pays this statement")
        hold = money.below_minimum(due, currency)
        if hold is not None:
            outcome.attention = currency not in money.STRIPE_MINIMUM_MINOR and due > 0
            return record(CARRIED, "carried", f"{hold}; carried onto the next new statement")
        account, problem = self._account(terms)
        if problem:
            return record(FAILED, "failed", problem)
        if account is None:
            return record(HELD, "held", f"no Stripe account (run: platformctl billing connect {partner})")
        if self.dry_run or self.gateway is None:
            outcome.reason = f"{money.format_minor(due, currency)} to {account}"
            carries.clear()  # shown on this statement; a real run would hand them over here
            return outcome
        details = self.accounts[partner][1] or {}
        capability = transfers_capability(details)
        if capability != "active":
            return record(
                HELD,
                "held",
                f"Stripe account {account} cannot receive transfers yet (capabilities.transfers: {capability}): the "
                f"partner must finish onboarding (a fresh link: platformctl billing connect {partner} --link)",
            )
        return self._pay(terms, month, previous, statement, account, record, write)

    def _pay(
        self,
        terms: Terms,
        month: str,
        previous: dict[str, Any] | None,
        statement: dict[str, Any],
        account: str,
        record: Callable[[str, str, str], Outcome],
        write: Callable[[], str],
    ) -> Outcome:
        assert self.gateway is not None
        partner, due, currency = terms.partner, statement["due_minor"], statement["currency"]
        request = transfer_request(partner, month, account, due, currency)
        try:
            found = self.gateway.find_transfer(partner, month, account)
        except StripeError as exc:
            return record(FAILED, "failed", f"{exc}; retried by the next run")
        if found is not None:
            if (found.get("destination") or "") != account:
                statement["stripe_answer"] = _answer(found)
                return record(
                    FAILED,
                    "failed",
                    f"its {month} transfer {found.get('id')} went to {found.get('destination')}, not to its account "
                    f"{account} now: already paid, nothing sent; check the account change before settling by hand",
                )
            expected = (previous or {}).get("requested") or request
            problems = transfer_mismatches(found, expected)
            recorded = (previous or {}).get("stripe_answer") or {}
            if recorded.get("id") == found.get("id") and not problems:
                problems = ["it is the answer an earlier run found not matching"]
            if problems:
                statement["stripe_answer"] = _answer(found)
                return record(
                    FAILED,
                    "failed",
                    f"Stripe's transfer {found.get('id')} is not the one asked for: " + "; ".join(problems),
                )
            statement["transfer"] = _transfer_record(found)
            statement["stripe_answer"] = None
            return record(REPAIRED, "paid", f"{money.format_minor(int(found['amount']), currency)} in {found['id']}")
        statement["requested"] = request
        statement["status"], statement["reason"] = "pending", "transfer requested"
        # The request is on record before it is made: a later run that finds the transfer compares it with this.
        write()
        try:
            answer = self.gateway.create_transfer(partner, month, account, due, currency)
        except StripeError as exc:
            return record(FAILED, "failed", f"{exc}; retried by the next run")
        problems = transfer_mismatches(answer, request)
        if problems:
            statement["stripe_answer"] = _answer(answer)
            return record(
                FAILED,
                "failed",
                f"Stripe answered transfer {answer.get('id')} that is not the one asked for: {'; '.join(problems)}; "
                "recorded as not paid: check it in the Stripe dashboard",
            )
        statement["transfer"] = _transfer_record(answer)
        statement["stripe_answer"] = None
        return record(PAID, "paid", f"{money.format_minor(due, currency)} in {answer['id']}")

    # ------------------------------------------------------------------ helpers

    def _lines(
        self, partner: str, month: str, previous: dict[str, Any] | None, carries: list[_Carry]
    ) -> list[Adjustment]:
        """A new statement: the carries it takes over, then the period's adjustments file lines. A restated one keeps
        its lines (the carries it took are its own for good); the run's file replaces its file lines."""
        own = self.lines.get(partner, []) if month == self.period else []
        if previous is None:
            return [c.line() for c in carries] + own
        kept = [Adjustment.model_validate(a) for a in previous.get("adjustments") or []]
        if own:
            kept = [a for a in kept if a.kind in ("carry", "late_usage")] + own
        return kept

    def _hand_over(
        self,
        partner: str,
        carries: list[_Carry],
        into: str,
        statements: dict[str, dict[str, Any]],
        existing: set[str],
    ) -> None:
        """Record on each source statement that its open amount now lies on `into` (before `into` is written)."""
        for name in dict.fromkeys(c.source for c in carries):
            source = statements.get(name)
            if source is None:
                continue
            # Landed followups stay; a crashed hand-over's and the ones not landed yet are the carries handed now.
            kept = [f for f in source.get("followups") or [] if f["into"] in existing]
            source["followups"] = kept + [c.followup(into) for c in carries if c.source == name]
            self.store.put(name, partner, source)
        carries.clear()

    def _account(self, terms: Terms) -> tuple[str | None, str]:
        """The partner's Stripe account id (None: none) and a problem that stops paying it ("" if none)."""
        partner = terms.partner
        if self.dry_run or self.gateway is None:
            return terms.stripe_account, ""
        if partner not in self.accounts:
            try:
                if terms.stripe_account:
                    details = self.gateway.retrieve_account(terms.stripe_account)
                    if details is None:
                        return terms.stripe_account, (
                            f"its PARTNERS row names {terms.stripe_account}, which Stripe does not know; nothing sent"
                        )
                else:
                    if self.listed_accounts is None:
                        self.listed_accounts = self.gateway.accounts_by_partner()
                    details = self.listed_accounts.get(partner)
            except StripeError as exc:
                return terms.stripe_account, f"{exc}; retried by the next run"
            self.accounts[partner] = ((details or {}).get("id"), details)
        account, details = self.accounts[partner]
        owner = ((details or {}).get("metadata") or {}).get(PARTNER_METADATA)
        if details is not None and owner != partner:
            return account, (
                f"its PARTNERS row names {account}, which is not its Stripe account (Stripe metadata partner: "
                f"{owner!r}); nothing sent"
            )
        return account, ""


def _legacy_status(statement: dict[str, Any]) -> str:
    """Statements written before `status` existed: a transfer made it paid; none left it to be retried."""
    transfer = statement.get("transfer")
    if transfer is None:
        return "held"
    return "external" if transfer.get("method") == "bank_transfer" else "paid"


def _rate_field(rates: Sequence[str]) -> str | list[str]:
    if not rates:
        return "0"
    return rates[0] if len(rates) == 1 else list(rates)


def run_payouts(
    *,
    conn: Any,
    period: str,
    store: StatementStore,
    gateway: StripeGateway | None,
    adjustments: Sequence[AdjustmentLine] = (),
    region: str | None = None,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> Report:
    """Settle every partner of the warehouse up to `period` (see the module docstring). `gateway` None only when
    dry. Every input is checked before anything is paid."""
    money.check_period(period)
    if gateway is None and not dry_run:
        raise ValueError("a real run needs a Stripe gateway")
    terms = read_terms(conn)
    usage = read_usage(conn, period)
    stated = store.index()
    lines: dict[str, list[Adjustment]] = {}
    for index, line in enumerate(adjustments):
        where = f"adjustments[{index}]"
        if line.partner not in terms:
            raise InputError.single("--adjustments", f"{where}.partner", f"{line.partner!r} has no PARTNERS row here")
        month_usage = usage.get(line.partner, {}).get(period) or []
        expected = month_usage[0].currency if len(month_usage) == 1 else terms[line.partner].currency
        if line.currency != expected:
            raise InputError.single("--adjustments", f"{where}.currency", f"the statement is in {expected}")
        lines.setdefault(line.partner, []).append(
            Adjustment(kind=line.kind, amount_minor=line.amount_minor, reason=line.reason)
        )
    job = _Run(period, region, store, gateway, dry_run, now or dt.datetime.now(dt.UTC), lines)
    outcomes: list[Outcome] = []
    for partner in sorted(set(usage) | set(lines) | (set(stated) & set(terms))):
        if partner not in terms:
            for month in sorted(m for m in usage[partner] if m not in stated.get(partner, set())):
                minutes = sum(u.minutes for u in usage[partner][month])
                outcomes.append(
                    Outcome(
                        partner,
                        FAILED,
                        {},
                        period=month,
                        reason=f"{minutes} minutes of usage in the warehouse but no PARTNERS row (no terms); "
                        "nothing paid",
                    )
                )
            continue
        outcomes += job.partner(terms[partner], usage.get(partner, {}), stated.get(partner, set()))
    return Report(period, region, store.where, dry_run, outcomes)
