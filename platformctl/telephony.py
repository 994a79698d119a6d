"""Partner telephony in the library: the spec's numbers checked against the catalog, and `platformctl numbers`."""

from __future__ import annotations

from typing import Any

from fleet.repo import Repo
from foundation.errors import InputError
from foundation.stacks import partner_stack
from partners.telephony import number_slots, subaccount_friendly_name


def numbers(repo: Repo, partner: str | None = None, owned: bool = False) -> list[dict[str, Any]]:
    """One row per number slot: planned from the specs; with `owned`, the numbers the real engine's state holds."""
    if partner is not None:
        try:
            partner_stack(partner)  # validates the id before it reaches the filesystem
        except InputError:
            raise InputError.single("arguments", "PARTNER", f"{partner!r} is not a partner id") from None
        if not repo.partner_file(partner).is_file():
            raise InputError.single("arguments", "PARTNER", f"no partner {partner!r} (no partners/{partner}.yaml)")
        ids = [partner]
    else:
        ids = repo.partner_ids()
    rows = []
    for partner_id in ids:
        spec = repo.spec(partner_id)  # checked against the catalog and the telephony catalog, once
        state = _owned_numbers(repo, spec.id) if owned else {}
        for slot in number_slots(spec):
            held = state.get(slot.key, {})
            rows.append(
                {
                    "partner": spec.id,
                    "country": slot.country,
                    "type": slot.type,
                    "slot": slot.key,
                    "friendly_name": slot.friendly_name,
                    "subaccount": subaccount_friendly_name(spec.id),
                    "phone_number": held.get("phone_number") or ("not bought" if owned else "[unknown] until applied"),
                    "status": _status(held, owned),
                }
            )
    return rows


def _status(held: dict[str, Any], owned: bool) -> str:
    """active, or `waiting: <reason>` (a regulatory bundle not accepted yet; the next `up` tries again)."""
    if not owned:
        return "planned"
    if held.get("status") == "waiting":
        return f"waiting: {held.get('waiting_for') or 'no reason given'}"
    return "active" if held.get("phone_number") else "not bought"


def _owned_numbers(repo: Repo, partner_id: str) -> dict[str, dict[str, Any]]:
    """The partner stack's `telephony_numbers` output, by slot, through the Automation API."""
    from platformctl.engine import stack_outputs

    value = stack_outputs(repo, partner_stack(partner_id)).get("telephony_numbers")
    return {row["slot"]: row for row in value or [] if isinstance(row, dict) and "slot" in row}
