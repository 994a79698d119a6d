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
from decimal import Decimal
from typing import Any

from foundation.errors import InputError
from services.payouts import money
from services.payouts.carries import Carry, describe_carries, legacy_status, line_key, open_carries, waiting_result
from services.payouts.charges import ChargeBook
from services.payouts.money import Adjustment, AdjustmentLine
from services.payouts.partner_terms import MonthUsage, Terms, rate_field, read_terms, read_usage
from services.payouts.report import (
    ALREADY_PAID,
    CARRIED,
    EXTERNAL,
    FAILED,
    HELD,
    OPERATOR_KINDS,
    PAID,
    REPAIRED,
    SETTLED,
    WOULD_PAY,
    PayoutResult,
    Report,
)
from services.payouts.statements import StatementStore
from services.payouts.stripe_gateway import PARTNER_METADATA, Payee, StripeError, StripeGateway
from services.payouts.transfers import not_onboarded, pay


@dataclass
class _Run:
    period: str
    region: str | None
    store: StatementStore
    gateway: StripeGateway | None
    dry_run: bool
    now: dt.datetime
    lines: dict[str, list[Adjustment]]
    charges: Callable[[str, str], list[Adjustment]]
    """(partner, month) -> its integration charges (services.payouts.charges)."""
    listed_accounts: dict[str, dict[str, Any]] | None = None
    charge_currencies: Callable[[str, str], set[str]] = lambda partner, month: set()
    """(partner, month) -> the currencies its integration charges are priced in (services.payouts.charges)."""
    accounts: dict[str, tuple[str | None, dict[str, Any] | None]] = field(default_factory=dict)

    # ------------------------------------------------------------------ per partner

    def partner(self, terms: Terms, usage: dict[str, list[MonthUsage]], stated: set[str]) -> list[PayoutResult]:
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
        if self.period not in months and (self.lines.get(partner) or self.charges(partner, self.period)):
            months.append(self.period)
        outcomes: list[PayoutResult] = []
        carries: list[Carry] = []
        for month in months:
            statement = statements.get(month)
            if statement is not None and statement.get("status", legacy_status(statement)) in SETTLED:
                outcome = self.settled(terms, month, statement, usage.get(month, []), existing, carries)
            else:
                outcome = self._settle_taking(
                    terms, month, statement, usage.get(month, []), carries, existing, statements
                )
                if outcome.status in (CARRIED, PAID, REPAIRED, EXTERNAL):
                    # Settled now: what it owes beyond its due (all of it, if carried) is open from here on.
                    opened = open_carries(month, outcome.statement, usage.get(month, []), existing)
                    carries += opened
                    if opened and outcome.status != CARRIED:
                        outcome.reason += f"; {describe_carries(opened)} go onto the next new statement"
            if outcome is not None:
                outcomes.append(outcome)
        if carries and self.period not in months and self.period not in existing:
            outcomes += self._land(terms, carries, existing, statements)
        shown = {o.period for o in outcomes}
        for carry in carries:  # nothing unstated in this run to take them: the next run's first new statement will
            if carry.source in shown:
                continue
            outcomes.append(waiting_result(terms, carry, self.period))
        return outcomes

    def _settle_taking(
        self,
        terms: Terms,
        month: str,
        statement: dict[str, Any] | None,
        usage: list[MonthUsage],
        carries: list[Carry],
        existing: set[str],
        statements: dict[str, dict[str, Any]],
        currency: str | None = None,
    ) -> PayoutResult:
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
        self, terms: Terms, carries: list[Carry], existing: set[str], statements: dict[str, dict[str, Any]]
    ) -> list[PayoutResult]:
        """Open carries and no new statement of this run to take them (no usage in the period: an offboarded
        partner, a quiet month): the period's statement is made for them when their sum can be paid, so that
        nothing owed waits for usage that may never come. Its transfer is the period's own (key
        `payout:<partner>:<period>`), so a rerun finds it rather than paying again. When the sum cannot be paid yet,
        no statement is made: the carries stay on their source statements and wait (see carries.waiting_result)."""
        outcomes: list[PayoutResult] = []
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

    def settled(
        self,
        terms: Terms,
        month: str,
        statement: dict[str, Any],
        usage: list[MonthUsage],
        existing: set[str],
        carries: list[Carry],
    ) -> PayoutResult | None:
        """A settled month: hand any difference between what it owes now and what moved to a later statement."""
        partner = terms.partner
        currency = statement.get("currency")
        other = sorted({u.currency for u in usage} - {currency})
        if other:
            return PayoutResult(
                partner,
                FAILED,
                statement,
                period=month,
                reason=f"usage in {', '.join(other)} metered into {month} after it was stated in {currency}; "
                "not paid: settle it with an adjustments line",
            )
        settled_as = statement.get("status") or legacy_status(statement)
        opened = open_carries(month, statement, usage, existing)
        carries += opened
        if month != self.period:
            return None
        status = ALREADY_PAID if settled_as in ("paid", "external") else CARRIED
        reason = "already paid" if status == ALREADY_PAID else "already stated: carried"
        if opened:
            reason += f"; {describe_carries(opened)} go onto the next new statement"
        outcome = PayoutResult(partner, status, statement, reason=reason, location=self.store.where, period=month)
        recorded = Counter(line_key(a) for a in statement.get("adjustments") or [])
        recorded += Counter(line_key(f) for f in statement.get("followups") or [] if f["kind"] in OPERATOR_KINDS)
        given = Counter(line_key(a.model_dump()) for a in self.lines.get(partner, []))
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
        carries: list[Carry],
        existing: set[str],
        statements: dict[str, dict[str, Any]],
        currency_of_carries: str | None = None,
    ) -> PayoutResult:
        """State (or restate) one unsettled month and pay it if it can be paid. `currency_of_carries`: the currency
        of a statement made only for carries (no usage)."""
        partner = terms.partner
        currencies = sorted({u.currency for u in usage})
        if len(currencies) > 1:
            return PayoutResult(
                partner,
                FAILED,
                previous or {},
                period=month,
                reason=f"usage in {' and '.join(currencies)} in {month}: a statement pays one currency; nothing paid "
                "for this month (its terms' currency changed within it?): settle it with an adjustments line",
            )
        current = usage[0] if usage else None
        if current is not None and current.gross_minor is None:
            return PayoutResult(
                partner, FAILED, previous or {}, period=month, reason=f"no minor-unit entry for {current.currency}"
            )
        if terms.problem:
            return PayoutResult(partner, FAILED, previous or {}, period=month, reason=terms.problem)
        if previous is not None and current is not None and previous.get("currency") not in (None, current.currency):
            return PayoutResult(
                partner,
                FAILED,
                previous,
                period=month,
                reason=f"{month} was stated in {previous.get('currency')}, its usage is now in {current.currency}",
            )
        currency = (
            current.currency if current else (previous or {}).get("currency") or currency_of_carries or terms.currency
        )
        foreign = sorted(self.charge_currencies(partner, month) - {currency})
        if foreign and not (previous or {}).get("requested"):
            return PayoutResult(
                partner,
                FAILED,
                previous or {},
                period=month,
                reason=f"integration charges priced in {', '.join(foreign)} on a {currency} statement (its installs "
                f"were repriced by a billing.currency change): nothing paid for {month}; settle it by hand",
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
                recorded = Counter(line_key(a) for a in previous.get("adjustments") or [])
                recorded += Counter(line_key(f) for f in landed if f["kind"] in OPERATOR_KINDS)
                waiting = Counter(line_key(a.model_dump()) for a in own) - recorded
                followups = [f for f in followups if f["into"] in existing or f["kind"] not in OPERATOR_KINDS]
                followups += [
                    Carry(month, amount, kind, currency, reason).followup(None)
                    for (kind, amount, reason), n in sorted(waiting.items())
                    for _ in range(n)
                ]
        else:
            lines = self._lines(partner, month, previous, carries)
            gross = current.gross_minor if current and current.gross_minor is not None else 0
            payout = money.payout_minor(gross, share)
            statement = {
                "minutes": current.minutes if current else 0,
                "rate": rate_field(current.rates if current else ()),
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
        outcome = PayoutResult(partner, WOULD_PAY, statement, due_minor=due, period=month)
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

        def record(status: str, statement_status: str, reason: str) -> PayoutResult:
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
        who = Payee("partner", partner)
        if account is None:
            return record(HELD, "held", f"no Stripe account (run: {who.connect_command})")
        if self.dry_run or self.gateway is None:
            outcome.reason = f"{money.format_minor(due, currency)} to {account}"
            carries.clear()  # shown on this statement; a real run would hand them over here
            return outcome
        hold_reason = not_onboarded(account, self.accounts[partner][1] or {}, who)
        if hold_reason is not None:
            return record(HELD, "held", hold_reason)
        return pay(self.gateway, who, month, previous, statement, account, record, write)

    def _lines(
        self, partner: str, month: str, previous: dict[str, Any] | None, carries: list[Carry]
    ) -> list[Adjustment]:
        """A new statement: the carries it takes over, the month's integration charges, then the period's adjustments
        file lines. A restated one keeps its carries (its own for good), takes the charges anew, and the run's file
        replaces its file lines."""
        own = self.lines.get(partner, []) if month == self.period else []
        charges = self.charges(partner, month)
        if previous is None:
            return [c.line() for c in carries] + charges + own
        kept = [Adjustment.model_validate(a) for a in previous.get("adjustments") or []]
        kept = [a for a in kept if a.kind != "integration"]
        if own:
            kept = [a for a in kept if a.kind in ("carry", "late_usage")] + own
        return kept + charges

    def _hand_over(
        self,
        partner: str,
        carries: list[Carry],
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
    charges = ChargeBook(conn)
    job = _Run(period, region, store, gateway, dry_run, now or dt.datetime.now(dt.UTC), lines, charges.lines)
    job.charge_currencies = charges.currencies
    outcomes: list[PayoutResult] = []
    charged = charges.partners(period) & set(terms)  # installs and no calls: charged all the same
    for partner in sorted(set(usage) | set(lines) | (set(stated) & set(terms)) | charged):
        if partner not in terms:
            for month in sorted(m for m in usage[partner] if m not in stated.get(partner, set())):
                minutes = sum(u.minutes for u in usage[partner][month])
                outcomes.append(
                    PayoutResult(
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
