"""IntegrationSandbox under the SDK's mocks: the sandbox per offered region, the egress proxy and its allowlist,
Kong's service/route/scope routes and one consumer per installation (the conformance job: test_conformance_job.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Plan

STACK = "integration-calsync"


@pytest.fixture
def planned(published_calsync_plan: Plan) -> Plan:
    """calsync published and installed by two partners, planned once per session (tests/components/conftest.py)."""
    return published_calsync_plan


def inputs(plan: Plan, type_: str) -> list[dict[str, Any]]:
    return [r.inputs for r in plan.resources(STACK, type_)]


def in_namespace(plan: Plan, type_: str, namespace: str) -> list[dict[str, Any]]:
    return [i for i in inputs(plan, type_) if i["metadata"].get("namespace") == namespace]


def test_a_sandbox_and_a_system_namespace_per_offered_region(planned: Plan) -> None:
    namespaces = inputs(planned, "kubernetes:core/v1:Namespace")
    names = sorted(n["metadata"]["name"] for n in namespaces)
    assert names == ["integration-calsync"] * 2 + ["integration-calsync-system"] * 2
    assert all(n["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted" for n in namespaces)
    providers = {r.provider.split("::")[-2] for r in planned.resources(STACK, "kubernetes:core/v1:Namespace")}
    assert providers == {"k8s-eu-central", "k8s-us-east"}


def test_quota_and_limit_range_at_the_caps(planned: Plan) -> None:
    (quota, _) = in_namespace(planned, "kubernetes:core/v1:ResourceQuota", "integration-calsync")
    assert quota["spec"]["hard"] == {
        "requests.cpu": "500m",
        "limits.cpu": "500m",
        "requests.memory": "512Mi",
        "limits.memory": "512Mi",
        "requests.storage": "1Gi",
        "persistentvolumeclaims": "1",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }
    (limits, _) = in_namespace(planned, "kubernetes:core/v1:LimitRange", "integration-calsync")
    container, claim = limits["spec"]["limits"]
    assert container["max"] == {"cpu": "500m", "memory": "512Mi"}
    assert claim == {"type": "PersistentVolumeClaim", "max": {"storage": "1Gi"}}


def test_workload_runs_the_digest_without_token_on_a_read_only_root(planned: Plan) -> None:
    (workload, _) = in_namespace(planned, "kubernetes:apps/v1:Deployment", "integration-calsync")
    pod = workload["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["image"].startswith("registry.tempo-labs.example/calsync@sha256:")
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["HTTPS_PROXY"] == "http://egress-proxy.integration-calsync-system.svc.cluster.local:3128"
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    accounts = in_namespace(planned, "kubernetes:core/v1:ServiceAccount", "integration-calsync")
    assert all(a["automountServiceAccountToken"] is False for a in accounts)


def test_network_policies_deny_by_default_and_open_only_gateway_dns_and_proxy(planned: Plan) -> None:
    sandbox = {
        p["metadata"]["name"]: p["spec"]
        for p in in_namespace(planned, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "integration-calsync")
    }
    assert set(sandbox) == {"default-deny", "allow-gateway", "allow-dns", "allow-egress-proxy"}
    assert sandbox["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    proxy_rule = sandbox["allow-egress-proxy"]["egress"][0]
    assert proxy_rule["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "integration-calsync-system"
    }
    assert proxy_rule["ports"] == [{"protocol": "TCP", "port": 3128}]
    # No sandbox rule names an address: only the proxy has a way out.
    assert "ipBlock" not in json.dumps(sandbox)
    system = {
        p["metadata"]["name"]: p["spec"]
        for p in in_namespace(planned, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "integration-calsync-system")
    }
    out = system["allow-proxy"]["egress"][0]
    assert out["ports"] == [{"protocol": "TCP", "port": 443}]
    assert out["to"][0]["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert {"10.0.0.0/8", "169.254.0.0/16"} <= set(out["to"][0]["ipBlock"]["except"])


def test_egress_allowlist_is_exactly_the_declared_hosts(planned: Plan) -> None:
    configs = in_namespace(planned, "kubernetes:core/v1:ConfigMap", "integration-calsync-system")
    assert len(configs) == 2
    conf = configs[0]["data"]["squid.conf"].splitlines()
    assert "acl allowed_hosts dstdomain -n calendar.googleapis.example" in conf
    assert conf.index("http_access deny !CONNECT") < conf.index("http_access allow CONNECT allowed_hosts")
    assert conf[-1] == "http_access deny all"


def test_kong_route_scope_routes_and_one_consumer_per_installation(planned: Plan) -> None:
    (service,) = inputs(planned, "kong:index/service:Service")
    assert service["host"] == "calsync.integration-calsync.svc.cluster.local"
    routes = {r["name"]: r for r in inputs(planned, "kong:index/route:Route")}
    assert routes["integration-calsync"]["paths"] == ["/integrations/calsync/"]
    scope_route = routes["integration-calsync-scheduling-write"]
    assert scope_route["paths"] == ["/v2/appointments"] and scope_route["methods"] == ["POST", "PATCH", "DELETE"]
    assert scope_route["headers"] == [{"name": "X-Platform-Integration", "values": ["calsync"]}]
    assert set(routes) == {
        "integration-calsync",
        "integration-calsync-calls-read",
        "integration-calsync-scheduling-write",
    }
    consumers = sorted((c["username"], c["customId"]) for c in inputs(planned, "kong:index/consumer:Consumer"))
    assert consumers == [
        ("integration-calsync.acme-voice", "acme-voice/calsync"),
        ("integration-calsync.sunrise-telecom", "sunrise-telecom/calsync"),
    ]
    assert {a["group"] for a in inputs(planned, "kong:index/consumerAcl:ConsumerAcl")} == {"integration-calsync"}
    acls = [json.loads(p["configJson"]) for p in inputs(planned, "kong:index/plugin:Plugin") if p["name"] == "acl"]
    assert {
        "allow": ["integration-calsync", "partner-acme-voice", "partner-sunrise-telecom"],
        "hide_groups_header": True,
    } in acls
    assert acls.count({"allow": ["integration-calsync"], "hide_groups_header": True}) == 2
    assert not [p for p in inputs(planned, "kong:index/plugin:Plugin") if p["name"] == "request-termination"]
    # Keys are secrets: never in clear in the plan.
    steps = json.loads(planned.preview_json(STACK))["steps"]
    keys = [
        s["newState"]["inputs"] for s in steps if s["newState"]["type"] == "kong:index/consumerKeyAuth:ConsumerKeyAuth"
    ]
    assert len(keys) == 2 and all(k["key"] == "[secret]" for k in keys), keys
