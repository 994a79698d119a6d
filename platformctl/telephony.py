"""Partner telephony in the library: the spec's numbers checked against the catalog, and `platformctl numbers`."""

from __future__ import annotations

from typing import Any

from partners.spec import PartnerSpec, load_spec
from partners.telephony import check_telephony, number_slots, subaccount_friendly_name
from platformctl.errors import EngineError, InputError
from platformctl.repo import Repo
from platformctl.stackconfig import load_stack_config
from platformctl.stacks import partner_stack, region_stack
from regions.catalog import Catalog, load_catalog
from regions.telephony import load_telephony


def launched_countries(repo: Repo, region: str) -> list[str]:
    stack = region_stack(region)
    if not stack.config_file(repo.root).is_file():
        return []
    return list(load_stack_config(repo.root, stack).values.get("platform:launchedCountries") or [])


def check_spec(repo: Repo, spec: PartnerSpec, catalog: Catalog, source: str) -> list[str]:
    """InputError naming `telephony.numbers.N.<field>` for what the catalog or the home region forbids; warnings."""
    if spec.telephony is None or spec.home_region not in catalog.regions:
        return []
    telephony = load_telephony(catalog, repo.root / "regions")
    problems, warnings = check_telephony(spec, telephony, launched_countries(repo, spec.home_region), source)
    if problems:
        raise InputError(problems)
    return warnings


def numbers(repo: Repo, partner: str | None = None, owned: bool = False) -> list[dict[str, Any]]:
    """One row per number slot: planned from the specs; with `owned`, the numbers the real engine's state holds."""
    if partner is not None:
        stack = partner_stack(partner)  # validates the id before it reaches the filesystem
        path = repo.partner_file(stack.key)
        if not path.is_file():
            raise InputError.single("arguments", "PARTNER", f"no partner {partner!r} (no partners/{partner}.yaml)")
        files = [path]
    else:
        files = repo.partner_spec_files()
    catalog = load_catalog(repo.root / "regions")
    rows = []
    for path in files:
        spec = load_spec(path, repo.display(path))
        if spec.home_region in catalog.regions:
            check_spec(repo, spec, catalog, repo.display(path))
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
