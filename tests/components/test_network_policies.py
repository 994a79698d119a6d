"""The NetworkPolicies of tenant namespaces and integration namespaces (components/network_policies.py), as the
specs they hand to Kubernetes: default deny first, then exactly the named peers."""

from __future__ import annotations

from typing import Any

import pytest

from components.network_policies import (
    CONFORMANCE_LABELS,
    PRIVATE_RANGES,
    PROXY_LABELS,
    WORKLOAD_LABELS,
    allow_dns,
    sandbox_network_policies,
    system_network_policies,
    tenant_network_policies,
)
from integrations.rules import load_rules
from integrations.spec import load_integration
from regions.network import POD_IDENTITY_AGENT
from tests.integrations.conftest import EXAMPLE


def plain(value: Any) -> Any:
    """An input type as the plain data Kubernetes receives (Pulumi's property names, None left out)."""
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not None}
    if type(value).__module__.startswith("pulumi_kubernetes"):
        return {k.rstrip("_"): plain(v) for k, v in vars(value).items() if v is not None}
    return value


def test_a_tenant_is_denied_by_default_and_reaches_only_its_peers() -> None:
    policies = {name: plain(spec) for name, spec in tenant_network_policies(("10.20.48.0/24",)).items()}
    assert list(policies) == ["default-deny", "allow-same-namespace", "allow-gateway", "allow-dns", "allow-aws-apis"]
    assert policies["default-deny"] == {"pod_selector": {}, "policy_types": ["Ingress", "Egress"]}
    (endpoints, agent) = policies["allow-aws-apis"]["egress"]
    assert endpoints["to"] == [{"ip_block": {"cidr": "10.20.48.0/24"}}]
    assert [p["port"] for p in endpoints["ports"]] == [443]
    assert agent["to"] == [{"ip_block": {"cidr": POD_IDENTITY_AGENT}}]


def test_without_endpoint_subnets_a_tenant_reaches_only_the_identity_agent_of_aws() -> None:
    (rule,) = plain(tenant_network_policies(())["allow-aws-apis"])["egress"]
    assert rule["to"] == [{"ip_block": {"cidr": POD_IDENTITY_AGENT}}]


def test_tenants_and_sandboxes_share_one_dns_rule() -> None:
    spec, rules = load_integration(EXAMPLE), load_rules()
    dns = plain(allow_dns())
    assert plain(tenant_network_policies(())["allow-dns"]) == dns
    assert plain(sandbox_network_policies(spec, rules)["allow-dns"]) == dns
    assert plain(system_network_policies(spec, rules)["allow-dns"]) == dns
    (rule,) = dns["egress"]
    assert sorted((p["protocol"], p["port"]) for p in rule["ports"]) == [("TCP", 53), ("UDP", 53)]


@pytest.mark.parametrize("egress", [("api.calendar.example",), ()])
def test_only_the_proxy_goes_out_and_never_to_private_ranges(egress: tuple[str, ...]) -> None:
    spec = load_integration(EXAMPLE).model_copy(update={"egress": egress})
    rules = load_rules()
    system = {name: plain(policy) for name, policy in system_network_policies(spec, rules).items()}
    proxy = system["allow-proxy"]
    assert proxy["pod_selector"] == {"match_labels": PROXY_LABELS}
    if egress:
        (rule,) = proxy["egress"]
        assert rule["to"] == [{"ip_block": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}]
    else:
        assert proxy["egress"] == []
    (ingress,) = proxy["ingress"]
    assert ingress["from"][0]["pod_selector"] == {"match_labels": WORKLOAD_LABELS}
    sandbox = {name: plain(policy) for name, policy in sandbox_network_policies(spec, rules).items()}
    assert not any("ip_block" in str(policy) for policy in sandbox.values())  # no address: the proxy or nothing
    (gateway_in,) = sandbox["allow-gateway"]["ingress"]
    assert {"match_labels": CONFORMANCE_LABELS} in [peer["pod_selector"] for peer in gateway_in["from"]]
