"""Rules over an `integration-<id>` stack: confinement to its own sandbox, the sandbox's baseline, the caps.

Pure functions of (resources, context) like `policies.rules`, which lists them in POLICIES; they read only the
context's `integration` facts (built from the spec, the rules table and the fleet by `policies.context`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from foundation.naming import (
    installation_consumer,
    integration_acl_group,
    integration_namespace,
    integration_system_namespace,
    partner_namespace,
    region_database,
    region_object,
    snowflake_ident,
)
from foundation.warehouse_schema import CONFORMANCE_RESULTS, RAW


class Resource(Protocol):
    """What these rules read of `policies.rules.Resource` (not imported: rules imports this module)."""

    @property
    def urn(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def inputs(self) -> dict[str, Any]: ...


class StackContext(Protocol):
    """What these rules read of `policies.rules.StackContext`."""

    @property
    def stack(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def integration(self) -> IntegrationFacts | None: ...


Finding = tuple[str, str]
DIGEST_IMAGE = re.compile(r"^[a-z0-9][a-z0-9.:-]*(/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}$")
SHARED_NAMESPACES = {"platform": "the gateway", "kube-system": "cluster DNS"}
"""Namespaces an integration's network policies may name besides its own: where the gateway and DNS run."""
PRIVATE_RANGES = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}
"""What the proxy's way out must always exclude: the VPC, peers and the instance metadata address."""
ADDRESS_REACHING_PODS = ({"app.kubernetes.io/name": "egress-proxy"}, {"app.kubernetes.io/name": "conformance"})
"""The only pods of the system namespace whose egress may name addresses: the proxy, and the conformance job on its
way to the region's warehouse (components/network_policies.py: PROXY_LABELS, CONFORMANCE_LABELS)."""


@dataclass(frozen=True)
class IntegrationFacts:
    integration_id: str
    """The integration's id."""
    regions: tuple[str, ...]
    """Regions it is offered in."""
    egress: tuple[str, ...]
    """Its declared egress hosts."""
    installations: tuple[tuple[str, str], ...]
    """(partner id, home region) of each installing partner."""
    caps: tuple[str, str, str]
    """The caps: cpu, memory, storage."""
    fleet_integration_ids: tuple[str, ...] = ()
    """Every integration id of the marketplace (another's sandbox is named by its id)."""


def _quantity(text: Any) -> Decimal | None:
    from integrations.rules import quantity

    try:
        return quantity(str(text))
    except ValueError:
        return None


def _facts(context: StackContext) -> IntegrationFacts | None:
    return context.integration if context.kind == "integration" else None


def _own_namespaces(facts: IntegrationFacts) -> set[str]:
    return {integration_namespace(facts.integration_id), integration_system_namespace(facts.integration_id)}


def _whose(namespace: str, facts: IntegrationFacts) -> str:
    if namespace.startswith("partner-"):
        return f"partner namespace {namespace!r}"
    for other in facts.fleet_integration_ids:
        if other != facts.integration_id and namespace in (
            integration_namespace(other),
            integration_system_namespace(other),
        ):
            return f"another integration's sandbox {namespace!r}"
    return f"namespace {namespace!r}"


def _namespace_selectors(value: Any) -> Iterator[str]:
    """Every namespace a network policy's peers name (kubernetes.io/metadata.name selectors)."""
    if isinstance(value, dict):
        selector = value.get("namespaceSelector")
        if isinstance(selector, dict):
            name = (selector.get("matchLabels") or {}).get("kubernetes.io/metadata.name")
            yield name if isinstance(name, str) else "<any namespace>"
        for item in value.values():
            yield from _namespace_selectors(item)
    elif isinstance(value, list):
        for item in value:
            yield from _namespace_selectors(item)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


_PAYOUT_MERGE = re.compile(r"^MERGE INTO [A-Z0-9_]+\.RAW\.(DEVELOPERS|INTEGRATIONS|INSTALLS) t USING ")


