"""Partner telephony in the library: the spec's numbers checked against the catalog, and `platformctl numbers`."""

from __future__ import annotations

from typing import Any

from fleet.repo import Repo
from foundation.errors import EngineError, InputError
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
                }
            )
    return rows


def _owned_numbers(repo: Repo, partner_id: str) -> dict[str, dict[str, Any]]:
    """The partner stack's `telephony_numbers` output, by slot, through the Automation API."""
    import shutil

    from platformctl.engine import INSTALL_HINT, settings_for

    if shutil.which("pulumi") is None:
        raise EngineError(INSTALL_HINT)
    from pulumi import automation as auto

    settings = settings_for(repo)
    try:
        stack = auto.select_stack(
            stack_name=str(partner_stack(partner_id)),
            work_dir=str(repo.root),
            opts=auto.LocalWorkspaceOptions(env_vars=settings.env, secrets_provider=settings.secrets_provider),
        )
        outputs = stack.outputs()
    except Exception as exc:  # the Automation API raises CommandError and friends
        raise EngineError(f"reading the state of partner-{partner_id}: {str(exc).strip().splitlines()[0]}") from exc
    held = outputs.get("telephony_numbers")
    value = held.value if held is not None else []
    return {row["slot"]: row for row in value or [] if isinstance(row, dict) and "slot" in row}
