"""One month's Stripe transfer, for a partner or a developer alike: found before it is made, made with the payee's
idempotency key, and checked against what was asked."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from services.payouts import money
from services.payouts.report import FAILED, PAID, REPAIRED, PayoutResult
from services.payouts.stripe_gateway import (
    Payee,
    StripeError,
    StripeGateway,
    transfer_idempotency_key,
    transfer_mismatches,
    transfer_request,
    transfers_capability,
)


def not_onboarded(account: str, details: dict[str, Any], who: Payee) -> str | None:
    """Why `who`'s account cannot be paid yet (its `transfers` capability is not active), or None."""
    capability = transfers_capability(details)
    if capability == "active":
        return None
    return (
        f"Stripe account {account} cannot receive transfers yet (capabilities.transfers: {capability}): the "
        f"{who.kind} must finish onboarding (a fresh link: {who.connect_command} --link)"
    )


def transfer_record(transfer: dict[str, Any], who: Payee) -> dict[str, Any]:
    metadata = transfer.get("metadata") or {}
    return {
        "id": transfer["id"],
        "amount_minor": int(transfer["amount"]),
        "currency": str(transfer["currency"]).upper(),
        "destination": transfer["destination"],
        "transfer_group": transfer.get("transfer_group"),
        "idempotency_key": transfer_idempotency_key(who, metadata.get("period", "")),
        "created": dt.datetime.fromtimestamp(int(transfer.get("created") or 0), dt.UTC).isoformat(),
    }


def stripe_answer(transfer: dict[str, Any]) -> dict[str, Any]:
    """What Stripe said, as recorded on a statement whose transfer did not match the request."""
    keys = ("id", "object", "amount", "currency", "destination", "transfer_group", "metadata", "reversed")
    return {k: transfer.get(k) for k in keys}


def pay(
    gateway: StripeGateway,
    who: Payee,
    month: str,
    previous: dict[str, Any] | None,
    statement: dict[str, Any],
    account: str,
    record: Callable[[str, str, str], PayoutResult],
    write: Callable[[], str],
) -> PayoutResult:
    """Pay one month's due to `account` (the statement is pending and payable): find the month's transfer first (a
    run that died after making it is repaired, never paid twice), else record the request, then make it with the
    key `who.transfer_key(month)`; Stripe's answer must repeat what was asked."""
    due, currency = statement["due_minor"], statement["currency"]
    request = transfer_request(who, month, account, due, currency)
    try:
        found = gateway.find_transfer(who, month, account)
    except StripeError as exc:
        return record(FAILED, "failed", f"{exc}; retried by the next run")
    if found is not None:
        if (found.get("destination") or "") != account:
            statement["stripe_answer"] = stripe_answer(found)
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
            statement["stripe_answer"] = stripe_answer(found)
            return record(
                FAILED,
                "failed",
                f"Stripe's transfer {found.get('id')} is not the one asked for: " + "; ".join(problems),
            )
        statement["transfer"] = transfer_record(found, who)
        statement["stripe_answer"] = None
        return record(REPAIRED, "paid", f"{money.format_minor(int(found['amount']), currency)} in {found['id']}")
    statement["requested"] = request
    statement["status"], statement["reason"] = "pending", "transfer requested"
    # The request is on record before it is made: a later run that finds the transfer compares it with this.
    write()
    try:
        answer = gateway.create_transfer(who, month, account, due, currency)
    except StripeError as exc:
        return record(FAILED, "failed", f"{exc}; retried by the next run")
    problems = transfer_mismatches(answer, request)
    if problems:
        statement["stripe_answer"] = stripe_answer(answer)
        return record(
            FAILED,
            "failed",
            f"Stripe answered transfer {answer.get('id')} that is not the one asked for: {'; '.join(problems)}; "
            "recorded as not paid: check it in the Stripe dashboard",
        )
    statement["transfer"] = transfer_record(answer, who)
    statement["stripe_answer"] = None
    return record(PAID, "paid", f"{money.format_minor(due, currency)} in {answer['id']}")


# ------------------------------------------------------------------ helpers
