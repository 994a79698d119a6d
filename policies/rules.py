"""The rules of ARCHITECTURE.md as pure functions: (resources of one stack, its context) -> violations."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from foundation.naming import (
    FINANCIAL_RECORDS,
    PARTNER_ID,
    STATEMENT_RETENTION_DAYS,
    region_database,
    tier_acl_group,
)
from gateway.kong_plugins import config_problems
from gateway.tls import CERT_SYNC_LABEL, host_matches, is_platform_host
from policies.deploy_checks import check_kubernetes_schema, check_snowflake_preview_features
from policies.deploy_order import check_deploy_order
from policies.integrations import (
    check_integration_caps,
    check_integration_confinement,
    check_integration_sandbox,
)
from policies.model import SECRET, UNKNOWN, Finding, Level, Policy, Resource, StackContext, Violation
from policies.references import check_named_without_dependency
from regions.catalog import ResidencyVerdict


def _of_type(resources: list[Resource], suffix: str) -> list[Resource]:
    return [r for r in resources if r.type == suffix or r.type.endswith(f":{suffix}")]


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _stack_urn(resources: list[Resource], context: StackContext) -> str:
    return next((r.urn for r in resources if r.type == "pulumi:pulumi:Stack"), f"stack:{context.stack}")


_PARTNER_REF = re.compile(rf"partners?[-/]({PARTNER_ID})")
# A partner's Snowflake id is its id upper-cased (3 to 40 characters, foundation/naming.py): the column PARTNER_ID is
# no partner's object.
_SNOWFLAKE_PARTNER_REF = re.compile(r"PARTNER_([A-Z][A-Z0-9_]{1,38}?[A-Z0-9])(?:_READER|_SVC)?\b")
_TERMS_ROW_KEY = re.compile(r"PARTNER_ID\s*=\s*'([^']*)'" + r'|"PARTNER_ID"\s*:\s*"([^"]*)"')
"""A PARTNERS row named in SQL: `PARTNER_ID = '<id>'` or, in the JSON a terms upsert carries, `"PARTNER_ID":"<id>"`."""


def _owner_of(reference: str, own: str, fleet: tuple[str, ...]) -> str | None:
    """The partner a name like `acme-voice-domain` belongs to: the longest id it equals or extends with '-'.

    Prefix matching alone would give `partner-acme-voice` to partner `acme`; the fleet's ids settle it. The
    candidates are the reference's own '-'-bounded prefixes, looked up in the fleet (not the fleet scanned per
    reference: a 500-partner fleet made that most of a plan's policy time)."""
    ids = _id_set(fleet)
    for end in [len(reference), *(i for i in range(len(reference) - 1, 0, -1) if reference[i] == "-")]:
        prefix = reference[:end]
        if prefix and (prefix == own or prefix in ids):
            return prefix
    return None


@lru_cache(maxsize=8)
def _id_set(fleet: tuple[str, ...]) -> frozenset[str]:
    return frozenset(fleet)


