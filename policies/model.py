"""What the rules work on and produce: a planned resource, a stack's context, a finding, a violation, a policy.

Data only; every rule module imports these from here (and `policies.rules` assembles the rules), so no rule module
needs `policies.rules` and no two modules of the package import each other."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any, Literal

from foundation.naming import partner_namespace, snowflake_ident
from partners.tiers import Tier
from policies.integrations import IntegrationFacts
from regions.catalog import Catalog

Level = Literal["mandatory", "advisory"]
UNKNOWN = "[unknown]"
SECRET = "[secret]"


@dataclass(frozen=True)
class Resource:
    urn: str
    """The resource's URN."""
    type: str
    """Type token."""
    name: str
    """Logical name."""
    inputs: dict[str, Any]
    """Inputs as planned (camelCase keys, as the engine sees them)."""
    parent: str = ""
    """Parent URN (resources of one component share it)."""
    retain_on_delete: bool = False
    """Deleting it from the stack leaves the cloud resource."""
    provider: str = ""
    """Provider reference (`<provider urn>::<id>`), empty for the default provider."""
    dependencies: tuple[str, ...] = ()
    """URNs the resource depends on (as in the plan's newState.dependencies)."""
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per input, the URNs its value came from (newState.propertyDependencies)."""
    read_id: str = ""
    """For a `get` (a read step: the program reads an existing object), the id it reads; empty otherwise."""


@dataclass(frozen=True)
class StackContext:
    stack: str
    """Stack name."""
    kind: Literal["global", "region", "partner", "integration"]
    """Stack kind."""
    catalog: Catalog
    """The region and country catalog."""
    region: str | None = None
    """Region code: the region stack's own, or the partner's home region."""
    countries: tuple[str, ...] = ()
    """Countries whose data the stack holds: launched countries, or the partner's countries."""
    partner_id: str | None = None
    """Partner id (partner stacks)."""
    tier_name: str | None = None
    """Partner tier (partner stacks)."""
    tier: Tier | None = None
    """The partner's row of the tier table (partner stacks)."""
    purge: bool = False
    """Data-bearing resources may be deleted (offboarding with --purge)."""
    active: bool = True
    """False for an offboarded partner: only its retained data remains, no tenant."""
    fleet_partner_ids: tuple[str, ...] = ()
    """Every partner id of the fleet: a reference is attributed to the partner whose id it names most precisely. A
    rule sees only the ids that extend its partner's own (`policies.reads.narrowed_fleet`)."""
    fleet_domains: tuple[tuple[str, str], ...] = ()
    """(partner id, domain) of every partner of the fleet. A rule sees only those that overlap its partner's domain
    or a host its stack claims (`policies.reads.narrowed_fleet`)."""
    platform_zone: str = ""
    """The platform's own DNS zone (lower case, no trailing dot)."""
    kubernetes_version: str | None = None
    """Version of the cluster the stack's Kubernetes objects go to (region stacks and partner stacks)."""
    partner_domain: str | None = None
    """The partner's own domain (partner stacks)."""
    integration: IntegrationFacts | None = None
    """What an integration stack's policies check against (integration stacks)."""

    @property
    def namespace(self) -> str:
        return partner_namespace(self.partner_id or "")

    @property
    def snowflake_id(self) -> str:
        return snowflake_ident(self.partner_id or "")

    @property
    def strictest_retention(self) -> int:
        return self.catalog.strictest_retention_days(list(self.countries))


CONTEXT_FIELDS = frozenset(f.name for f in dataclasses.fields(StackContext))


@dataclass(frozen=True)
class Violation:
    policy: str
    """Rule name."""
    level: Level
    """mandatory fails the plan; advisory is reported."""
    stack: str
    """Stack name."""
    urn: str
    """Offending resource (the stack's URN for stack-wide findings)."""
    message: str
    """What is wrong."""


Finding = tuple[str, str]
"""(urn, message)."""


@dataclass(frozen=True)
class Policy:
    name: str
    """Rule name, as shown in reports."""
    level: Level
    """Default enforcement level."""
    description: str
    """One line for reports and the policy pack."""
    check: Callable[[list[Resource], StackContext], Iterable[Finding]]
    """The rule itself."""
    reads: Set[str]
    """The StackContext fields the rule and its level read: the rule sees no other (`policies.reads`), and the
    policy-context fingerprint covers these."""
    levels: Callable[[StackContext], Level] | None = field(default=None)
    """Level that depends on the stack (e.g. only mandatory where a profile asks)."""

    def __post_init__(self) -> None:
        unknown = set(self.reads) - CONTEXT_FIELDS
        if unknown:
            raise ValueError(f"policy {self.name} declares reads of unknown context fields {sorted(unknown)}")
        object.__setattr__(self, "reads", frozenset(self.reads))

    def level_for(self, context: StackContext) -> Level:
        return self.levels(context) if self.levels else self.level
