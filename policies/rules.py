"""The policies: every rule with its name, level, description and the context it reads (`reads=`, see
`policies.reads`), and their evaluation over a stack's planned resources."""

from __future__ import annotations

from collections.abc import Iterable

from policies import reads
from policies.compliance import (
    check_customer_managed_key,
    check_data_retained,
    check_no_public_buckets,
    check_residency,
    check_retention,
    cmk_level,
    residency_advice,
)
from policies.deploy_checks import check_kubernetes_schema, check_snowflake_preview_features
from policies.deploy_order import check_deploy_order
from policies.hosts import (
    check_domain_ownership,
    check_host_ownership,
    check_plugin_schema,
    check_route_certificates,
    claimed_hosts,
)
from policies.integrations import (
    check_integration_caps,
    check_integration_confinement,
    check_integration_sandbox,
)
from policies.model import Finding, Policy, Resource, StackContext, Violation
from policies.references import check_named_without_dependency
from policies.tenancy import check_isolation, check_tenant_baseline, check_tier_consistency

__all__ = ["POLICIES", "Policy", "Resource", "StackContext", "Violation", "context_fingerprint", "evaluate"]


POLICIES: tuple[Policy, ...] = (
    Policy(
        "domain-ownership",
        "mandatory",
        "A partner's routes claim only its own domain and its names under the platform zone.",
        check_domain_ownership,
        reads={"kind", "partner_id", "partner_domain", "fleet_domains", "platform_zone", "stack"},
    ),
    Policy(
        "partner-isolation",
        "mandatory",
        "A partner's resources reference only its own namespace, schema, role and consumer.",
        check_isolation,
        reads={"kind", "partner_id", "tier_name", "fleet_partner_ids"},
    ),
    Policy(
        "tenant-baseline",
        "mandatory",
        "Each partner namespace has a default-deny network policy, a quota and a limit range.",
        check_tenant_baseline,
        reads={"kind", "active", "partner_id", "stack"},
    ),
    Policy(
        "tier-consistency",
        "mandatory",
        "Quota, limits, rate limit and ACL tier agree with the billed tier.",
        check_tier_consistency,
        reads={"kind", "tier", "tier_name", "stack"},
    ),
    Policy(
        "data-residency",
        "mandatory",
        "Data of a country with required residency stays in a region that serves it.",
        check_residency,
        reads={"kind", "region", "countries", "catalog", "stack"},
    ),
    Policy(
        "residency-preference",
        "advisory",
        "Countries that prefer residency are served from their own region.",
        residency_advice,
        reads={"kind", "region", "countries", "catalog", "stack"},
    ),
    Policy(
        "customer-managed-key",
        "mandatory",
        "Buckets are encrypted with a customer-managed KMS key where a profile asks.",
        check_customer_managed_key,
        reads={"countries", "catalog"},
        levels=cmk_level,
    ),
    Policy(
        "retention",
        "mandatory",
        "Data expires within the strictest retention of the stack's countries.",
        check_retention,
        reads={"countries", "catalog"},
    ),
    Policy("no-public-buckets", "mandatory", "No bucket is public.", check_no_public_buckets, reads=set()),
    Policy(
        "kong-plugin-schema",
        "mandatory",
        "Every Kong plugin config uses only fields of its plugin's schema (Kong 3.9).",
        check_plugin_schema,
        reads=set(),
    ),
    Policy(
        "route-certificates",
        "mandatory",
        "Every host a Kong route serves has a certificate binding (SNI) created before the route.",
        check_route_certificates,
        reads=set(),
    ),
    Policy(
        "host-ownership",
        "mandatory",
        "A partner stack routes and certifies only its own platform names and its own domain.",
        check_host_ownership,
        reads={"kind", "partner_id", "partner_domain"},
    ),
    Policy(
        "named-without-dependency",
        "mandatory",
        "A resource that names another planned resource by a plain string depends on it.",
        check_named_without_dependency,
        reads=set(),
    ),
    Policy(
        "data-retained-on-delete",
        "advisory",
        "Data-bearing resources are retained when a stack is deleted.",
        check_data_retained,
        reads={"purge"},
    ),
    Policy(
        "snowflake-preview-features",
        "mandatory",
        "Preview-gated Snowflake resources have a provider that enables their preview feature.",
        check_snowflake_preview_features,
        reads=set(),
    ),
    Policy(
        "integration-confinement",
        "mandatory",
        "An integration's resources stay in its own sandbox and companion namespace and its own Kong entities: never a "
        "partner's namespace, schema or another integration's sandbox; consumers only for installing partners.",
        check_integration_confinement,
        reads={"kind", "integration", "stack"},
    ),
    Policy(
        "integration-sandbox",
        "mandatory",
        "Every integration sandbox: PSS restricted, default-deny, egress only to DNS, the gateway and its egress "
        "proxy (allowlisting exactly its hosts), no service-account token, read-only root, image by digest.",
        check_integration_sandbox,
        reads={"kind", "integration", "stack"},
    ),
    Policy(
        "integration-caps",
        "mandatory",
        "An integration's quota, limit range and containers stay within the marketplace caps.",
        check_integration_caps,
        reads={"kind", "integration", "stack"},
    ),
    Policy(
        "deploy-order",
        "mandatory",
        "A first `pulumi up` succeeds in one go: custom resources wait for their CRDs, releases and workloads for "
        "their nodes and identities, claims have a storage class and CSI driver, HPAs a metrics source, and the "
        "stack reads nothing it creates.",
        check_deploy_order,
        reads={"kind"},
    ),
    Policy(
        "kubernetes-schema",
        "mandatory",
        "Every Kubernetes object validates (strict) against the OpenAPI schema of its cluster's version.",
        check_kubernetes_schema,
        reads={"kubernetes_version"},
    ),
)


def evaluate(
    resources: list[Resource], context: StackContext, policies: Iterable[Policy] = POLICIES
) -> list[Violation]:
    """The policies' findings for one stack; each rule sees only the context it declares (`policies.reads`)."""
    fleet = reads.narrowed_fleet(context, claimed_hosts(resources))
    violations = []
    for policy in policies:
        view = reads.rule_view(context, policy, fleet)
        level = policy.level_for(view)
        seen: set[Finding] = set()
        for finding in policy.check(resources, view):
            if finding not in seen:
                seen.add(finding)
                violations.append(Violation(policy.name, level, context.stack, finding[0], finding[1]))
    return violations


def context_fingerprint(context: StackContext, claims: Iterable[str], policies: Iterable[Policy] = POLICIES) -> str:
    """The fingerprint of what `policies` read of the stack's context (`policies.reads.context_fingerprint`):
    cached findings stand while it is unchanged."""
    return reads.context_fingerprint(context, claims, policies)
