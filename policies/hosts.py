"""Gateway host rules: plugin configs match their schema, every routed host has a certificate, a partner claims only
its own hosts and domain, and no host is claimed twice across the fleet."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.kong_plugins import config_problems
from gateway.tls import CERT_SYNC_LABEL, host_matches, is_platform_host
from policies.model import SECRET, UNKNOWN, Finding, Resource, StackContext, Violation
from policies.resources import of_type, parsed_json, stack_urn


def check_plugin_schema(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Every Kong plugin config names only fields its plugin's schema has (gateway/kong_plugins.py)."""
    for plugin in of_type(resources, "kong:index/plugin:Plugin"):
        raw = plugin.inputs.get("configJson")
        if raw in (None, UNKNOWN, SECRET):
            continue  # not known at plan time (no config of ours holds a secret: tokens are vault references)
        config = parsed_json(raw)
        if config is None:
            yield plugin.urn, "plugin config is not a JSON object"
            continue
        for problem in config_problems(str(plugin.inputs.get("name")), config):
            yield plugin.urn, problem


ROUTE = "kong:index/route:Route"
KONG_CERTIFICATE = "kong:index/certificate:Certificate"


def _route_hosts(resources: list[Resource]) -> list[tuple[Resource, str]]:
    return [
        (route, host)
        for route in of_type(resources, ROUTE)
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
    for role in of_type(resources, SYNC_ROLE):
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
    return of_type(resources, KONG_CERTIFICATE) + [
        c
        for c in of_type(resources, CERT_MANAGER_CERTIFICATE)
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
    for certificate in of_type(resources, KONG_CERTIFICATE) + of_type(resources, CERT_MANAGER_CERTIFICATE):
        claimed |= {s.lower() for s in certificate_names(certificate)}
    return claimed


def check_host_ownership(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """A partner stack routes and certifies only its own hosts: its platform names and its own domain."""
    if context.kind != "partner":
        return
    own = context.partner_id or ""
    certificates = of_type(resources, KONG_CERTIFICATE) + of_type(resources, CERT_MANAGER_CERTIFICATE)
    for resource in of_type(resources, ROUTE) + certificates:
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
                yield stack_urn(resources, context), f"domain {domain} clashes with {theirs}, partner {other!r}'s"
        if zone and (domain == zone or domain.endswith(f".{zone}")):
            yield stack_urn(resources, context), f"domain {domain} is in the platform's zone {zone}"
    for route in of_type(resources, "kong:index/route:Route"):
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