def check_isolation(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """A partner's resources name only its own namespace, schema, role, consumer and storage."""
    if context.kind != "partner":
        return
    own, own_sf = context.partner_id or "", context.snowflake_id
    for resource in resources:
        metadata = resource.inputs.get("metadata")
        if resource.type.startswith("kubernetes:") and isinstance(metadata, dict):
            where = (
                metadata.get("name") if resource.type == "kubernetes:core/v1:Namespace" else metadata.get("namespace")
            )
            if where != context.namespace:
                yield resource.urn, f"Kubernetes object is in namespace {where!r}, not {context.namespace!r}"
        if resource.type == "kong:index/consumer:Consumer" and resource.inputs.get("username") != context.namespace:
            yield resource.urn, f"Kong consumer {resource.inputs.get('username')!r} is not {context.namespace!r}"
        if resource.type == "kong:index/consumerAcl:ConsumerAcl":
            allowed = {context.namespace, tier_acl_group(context.tier_name or "")}
            if resource.inputs.get("group") not in allowed:
                yield resource.urn, f"ACL group {resource.inputs.get('group')!r} is not one of {sorted(allowed)}"
        for text in _strings(resource.inputs):
            for match in _PARTNER_REF.finditer(text):
                if _owner_of(match.group(1), own, context.fleet_partner_ids) != own:
                    yield resource.urn, f"references another partner ({match.group(0)!r})"
            if resource.type.startswith("snowflake:"):
                for match in _SNOWFLAKE_PARTNER_REF.finditer(text):
                    if match.group(1) != own_sf:
                        yield resource.urn, f"references another partner's Snowflake object ({match.group(0)!r})"
            if resource.type == "snowflake:index/execute:Execute":
                for match in _TERMS_ROW_KEY.finditer(text):
                    if (match.group(1) or match.group(2)) != own:
                        yield resource.urn, f"SQL names another partner's PARTNERS row ({match.group(0)!r})"


def check_tenant_baseline(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Every partner namespace has a default-deny network policy, a resource quota and a limit range."""
    if context.kind != "partner" or not context.active:
        return
    stack = _stack_urn(resources, context)
    namespaces = _of_type(resources, "kubernetes:core/v1:Namespace")
    if not namespaces:
        yield stack, "no tenant namespace"
    for ns in namespaces:
        labels = ns.inputs.get("metadata", {}).get("labels", {})
        if labels.get("partner_id") != context.partner_id or labels.get("isolation") != "strict":
            yield ns.urn, "namespace must be labelled partner_id=<id> and isolation=strict"
    policies = _of_type(resources, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
    default_deny = [
        p
        for p in policies
        if p.inputs.get("spec", {}).get("podSelector") == {}
        and set(p.inputs.get("spec", {}).get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p.inputs["spec"].get("ingress")
        and not p.inputs["spec"].get("egress")
    ]
    if not default_deny:
        yield stack, "no default-deny NetworkPolicy (empty pod selector, Ingress and Egress, no rules)"
    if not _of_type(resources, "kubernetes:core/v1:ResourceQuota"):
        yield stack, "no ResourceQuota in the tenant namespace"
    if not _of_type(resources, "kubernetes:core/v1:LimitRange"):
        yield stack, "no LimitRange in the tenant namespace"


def check_tier_consistency(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Quota, container limits, rate limit and ACL tier group all come from the partner's tier."""
    if context.kind != "partner" or context.tier is None:
        return
    tier = context.tier
    for quota in _of_type(resources, "kubernetes:core/v1:ResourceQuota"):
        if quota.inputs.get("spec", {}).get("hard") != tier.quota.hard():
            yield quota.urn, f"ResourceQuota differs from the {context.tier_name} tier's quota"
    limits = tier.container_limits
    expected_max = {"cpu": limits.max_cpu, "memory": limits.max_memory}
    for limit_range in _of_type(resources, "kubernetes:core/v1:LimitRange"):
        items = limit_range.inputs.get("spec", {}).get("limits", [])
        if not any(item.get("max") == expected_max for item in items):
            yield limit_range.urn, f"LimitRange max differs from the {context.tier_name} tier's {expected_max}"
    expected_rate = tier.rate_limit.model_dump()
    for plugin in _of_type(resources, "kong:index/plugin:Plugin"):
        if plugin.inputs.get("name") != "rate-limiting":
            continue
        config = _json(plugin.inputs.get("configJson"))
        if config is None or {k: config.get(k) for k in expected_rate} != expected_rate:
            yield plugin.urn, f"rate limit differs from the {context.tier_name} tier's {expected_rate}"
    groups = {r.inputs.get("group") for r in _of_type(resources, "kong:index/consumerAcl:ConsumerAcl")}
    tier_groups = {g for g in groups if isinstance(g, str) and g.startswith("tier-")}
    if tier_groups and tier_groups != {tier_acl_group(context.tier_name or "")}:
        yield (
            _stack_urn(resources, context),
            f"consumer is in ACL groups {sorted(tier_groups)}, billed as {context.tier_name}",
        )


def check_residency(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Data of a country that requires residency stays in a region that serves it."""
    if context.kind == "global" or context.region is None:
        return
    stack = _stack_urn(resources, context)
    catalog = context.catalog
    for cc in context.countries:
        if cc in catalog.countries and catalog.residency_verdict(cc, context.region) is ResidencyVerdict.FORBIDDEN:
            yield stack, f"{cc} requires data residency and cannot be served from {context.region}"
    aws_region = catalog.region(context.region).aws_region
    for provider in _of_type(resources, "pulumi:providers:aws"):
        if provider.inputs.get("region") not in (aws_region, UNKNOWN) and context.kind == "partner":
            yield provider.urn, f"AWS provider targets {provider.inputs.get('region')}, the home region is {aws_region}"
    database = region_database(context.region)
    for schema in _of_type(resources, "snowflake:index/schema:Schema"):
        if schema.inputs.get("database") not in (database, UNKNOWN):
            yield schema.urn, f"schema lives in {schema.inputs.get('database')}, not the home region's {database}"


def residency_advice(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """A country that prefers residency is served from elsewhere (allowed, with a documented transfer basis)."""
    if context.kind == "global" or context.region is None:
        return
    for cc in context.countries:
        if (
            cc in context.catalog.countries
            and context.catalog.residency_verdict(cc, context.region) is ResidencyVerdict.WARN
        ):
            yield _stack_urn(resources, context), f"{cc} prefers data residency but is served from {context.region}"


def _siblings(resources: list[Resource], bucket: Resource, type_: str) -> list[Resource]:
    return [r for r in _of_type(resources, type_) if r.parent == bucket.parent]


def check_customer_managed_key(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Every bucket is encrypted with a KMS key the platform manages (SSE-KMS with an explicit key)."""
    for bucket in _of_type(resources, "aws:s3/bucket:Bucket"):
        configs = _siblings(
            resources, bucket, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        )
        rules = [rule for c in configs for rule in c.inputs.get("rules", [])]
        defaults = [rule.get("applyServerSideEncryptionByDefault", {}) for rule in rules]
        if not any(d.get("sseAlgorithm") in ("aws:kms", "aws:kms:dsse") and d.get("kmsMasterKeyId") for d in defaults):
            yield bucket.urn, "bucket is not encrypted with a customer-managed KMS key"


def _cmk_level(context: StackContext) -> Level:
    profiles = [context.catalog.country(cc).compliance for cc in context.countries if cc in context.catalog.countries]
    return "mandatory" if any(p.customer_managed_key for p in profiles) else "advisory"


def check_retention(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Bucket data expires no later than the strictest retention of the stack's countries."""
    limit = context.strictest_retention
    for bucket in _of_type(resources, "aws:s3/bucket:Bucket"):
        tags = bucket.inputs.get("tags") or {}
        if isinstance(tags, dict) and tags.get("platform:data-class") == FINANCIAL_RECORDS:
            yield from _financial_retention(resources, bucket)
            continue
        lifecycles = _siblings(resources, bucket, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
        days = [
            rule.get("expiration", {}).get("days")
            for lc in lifecycles
            for rule in lc.inputs.get("rules", [])
            if rule.get("status") == "Enabled"
        ]
        days = [d for d in days if isinstance(d, int)]
        if not days:
            yield bucket.urn, f"bucket has no expiry; the strictest retention here is {limit} days"
        elif min(days) > limit:
            yield bucket.urn, f"bucket keeps data {min(days)} days, longer than the strictest retention ({limit} days)"


def _financial_retention(resources: list[Resource], bucket: Resource) -> Iterable[Finding]:
    """Accounting records are kept (versions too) at least STATEMENT_RETENTION_DAYS."""
    for lc in _siblings(resources, bucket, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"):
        for rule in lc.inputs.get("rules", []):
            if rule.get("status") != "Enabled":
                continue
            for days in (
                rule.get("expiration", {}).get("days"),
                rule.get("noncurrentVersionExpiration", {}).get("noncurrentDays"),
            ):
                if isinstance(days, int) and days < STATEMENT_RETENTION_DAYS:
                    yield bucket.urn, f"financial records expire after {days} days, before {STATEMENT_RETENTION_DAYS}"


def check_no_public_buckets(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Buckets block all public access and grant nothing to everyone."""
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for bucket in _of_type(resources, "aws:s3/bucket:Bucket"):
        if bucket.inputs.get("acl") in ("public-read", "public-read-write", "authenticated-read"):
            yield bucket.urn, f"bucket ACL {bucket.inputs['acl']!r} is public"
        blocks = _siblings(resources, bucket, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        if not any(all(b.inputs.get(flag) is True for flag in flags) for b in blocks):
            yield bucket.urn, "bucket has no public access block with all four settings on"
    for policy in _of_type(resources, "aws:s3/bucketPolicy:BucketPolicy"):
        document = _json(policy.inputs.get("policy")) or {}
        for statement in document.get("Statement", []):
            principal = statement.get("Principal")
            if statement.get("Effect") == "Allow" and (principal == "*" or principal == {"AWS": "*"}):
                yield policy.urn, "bucket policy allows everyone"


DATA_BEARING = (
    "aws:s3/bucket:Bucket",
    "aws:kms/key:Key",
    "snowflake:index/schema:Schema",
    "snowflake:index/database:Database",
)


def check_data_retained(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Data-bearing resources survive a stack delete unless the partner is purged."""
    if context.purge:
        return
    for resource in resources:
        if resource.type in DATA_BEARING and not resource.retain_on_delete:
            yield resource.urn, "data-bearing resource would be destroyed with the stack (set retain_on_delete)"


ROUTE = "kong:index/route:Route"
KONG_CERTIFICATE = "kong:index/certificate:Certificate"


def check_plugin_schema(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Every Kong plugin config names only fields its plugin's schema has (gateway/kong_plugins.py)."""
    for plugin in _of_type(resources, "kong:index/plugin:Plugin"):
        raw = plugin.inputs.get("configJson")
        if raw in (None, UNKNOWN, SECRET):
            continue  # not known at plan time (no config of ours holds a secret: tokens are vault references)
        config = _json(raw)
        if config is None:
            yield plugin.urn, "plugin config is not a JSON object"
            continue
        for problem in config_problems(str(plugin.inputs.get("name")), config):
            yield plugin.urn, problem


def _route_hosts(resources: list[Resource]) -> list[tuple[Resource, str]]:
    return [
        (route, host)
        for route in _of_type(resources, ROUTE)
        for host in route.inputs.get("hosts") or []
        if isinstance(host, str)
    ]


CERT_MANAGER_CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
SYNC_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"


def certificate_names(resource: Resource) -> list[str]:
    """Host names a certificate resource is for: a Kong certificate's SNIs, a cert-manager Certificate's dnsNames."""
    if resource.type == CERT_MANAGER_CERTIFICATE:
        names = (resource.inputs.get("spec") or {}).get("dnsNames") or []
    else:
        names = resource.inputs.get("snis") or []
    return [n for n in names if isinstance(n, str)]


def synced_secrets(resources: list[Resource]) -> set[tuple[str, str]]:
    """(namespace, Secret) the region's certificate sync is granted, i.e. serves from Kong (gateway/tls.py)."""
    found = set()
    for role in _of_type(resources, SYNC_ROLE):
        metadata = role.inputs.get("metadata") or {}
        if (metadata.get("labels") or {}).get(CERT_SYNC_LABEL) != "true":
            continue
        for rule in role.inputs.get("rules") or []:
            if "secrets" in (rule.get("resources") or []) and "get" in (rule.get("verbs") or []):
                found |= {(metadata.get("namespace", ""), name) for name in rule.get("resourceNames") or []}
    return found


def gateway_certificates(resources: list[Resource]) -> list[Resource]:
    """Certificates Kong serves: Kong certificates, and cert-manager Certificates whose Secret the sync is granted."""
    synced = synced_secrets(resources)
    return _of_type(resources, KONG_CERTIFICATE) + [
        c
        for c in _of_type(resources, CERT_MANAGER_CERTIFICATE)
        if ((c.inputs.get("metadata") or {}).get("namespace", ""), (c.inputs.get("spec") or {}).get("secretName"))
        in synced
    ]


def check_route_certificates(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Every host a route serves has a certificate Kong serves for it (a Kong certificate, or a cert-manager
    Certificate registered with the region's certificate sync), and the route is created after it (depends on it,
    which for a cert-manager Certificate means after it is issued), so Kong never has a route on a host it has no
    certificate for."""
    certificates = gateway_certificates(resources)
    for route, host in _route_hosts(resources):
        covering = [c for c in certificates if any(host_matches(s, host) for s in certificate_names(c))]
        if not covering:
            yield (
                route.urn,
                (
                    f"route host {host!r} has no certificate binding (a Kong certificate with that "
                    f"SNI, or a cert-manager "
                    "Certificate for it whose Secret the certificate sync is granted: bind_certificate)"
                ),
            )
        elif route.dependencies is not None and not any(c.urn in route.dependencies for c in covering):
            yield route.urn, f"route on {host!r} does not wait for its certificate (depends_on the certificate)"
        if host not in (route.inputs.get("snis") or []):
            yield route.urn, f"route host {host!r} is not among the route's SNIs"


def claimed_hosts(resources: list[Resource]) -> set[str]:
    claimed = {host.lower() for _, host in _route_hosts(resources)}
    for certificate in _of_type(resources, KONG_CERTIFICATE) + _of_type(resources, CERT_MANAGER_CERTIFICATE):
        claimed |= {s.lower() for s in certificate_names(certificate)}
    return claimed


def check_host_ownership(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """A partner stack routes and certifies only its own hosts: its platform names and its own domain."""
    if context.kind != "partner":
        return
    own = context.partner_id or ""
    certificates = _of_type(resources, KONG_CERTIFICATE) + _of_type(resources, CERT_MANAGER_CERTIFICATE)
    for resource in _of_type(resources, ROUTE) + certificates:
        names = list(resource.inputs.get("hosts") or []) + list(resource.inputs.get("snis") or [])
        if resource.type == CERT_MANAGER_CERTIFICATE:
            names = certificate_names(resource)
        for host in names:
            if not isinstance(host, str) or host == UNKNOWN:
                continue
            if host.lower() != (context.partner_domain or "").lower() and not is_platform_host(host, own):
                yield resource.urn, f"host {host!r} belongs neither to partner {own!r}'s platform names nor its domain"


def hosts_claimed_twice(stacks: dict[str, list[Resource]]) -> list[Violation]:
    """Across the partner stacks of one plan: a host that two partners route or certify (mandatory)."""
    return hosts_claimed_twice_in({stack: sorted(claimed_hosts(resources)) for stack, resources in stacks.items()})


UNIQUE_HOSTS = "unique-hosts"
"""The fleet-wide check: a host claimed by two partner stacks (computed over every planned stack's claims)."""


def hosts_claimed_twice_in(claims: dict[str, list[str]]) -> list[Violation]:
    """`hosts_claimed_twice` over each stack's claimed hosts (as the plan cache keeps them)."""
    owners: dict[str, list[str]] = {}
    for stack, hosts in claims.items():
        if stack.startswith("partner-"):
            for host in hosts:
                owners.setdefault(host, []).append(stack)
    return [
        Violation(UNIQUE_HOSTS, "mandatory", stack, f"stack:{stack}", f"host {host!r} is also claimed by {others}")
        for host, claimants in sorted(owners.items())
        if len(claimants) > 1
        for stack in claimants
        for others in [", ".join(c for c in claimants if c != stack)]
    ]


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _domain_overlap(a: str, b: str) -> bool:
    return a == b or a.endswith(f".{b}") or b.endswith(f".{a}")


def check_domain_ownership(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """A host a partner's routes claim is its own: not another partner's domain (nor above or below it), not
    the platform's zone except the partner's own names under `<id>.<zone>`."""
    if context.kind != "partner":
        return
    own = context.partner_id or ""
    others = [(pid, d.lower().rstrip(".")) for pid, d in context.fleet_domains if pid != own]
    zone = context.platform_zone
    if context.partner_domain:
        # The spec's domain, routed or not yet (a route comes only once its proof is checked): a clash is caught in
        # the pull request that introduces it.
        domain = context.partner_domain.lower().rstrip(".")
        for other, theirs in others:
            if _domain_overlap(domain, theirs):
                yield _stack_urn(resources, context), f"domain {domain} clashes with {theirs}, partner {other!r}'s"
        if zone and (domain == zone or domain.endswith(f".{zone}")):
            yield _stack_urn(resources, context), f"domain {domain} is in the platform's zone {zone}"
    for route in _of_type(resources, "kong:index/route:Route"):
        hosts = route.inputs.get("hosts") or []
        for host in hosts if isinstance(hosts, list) else [hosts]:
            if not isinstance(host, str) or host == UNKNOWN:
                continue
            name = host.lower().rstrip(".")
            for other, domain in others:
                if _domain_overlap(name, domain):
                    yield route.urn, f"route host {name} claims {domain}, the domain of partner {other!r}"
            if zone and (name == zone or name.endswith(f".{zone}")) and not name.endswith(f".{own}.{zone}"):
                yield route.urn, f"route host {name} is in the platform's zone {zone} outside the partner's own names"


POLICIES: tuple[Policy, ...] = (
    Policy(
        "domain-ownership",
        "mandatory",
        "A partner's routes claim only its own domain and its names under the platform zone.",
        check_domain_ownership,
    ),
    Policy(
        "partner-isolation",
        "mandatory",
        "A partner's resources reference only its own namespace, schema, role and consumer.",
        check_isolation,
    ),
    Policy(
        "tenant-baseline",
        "mandatory",
        "Each partner namespace has a default-deny network policy, a quota and a limit range.",
        check_tenant_baseline,
    ),
    Policy(
        "tier-consistency",
        "mandatory",
        "Quota, limits, rate limit and ACL tier agree with the billed tier.",
        check_tier_consistency,
    ),
    Policy(
        "data-residency",
        "mandatory",
        "Data of a country with required residency stays in a region that serves it.",
        check_residency,
    ),
    Policy(
        "residency-preference",
        "advisory",
        "Countries that prefer residency are served from their own region.",
        residency_advice,
    ),
    Policy(
        "customer-managed-key",
        "mandatory",
        "Buckets are encrypted with a customer-managed KMS key where a profile asks.",
        check_customer_managed_key,
        levels=_cmk_level,
    ),
    Policy(
        "retention",
        "mandatory",
        "Data expires within the strictest retention of the stack's countries.",
        check_retention,
    ),
    Policy("no-public-buckets", "mandatory", "No bucket is public.", check_no_public_buckets),
    Policy(
        "kong-plugin-schema",
        "mandatory",
        "Every Kong plugin config uses only fields of its plugin's schema (Kong 3.9).",
        check_plugin_schema,
    ),
    Policy(
        "route-certificates",
        "mandatory",
        "Every host a Kong route serves has a certificate binding (SNI) created before the route.",
        check_route_certificates,
    ),
    Policy(
        "host-ownership",
        "mandatory",
        "A partner stack routes and certifies only its own platform names and its own domain.",
        check_host_ownership,
    ),
    Policy(
        "named-without-dependency",
        "mandatory",
        "A resource that names another planned resource by a plain string depends on it.",
        check_named_without_dependency,
    ),
    Policy(
        "data-retained-on-delete",
        "advisory",
        "Data-bearing resources are retained when a stack is deleted.",
        check_data_retained,
    ),
    Policy(
        "snowflake-preview-features",
        "mandatory",
        "Preview-gated Snowflake resources have a provider that enables their preview feature.",
        check_snowflake_preview_features,
    ),
    Policy(
        "integration-confinement",
        "mandatory",
        "An integration's resources stay in its own sandbox and companion namespace and its own Kong entities: never a "
        "partner's namespace, schema or another integration's sandbox; consumers only for installing partners.",
        check_integration_confinement,
    ),
    Policy(
        "integration-sandbox",
        "mandatory",
        "Every integration sandbox: PSS restricted, default-deny, egress only to DNS, the gateway and its egress "
        "proxy (allowlisting exactly its hosts), no service-account token, read-only root, image by digest.",
        check_integration_sandbox,
    ),
    Policy(
        "integration-caps",
        "mandatory",
        "An integration's quota, limit range and containers stay within the marketplace caps.",
        check_integration_caps,
    ),
    Policy(
        "deploy-order",
        "mandatory",
        "A first `pulumi up` succeeds in one go: custom resources wait for their CRDs, releases and workloads for "
        "their nodes and identities, claims have a storage class and CSI driver, HPAs a metrics source, and the "
        "stack reads nothing it creates.",
        check_deploy_order,
    ),
    Policy(
        "kubernetes-schema",
        "mandatory",
        "Every Kubernetes object validates (strict) against the OpenAPI schema of its cluster's version.",
        check_kubernetes_schema,
    ),
)


def evaluate(
    resources: list[Resource], context: StackContext, policies: Iterable[Policy] = POLICIES
) -> list[Violation]:
    violations = []
    for policy in policies:
        level = policy.level_for(context)
        seen: set[Finding] = set()
        for finding in policy.check(resources, context):
            if finding not in seen:
                seen.add(finding)
                violations.append(Violation(policy.name, level, context.stack, finding[0], finding[1]))
    return violations