def _own_payout_row(resource: Resource, iid: str) -> bool:
    """The platform's own rows for paying the integration's developer (components/integration_terms.py): an Execute
    inside its IntegrationTerms that upserts its developer, its own INTEGRATIONS row or its own installs, or dates
    one of its own installs removed. Anything else in the warehouse is not the integration's to hold."""
    parents = ("platform:integration_terms:IntegrationTerms$", "platform:install_row:InstallRow$")
    if resource.type != "snowflake:index/execute:Execute" or not any(p in resource.urn for p in parents):
        return False
    removal = re.compile(
        rf"^UPDATE [A-Z0-9_]+\.RAW\.INSTALLS SET REMOVED_ON = CURRENT_DATE\(\) WHERE INSTALL_ID = "
        rf"'[a-z0-9-]+/{re.escape(iid)}' AND REMOVED_ON IS NULL$"
    )
    for key in ("execute", "revert"):
        sql = resource.inputs.get(key)
        if sql == "SELECT 1" or (isinstance(sql, str) and removal.fullmatch(sql)):
            continue
        if not isinstance(sql, str):
            return False
        merge = _PAYOUT_MERGE.match(sql)
        if merge is None:
            return False
        ids = re.findall(r'\\?"INTEGRATION_ID\\?":\\?"([^"\\]*)', sql)
        if merge.group(1) != "DEVELOPERS" and (not ids or set(ids) != {iid}):
            return False
    return True


def _without_defaults(value: Any) -> Any:
    """An input object without the `__defaults` bookkeeping a bridged provider's check adds (a real preview)."""
    return {k: v for k, v in value.items() if k != "__defaults"} if isinstance(value, dict) else value


def _own_recording_access(resource: Resource, facts: IntegrationFacts) -> bool:
    """The conformance job's warehouse access in one of its regions (components/conformance_recording.py): the role
    and service user `<REGION DB>_CONFORMANCE_<ID>`, the user holding that role, and the role's grants: USAGE on
    the region's database, its RAW schema and its load warehouse, INSERT and SELECT on CONFORMANCE_RESULTS.
    Nothing else in the warehouse is the integration's to hold."""
    inputs, ident = resource.inputs, snowflake_ident(facts.integration_id)
    for region in facts.regions:
        database, name = region_database(region), region_object(region, f"CONFORMANCE_{ident}")
        if resource.type == "snowflake:index/accountRole:AccountRole":
            if inputs.get("name") == name:
                return True
        elif resource.type == "snowflake:index/serviceUser:ServiceUser":
            if (inputs.get("name"), inputs.get("defaultRole")) == (name, name) and "password" not in inputs:
                return True
        elif resource.type == "snowflake:index/grantAccountRole:GrantAccountRole":
            if (inputs.get("roleName"), inputs.get("userName")) == (name, name) and not inputs.get("parentRoleName"):
                return True
        elif resource.type == "snowflake:index/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole":
            # The target (the on* argument), as set: a provider's defaults elsewhere (alwaysApplyTrigger) do not
            # matter, a grant option or "all privileges" does.
            on = {key: _without_defaults(value) for key, value in inputs.items() if key.startswith("on")}
            widened = any(inputs.get(key) for key in ("allPrivileges", "withGrantOption", "alwaysApply"))
            allowed: list[tuple[list[str], dict[str, Any]]] = [
                (["USAGE"], {"onAccountObject": {"objectType": "DATABASE", "objectName": database}}),
                (["USAGE"], {"onSchema": {"schemaName": f"{database}.{RAW}"}}),
                (
                    ["USAGE"],
                    {"onAccountObject": {"objectType": "WAREHOUSE", "objectName": region_object(region, "LOAD_WH")}},
                ),
                (
                    ["INSERT", "SELECT"],
                    {"onSchemaObject": {"objectType": "TABLE", "objectName": CONFORMANCE_RESULTS.fqn(database)}},
                ),
            ]
            if inputs.get("accountRoleName") == name and not widened and (inputs.get("privileges"), on) in allowed:
                return True
    return False


