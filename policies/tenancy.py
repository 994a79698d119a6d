"""Tenancy rules: a partner stack names only its own objects, has its tenant baseline, and gets what its tier says."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from foundation.naming import PARTNER_ID, tier_acl_group
from policies.model import Finding, Resource, StackContext
from policies.resources import of_type, parsed_json, stack_urn, strings_in

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
        for text in strings_in(resource.inputs):
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
    stack = stack_urn(resources, context)
    namespaces = of_type(resources, "kubernetes:core/v1:Namespace")
    if not namespaces:
        yield stack, "no tenant namespace"
    for ns in namespaces:
        labels = ns.inputs.get("metadata", {}).get("labels", {})
        if labels.get("partner_id") != context.partner_id or labels.get("isolation") != "strict":
            yield ns.urn, "namespace must be labelled partner_id=<id> and isolation=strict"
    policies = of_type(resources, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
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
    if not of_type(resources, "kubernetes:core/v1:ResourceQuota"):
        yield stack, "no ResourceQuota in the tenant namespace"
    if not of_type(resources, "kubernetes:core/v1:LimitRange"):
        yield stack, "no LimitRange in the tenant namespace"


def check_tier_consistency(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Quota, container limits, rate limit and ACL tier group all come from the partner's tier."""
    if context.kind != "partner" or context.tier is None:
        return
    tier = context.tier
    for quota in of_type(resources, "kubernetes:core/v1:ResourceQuota"):
        if quota.inputs.get("spec", {}).get("hard") != tier.quota.hard():
            yield quota.urn, f"ResourceQuota differs from the {context.tier_name} tier's quota"
    limits = tier.container_limits
    expected_max = {"cpu": limits.max_cpu, "memory": limits.max_memory}
    for limit_range in of_type(resources, "kubernetes:core/v1:LimitRange"):
        items = limit_range.inputs.get("spec", {}).get("limits", [])
        if not any(item.get("max") == expected_max for item in items):
            yield limit_range.urn, f"LimitRange max differs from the {context.tier_name} tier's {expected_max}"
    expected_rate = tier.rate_limit.model_dump()
    for plugin in of_type(resources, "kong:index/plugin:Plugin"):
        if plugin.inputs.get("name") != "rate-limiting":
            continue
        config = parsed_json(plugin.inputs.get("configJson"))
        if config is None or {k: config.get(k) for k in expected_rate} != expected_rate:
            yield plugin.urn, f"rate limit differs from the {context.tier_name} tier's {expected_rate}"
    groups = {r.inputs.get("group") for r in of_type(resources, "kong:index/consumerAcl:ConsumerAcl")}
    tier_groups = {g for g in groups if isinstance(g, str) and g.startswith("tier-")}
    if tier_groups and tier_groups != {tier_acl_group(context.tier_name or "")}:
        yield (
            stack_urn(resources, context),
            f"consumer is in ACL groups {sorted(tier_groups)}, billed as {context.tier_name}",
        )
