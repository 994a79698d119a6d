"""The NetworkPolicies of the namespaces the platform hands out: a partner's tenant namespace and an integration's
sandbox and system namespaces. Default deny everywhere, then exactly the peers each one needs; the VPC CNI's network
policy agent enforces them (the region's cluster turns it on, components/regional_deployment/cluster.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi_kubernetes as k8s

from foundation.naming import integration_namespace, integration_system_namespace
from regions.network import POD_IDENTITY_AGENT

if TYPE_CHECKING:  # a partner's plan imports this module and needs nothing of the marketplace's
    from integrations.rules import ReviewRules
    from integrations.spec import IntegrationSpec

GATEWAY_NAMESPACE = "platform"
GATEWAY_POD_LABELS = {"app.kubernetes.io/name": "kong"}
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "127.0.0.0/8")
"""Never reachable through the proxy: the VPC, peered VPCs, link-local (instance metadata), CGNAT, loopback."""
WORKLOAD_LABELS = {"app.kubernetes.io/name": "integration", "app.kubernetes.io/component": "workload"}
"""Labels of an integration's workload pods."""
PROXY_LABELS = {"app.kubernetes.io/name": "egress-proxy"}
"""Labels of an integration's egress proxy pods."""
CONFORMANCE_LABELS = {"app.kubernetes.io/name": "conformance"}
"""Labels of an integration's conformance job pods."""


def peer(
    namespace: str | None = None,
    pods: dict[str, str] | None = None,
    cidr: str | None = None,
    exclude: tuple[str, ...] = (),
) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    np = k8s.networking.v1
    if cidr is not None:
        return np.NetworkPolicyPeerArgs(ip_block=np.IPBlockArgs(cidr=cidr, except_=list(exclude) or None))
    return np.NetworkPolicyPeerArgs(
        namespace_selector=(
            k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": namespace})
            if namespace is not None
            else None
        ),
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pods or {}),
    )


def port(number: int, protocol: str = "TCP") -> k8s.networking.v1.NetworkPolicyPortArgs:
    return k8s.networking.v1.NetworkPolicyPortArgs(protocol=protocol, port=number)


