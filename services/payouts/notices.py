"""The payouts job's webhook events: `payout.paid`, `payout.held`, `payout.failed` for the months a run settled or
could not, posted to the region's webhooks service after the run (never before or between Stripe writes).

Ids come from what the event is about, so a rerun produces nothing new: `payout.paid:<partner>:<period>` (a month
is paid once), and `payout.held|failed:<partner>:<period>:<digest>` where the digest covers the amount, currency and
reason (a month held again for the same reason is the same event; held for another reason, or failed after being
held, is a new one). The webhooks service deduplicates by id.

The money path never waits on or fails for the webhooks service: posting happens after every statement is written,
and an outage is reported (Report.webhooks, printed by both CLIs), not raised. What was not sent is produced again
by a later run: held and failed months are retried by every run, and a rerun of a paid period answers "already
paid" with the same payout.paid event (a duplicate for the service when it had arrived).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from foundation.errors import InputError
from foundation.naming import PARTNER_ID_PATTERN
from services.webhooks.producer import TOKEN_ENV, URL_ENV, publish

_PARTNER = re.compile(PARTNER_ID_PATTERN)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
PAID_STATUSES = frozenset({"paid", "repaired", "already paid"})
"""PayoutResult statuses whose statement records a Stripe transfer (job.PAID, REPAIRED, ALREADY_PAID)."""


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


def payout_event(outcome: Any) -> dict[str, Any] | None:
    """The event of one report.PayoutResult; None for outcomes that are not one (carried, external, dry runs, a month
    without a statement to speak of)."""
    statement: dict[str, Any] = outcome.statement or {}
    partner, period = outcome.partner, outcome.period or statement.get("period", "")
    currency = statement.get("currency")
    if not _PARTNER.fullmatch(str(partner)) or not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        return None
    key = f"{period}/{partner}.json"
    if outcome.status in PAID_STATUSES:
        transfer = statement.get("transfer") or {}
        if statement.get("status") != "paid" or not transfer.get("id"):
            return None
        return {
            "id": f"payout.paid:{partner}:{period}",
            "type": "payout.paid",
            "partner": partner,
            "data": {
                "period": period,
                "currency": currency,
                "amount_minor": int(transfer.get("amount_minor", statement.get("due_minor", 0))),
                "statement": key,
                "transfer": str(transfer["id"]),
            },
        }
    if outcome.status not in ("held", "failed"):
        return None
    amount = max(0, int(statement.get("due_minor") or 0))
    reason = (outcome.reason or statement.get("reason") or outcome.status)[:500]
    return {
        "id": f"payout.{outcome.status}:{partner}:{period}:{_digest(amount, currency, reason)}",
        "type": f"payout.{outcome.status}",
        "partner": partner,
        "data": {"period": period, "currency": currency, "amount_minor": amount, "statement": key, "reason": reason},
    }


def publish_outcomes(outcomes: list[Any], env: Mapping[str, str], post: Callable[..., str] = publish) -> list[str]:
    """Post the events of a run's outcomes; what could not be sent, as lines for the report (never raises)."""
    events = [event for event in (payout_event(o) for o in outcomes) if event is not None]
    if not (env.get(URL_ENV) and env.get(TOKEN_ENV)):
        if not events:
            return []
        return [f"webhooks production is off ({URL_ENV}, {TOKEN_ENV} not set): {len(events)} payout event(s) not sent"]
    notes: list[str] = []
    for index, event in enumerate(events):
        try:
            post(event, env, attempts=3)
        except InputError as exc:
            notes.append(f"{event['id']} refused by the webhooks service: {exc}")
        except Exception as exc:  # PlatformError (unreachable), or anything else: never fails the run
            left = [e["id"] for e in events[index:]]
            notes.append(
                f"webhooks service unavailable ({exc}); not sent: {', '.join(left)}. Held and failed months are "
                "sent by the next run; a paid month by running this period again"
            )
            break
    return notes