def check_integration_confinement(resources: Sequence[Resource], context: StackContext) -> Iterable[Finding]:
    facts = _facts(context)
    if facts is None:
        return
    iid = facts.integration_id
    own = _own_namespaces(facts)
    group = integration_acl_group(iid)
    installs = dict(facts.installations)
    for resource in resources:
        inputs = resource.inputs
        cloud = resource.type.startswith(("snowflake:", "aws:")) and not resource.type.startswith("pulumi:providers:")
        if cloud and not (_own_payout_row(resource, iid) or _own_recording_access(resource, facts)):
            yield resource.urn, "an integration stack holds no warehouse or cloud-account resources"
        metadata = inputs.get("metadata")
        if resource.type.startswith("kubernetes:") and isinstance(metadata, dict):
            where = (
                metadata.get("name") if resource.type == "kubernetes:core/v1:Namespace" else metadata.get("namespace")
            )
            if where not in own:
                yield resource.urn, f"Kubernetes object reaches {_whose(str(where), facts)}, not its own sandbox"
            for named in _namespace_selectors(inputs.get("spec")):
                if named not in own and named not in SHARED_NAMESPACES:
                    yield resource.urn, f"network policy opens {_whose(named, facts)}"
        if resource.type == "kong:index/consumer:Consumer":
            partner = str(inputs.get("customId", "")).split("/", 1)[0]
            if partner not in installs:
                yield resource.urn, f"consumer for {partner!r}, which has not installed {iid}"
            elif (
                inputs.get("username") != installation_consumer(iid, partner)
                or inputs.get("customId") != f"{partner}/{iid}"
            ):
                yield (
                    resource.urn,
                    f"installation consumer of {partner} must be {installation_consumer(iid, partner)!r}",
                )
        if resource.type == "kong:index/consumerAcl:ConsumerAcl" and inputs.get("group") != group:
            yield resource.urn, f"installation consumers belong to {group!r} only, not {inputs.get('group')!r}"
        if resource.type == "kong:index/plugin:Plugin" and inputs.get("name") == "acl":
            config = _json(inputs.get("configJson")) or {}
            allowed = {group, *(partner_namespace(p) for p in installs)}
            extra = sorted(set(config.get("allow") or []) - allowed)
            if extra or config.get("deny"):
                yield resource.urn, f"ACL opens groups beyond its installations: {extra or config.get('deny')}"
        if resource.type == "kong:index/service:Service":
            host = str(inputs.get("host", ""))
            if not host.endswith(f".{integration_namespace(iid)}.svc.cluster.local"):
                yield resource.urn, f"Kong service points at {host!r}, outside its sandbox"
        if resource.type == "kong:index/route:Route":
            paths = inputs.get("paths") or []
            headers = {h.get("name"): h.get("values") for h in inputs.get("headers") or [] if isinstance(h, dict)}
            if paths != [f"/integrations/{iid}/"] and headers.get("X-Platform-Integration") != [iid]:
                yield resource.urn, f"route {paths} is neither under /integrations/{iid}/ nor a scope route of {iid}"
    for partner, home in facts.installations:
        if home not in facts.regions:
            yield f"stack:{context.stack}", f"{partner} installed it but its home region {home} is not offered"


def _pod_specs(resources: Sequence[Resource], namespaces: set[str]) -> Iterator[tuple[Resource, dict[str, Any]]]:
    for resource in resources:
        kinds = ("kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job")
        if resource.type in kinds and (resource.inputs.get("metadata") or {}).get("namespace") in namespaces:
            yield resource, ((resource.inputs.get("spec") or {}).get("template") or {}).get("spec") or {}