def allow_dns() -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Egress to cluster DNS (kube-dns), UDP and TCP 53, for every pod of the namespace."""
    np = k8s.networking.v1
    return np.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(),
        policy_types=["Egress"],
        egress=[
            np.NetworkPolicyEgressRuleArgs(
                to=[peer("kube-system", {"k8s-app": "kube-dns"})], ports=[port(53, "UDP"), port(53)]
            )
        ],
    )


def tenant_network_policies(endpoint_cidrs: tuple[str, ...]) -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    """Default deny, then exactly what a tenant needs: its own namespace, the gateway (both ways), cluster DNS, the
    region's interface endpoints (S3, KMS, STS) and the node-local Pod Identity agent. Nothing else: no other
    namespace, no instance metadata (169.254.169.254, the node's credentials), no internet. Enforced by the VPC CNI's
    network policy agent (the region's cluster enables it)."""
    everything = k8s.meta.v1.LabelSelectorArgs()
    np = k8s.networking.v1
    gateway = peer(GATEWAY_NAMESPACE, GATEWAY_POD_LABELS)
    identity_agent = np.NetworkPolicyEgressRuleArgs(to=[peer(cidr=POD_IDENTITY_AGENT)], ports=[port(80)])
    endpoints = [np.NetworkPolicyEgressRuleArgs(to=[peer(cidr=c) for c in endpoint_cidrs], ports=[port(443)])]
    return {
        "default-deny": np.NetworkPolicySpecArgs(pod_selector=everything, policy_types=["Ingress", "Egress"]),
        "allow-same-namespace": np.NetworkPolicySpecArgs(
            pod_selector=everything,
            policy_types=["Ingress", "Egress"],
            ingress=[np.NetworkPolicyIngressRuleArgs(from_=[peer()])],
            egress=[np.NetworkPolicyEgressRuleArgs(to=[peer()])],
        ),
        "allow-gateway": np.NetworkPolicySpecArgs(
            pod_selector=everything,
            policy_types=["Ingress", "Egress"],
            ingress=[np.NetworkPolicyIngressRuleArgs(from_=[gateway])],
            # Calls to platform APIs go out through the regional gateway, like any partner's.
            egress=[np.NetworkPolicyEgressRuleArgs(to=[gateway])],
        ),
        "allow-dns": allow_dns(),
        "allow-aws-apis": np.NetworkPolicySpecArgs(
            pod_selector=everything,
            policy_types=["Egress"],
            egress=(endpoints if endpoint_cidrs else []) + [identity_agent],
        ),
    }


def sandbox_network_policies(
    spec: IntegrationSpec, rules: ReviewRules
) -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    """Default deny; in: the gateway and the conformance job, to the workload's port; out: DNS, the regional gateway
    and the egress proxy. No other namespace, no metadata address, no internet but through the proxy."""
    np = k8s.networking.v1
    everything = k8s.meta.v1.LabelSelectorArgs()
    system = integration_system_namespace(spec.id)
    return {
        "default-deny": np.NetworkPolicySpecArgs(pod_selector=everything, policy_types=["Ingress", "Egress"]),
        "allow-gateway": np.NetworkPolicySpecArgs(
            pod_selector=everything,
            policy_types=["Ingress", "Egress"],
            ingress=[
                np.NetworkPolicyIngressRuleArgs(
                    from_=[peer(GATEWAY_NAMESPACE, GATEWAY_POD_LABELS), peer(system, CONFORMANCE_LABELS)],
                    ports=[port(spec.port)],
                )
            ],
            # Platform API calls (the installation's key, the scope routes) go through the regional gateway.
            egress=[np.NetworkPolicyEgressRuleArgs(to=[peer(GATEWAY_NAMESPACE, GATEWAY_POD_LABELS)])],
        ),
        "allow-dns": allow_dns(),
        "allow-egress-proxy": np.NetworkPolicySpecArgs(
            pod_selector=everything,
            policy_types=["Egress"],
            egress=[
                np.NetworkPolicyEgressRuleArgs(to=[peer(system, PROXY_LABELS)], ports=[port(rules.egress_proxy.port)])
            ],
        ),
    }


def system_network_policies(
    spec: IntegrationSpec, rules: ReviewRules
) -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    """Default deny; the proxy: in from the sandbox on its port, out to public addresses on 443; the conformance
    job: out to the sandbox's port. Both: DNS."""
    np = k8s.networking.v1
    everything = k8s.meta.v1.LabelSelectorArgs()
    sandbox = integration_namespace(spec.id)
    proxy = k8s.meta.v1.LabelSelectorArgs(match_labels=PROXY_LABELS)
    return {
        "default-deny": np.NetworkPolicySpecArgs(pod_selector=everything, policy_types=["Ingress", "Egress"]),
        "allow-proxy": np.NetworkPolicySpecArgs(
            pod_selector=proxy,
            policy_types=["Ingress", "Egress"],
            ingress=[
                np.NetworkPolicyIngressRuleArgs(
                    from_=[peer(sandbox, WORKLOAD_LABELS)], ports=[port(rules.egress_proxy.port)]
                )
            ],
            egress=(
                [np.NetworkPolicyEgressRuleArgs(to=[peer(cidr="0.0.0.0/0", exclude=PRIVATE_RANGES)], ports=[port(443)])]
                if spec.egress
                else []
            ),
        ),
        "allow-conformance": np.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=CONFORMANCE_LABELS),
            policy_types=["Egress"],
            egress=[np.NetworkPolicyEgressRuleArgs(to=[peer(sandbox, WORKLOAD_LABELS)], ports=[port(spec.port)])],
        ),
        "allow-dns": allow_dns(),
    }
