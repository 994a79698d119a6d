"""The context a stack's policies are evaluated in, built from the repository's specs and stack config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from partners.spec import load_spec
from partners.tiers import load_tiers
from platformctl.stacks import StackKind, StackName
from policies.rules import StackContext
from regions.catalog import load_catalog


def context_for(root: Path, stack: StackName, config: dict[str, Any]) -> StackContext:
    catalog = load_catalog(root / "regions")
    purge = bool(config.get("platform:purgeData", False))
    if stack.kind is StackKind.GLOBAL:
        return StackContext(stack=str(stack), kind="global", catalog=catalog)
    if stack.kind is StackKind.REGION:
        launched = config.get("platform:launchedCountries") or []
        return StackContext(
            stack=str(stack), kind="region", catalog=catalog, region=stack.key, countries=tuple(launched), purge=purge
        )
    spec = load_spec(root / "partners" / f"{stack.key}.yaml", f"partners/{stack.key}.yaml")
    return StackContext(
        stack=str(stack),
        kind="partner",
        catalog=catalog,
        region=spec.home_region,
        countries=spec.countries,
        partner_id=spec.id,
        tier_name=spec.tier,
        tier=load_tiers(root / "partners" / "tiers.yaml")[spec.tier],
        purge=purge,
        active=not config.get("platform:offboardedOn"),
        partner_domain=spec.domain,
    )