def check_integration_sandbox(resources: Sequence[Resource], context: StackContext) -> Iterable[Finding]:
    facts = _facts(context)
    if facts is None:
        return
    iid = facts.integration_id
    sandbox, system = integration_namespace(iid), integration_system_namespace(iid)
    stack = f"stack:{context.stack}"
    namespaces = [r for r in resources if r.type == "kubernetes:core/v1:Namespace"]
    expected = 2 * len(facts.regions)
    if len(namespaces) != expected:
        yield stack, f"{len(namespaces)} namespaces for {len(facts.regions)} offered region(s); expected {expected}"
    for ns in namespaces:
        labels = (ns.inputs.get("metadata") or {}).get("labels") or {}
        if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
            yield ns.urn, "namespace must enforce Pod Security 'restricted'"
    policies = [r for r in resources if r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy"]
    for namespace in (sandbox, system):
        deny = [
            p
            for p in policies
            if p.inputs["metadata"].get("namespace") == namespace
            and p.inputs.get("spec", {}).get("podSelector") == {}
            and set(p.inputs["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not p.inputs["spec"].get("ingress")
            and not p.inputs["spec"].get("egress")
        ]
        if len(deny) != len(facts.regions):
            yield stack, f"{namespace}: a default-deny NetworkPolicy in each offered region"
    for policy in policies:
        namespace = policy.inputs["metadata"].get("namespace")
        for rule in policy.inputs.get("spec", {}).get("egress") or []:
            for peer in rule.get("to") or [{}]:
                block = peer.get("ipBlock")
                if block is None:
                    if not peer:
                        yield policy.urn, "an egress rule without peers opens every destination"
                    continue
                ports = [p.get("port") for p in rule.get("ports") or []]
                selector = (policy.inputs.get("spec", {}).get("podSelector") or {}).get("matchLabels")
                if namespace != system or ports != [443] or selector not in ADDRESS_REACHING_PODS:
                    yield (
                        policy.urn,
                        "only the egress proxy reaches addresses (and the conformance job its warehouse), on 443 only",
                    )
                elif not set(block.get("except") or []) >= PRIVATE_RANGES:
                    yield policy.urn, "the proxy's way out must exclude the VPC, private and metadata ranges"
    for resource, pod in _pod_specs(resources, {sandbox, system}):
        if pod.get("automountServiceAccountToken") is not False:
            yield resource.urn, "pods mount no service-account token (automountServiceAccountToken: false)"
        for container in pod.get("containers") or []:
            security = container.get("securityContext") or {}
            if security.get("readOnlyRootFilesystem") is not True:
                yield resource.urn, f"container {container.get('name')!r}: read-only root filesystem"
            if security.get("allowPrivilegeEscalation") is not False:
                yield resource.urn, f"container {container.get('name')!r}: no privilege escalation"
            image = container.get("image")
            where = (resource.inputs.get("metadata") or {}).get("namespace")
            pinned = isinstance(image, str) and DIGEST_IMAGE.fullmatch(image)
            # The conformance job runs the platform's own services image (a region-wide setting), not a third party's.
            if (where == sandbox or resource.type == "kubernetes:apps/v1:Deployment") and not pinned:
                yield resource.urn, f"container {container.get('name')!r}: image {image!r} is not pinned by digest"
    allowlists = [
        r
        for r in resources
        if r.type == "kubernetes:core/v1:ConfigMap"
        and (r.inputs.get("metadata") or {}).get("name") == "egress-allowlist"
    ]
    if len(allowlists) != len(facts.regions):
        yield stack, "an egress allowlist (the proxy's config) in each offered region"
    for allowlist in allowlists:
        conf = str((allowlist.inputs.get("data") or {}).get("squid.conf", ""))
        lines = [line.strip() for line in conf.splitlines() if line.strip()]
        hosts: list[str] = []
        for line in lines:
            if line.startswith("acl allowed_hosts dstdomain"):
                hosts += [h for h in line.split()[3:] if h != "-n"]
        if sorted(hosts) != sorted(facts.egress) or any(h.startswith(".") for h in hosts):
            yield allowlist.urn, f"egress allowlist {hosts} is not exactly the declared hosts {list(facts.egress)}"
        if not lines or lines[-1] != "http_access deny all" or "http_access deny !CONNECT" not in lines:
            yield allowlist.urn, "egress allowlist must allow only CONNECT and end with `http_access deny all`"


def check_integration_caps(resources: Sequence[Resource], context: StackContext) -> Iterable[Finding]:
    facts = _facts(context)
    if facts is None:
        return
    sandbox = integration_namespace(facts.integration_id)
    cpu, memory, storage = (_quantity(c) for c in facts.caps)
    caps = {"cpu": cpu, "memory": memory}

    def over(value: Any, cap: Decimal | None) -> bool:
        number = _quantity(value)
        return number is None or cap is None or number > cap

    quotas = 0
    for resource in resources:
        namespace = (resource.inputs.get("metadata") or {}).get("namespace")
        if namespace != sandbox:
            continue
        if resource.type == "kubernetes:core/v1:ResourceQuota":
            quotas += 1
            hard = (resource.inputs.get("spec") or {}).get("hard") or {}
            for key, cap in (("limits.cpu", cpu), ("limits.memory", memory), ("requests.storage", storage)):
                if key not in hard or over(hard[key], cap):
                    yield resource.urn, f"quota {key} {hard.get(key)!r} is missing or above the cap"
        if resource.type == "kubernetes:core/v1:LimitRange":
            for item in (resource.inputs.get("spec") or {}).get("limits") or []:
                if item.get("type") == "Container":
                    for key, cap in caps.items():
                        if over((item.get("max") or {}).get(key), cap):
                            yield resource.urn, f"limit range max {key} is missing or above the cap"
    if quotas != len(facts.regions):
        yield f"stack:{context.stack}", "a ResourceQuota at the caps in each offered sandbox"
    for resource, pod in _pod_specs(resources, {sandbox}):
        for container in pod.get("containers") or []:
            limits = (container.get("resources") or {}).get("limits") or {}
            for key, cap in caps.items():
                if over(limits.get(key), cap):
                    yield resource.urn, f"container {container.get('name')!r}: {key} limit missing or above the cap"
