"""The context a stack's policies are evaluated in, read through the repository's one reader."""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from fleet.checks import fleet_domains, platform_zone
from fleet.repo import Repo
from foundation.stacks import StackKind, StackName, region_stack
from policies.model import StackContext

_FLEET_IDS: WeakKeyDictionary[Repo, tuple[str, ...]] = WeakKeyDictionary()
_FLEET_DOMAINS: WeakKeyDictionary[Repo, tuple[tuple[str, str], ...]] = WeakKeyDictionary()
"""The fleet-level parts of every stack's context, made once per `Repo` (one run's reading of the files): built
per stack, they made a fleet's contexts quadratic in its size."""


def context_for(repo: Repo, stack: StackName, config: dict[str, Any]) -> StackContext:
    catalog = repo.catalog()
    purge = bool(config.get("platform:purgeData", False))
    fleet_ids = _FLEET_IDS.get(repo)
    if fleet_ids is None:
        fleet_ids = _FLEET_IDS[repo] = tuple(repo.partner_ids())
    if stack.kind is StackKind.GLOBAL:
        return StackContext(stack=str(stack), kind="global", catalog=catalog, fleet_partner_ids=fleet_ids)
    if stack.kind is StackKind.REGION:
        launched = config.get("platform:launchedCountries") or []
        return StackContext(
            stack=str(stack),
            kind="region",
            catalog=catalog,
            region=stack.subject,
            countries=tuple(launched),
            purge=purge,
            fleet_partner_ids=fleet_ids,
            kubernetes_version=_version(config),
        )
    if stack.kind is StackKind.INTEGRATION:
        return _integration_context(repo, stack, fleet_ids)
    spec = repo.spec(stack.subject)
    fleet_domain_pairs = _FLEET_DOMAINS.get(repo)
    if fleet_domain_pairs is None:
        domains, _ = fleet_domains(repo)
        fleet_domain_pairs = _FLEET_DOMAINS[repo] = tuple((pid, domain) for pid, (domain, _) in sorted(domains.items()))
    return StackContext(
        stack=str(stack),
        kind="partner",
        catalog=catalog,
        region=spec.home_region,
        countries=spec.countries,
        partner_id=spec.id,
        tier_name=spec.tier,
        tier=repo.tiers()[spec.tier],
        purge=purge,
        active=not config.get("platform:offboardedOn"),
        fleet_partner_ids=fleet_ids,
        fleet_domains=fleet_domain_pairs,
        platform_zone=platform_zone(repo),
        kubernetes_version=_home_cluster_version(repo, spec.home_region),
        partner_domain=spec.domain,
    )


def _version(config: dict[str, Any]) -> str | None:
    value = config.get("platform:kubernetesVersion")
    return value if isinstance(value, str) else None


def _home_cluster_version(repo: Repo, region: str) -> str | None:
    """The partner's objects go to its home region's cluster: that stack's version (None when it has no file)."""
    home = region_stack(region)
    if not repo.has_stack(home):
        return None
    return _version(repo.stack_config(home).values)


def _integration_context(repo: Repo, stack: StackName, fleet_ids: tuple[str, ...]) -> StackContext:
    from policies.integrations import IntegrationFacts

    spec = repo.integration(stack.subject)
    caps = repo.review_rules().caps
    facts = IntegrationFacts(
        integration_id=spec.id,
        regions=spec.regions,
        egress=spec.egress,
        installations=tuple((pid, repo.spec(pid).home_region) for pid in repo.installations(spec.id)),
        caps=(caps.cpu, caps.memory, caps.storage),
        fleet_integration_ids=tuple(repo.integration_ids()),
    )
    return StackContext(
        stack=str(stack),
        kind="integration",
        catalog=repo.catalog(),
        fleet_partner_ids=fleet_ids,
        kubernetes_version=_home_cluster_version(repo, spec.regions[0]),
        integration=facts,
    )
