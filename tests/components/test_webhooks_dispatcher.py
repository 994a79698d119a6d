"""The webhooks service in a region stack (WebhooksDispatcher) and its gateway token in the global stack
(WebhooksGateway), under the SDK's mocks; manifests validated strictly."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from tests.conftest import Plan

STACK = "region-eu-central"


@pytest.fixture
def planned(fleet: Plan) -> Plan:
    """The global and the region stack as the session's `fleet` planned them (each stack once per session; read
    only)."""
    return fleet


def _parts(plan: Plan) -> list[Any]:
    component = plan.one(STACK, "platform:webhooks_dispatcher:WebhooksDispatcher", "region-webhooks")
    service = plan.one(STACK, "platform:runtime_service:RuntimeService", "region-webhooks-service")
    return [r for r in plan.resources(STACK) if r.parent in (component.urn, service.urn)]


def _one(parts: list[Any], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [r for r in parts if r.type == kind and (name is None or r.name == name)]
    assert len(found) == 1, [r.name for r in found]
    return dict(json.loads(json.dumps(found[0].inputs)))


def test_one_stateful_replica_with_its_store_and_no_scaler(planned: Plan) -> None:
    parts = _parts(planned)
    kinds = {r.type for r in parts}
    assert "kubernetes:autoscaling/v2:HorizontalPodAutoscaler" not in kinds  # one store: it cannot scale out
    assert "kubernetes:policy/v1:PodDisruptionBudget" not in kinds  # a PDB of one would block every drain
    workload = _one(parts, "kubernetes:apps/v1:StatefulSet")
    assert workload["spec"]["replicas"] == 1
    assert workload["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    container = workload["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == [
        "webhooks", "serve", "--host", "0.0.0.0", "--port", "8788", "--store", "local:/var/spool/platform",
    ]  # fmt: skip
    env = {e["name"]: e for e in container["env"]}
    for name in ("WEBHOOKS_EVENT_TOKEN", "WEBHOOKS_KONG_TOKEN"):
        assert "valueFrom" in env[name] and "value" not in env[name]
    assert "WEBHOOKS_ALLOW_LOOPBACK" not in env and "WEBHOOKS_TIME_SCALE" not in env
    (vpc,) = planned.resources(STACK, "aws:ec2/vpc:Vpc")
    assert env["WEBHOOKS_BLOCKED_CIDRS"]["value"] == vpc.inputs["cidrBlock"]
    assert env["WEBHOOKS_PLATFORM_DOMAINS"]["value"] == "voice-platform.example"
    assert "WEBHOOKS_KMS_KEY_ID" in env
    for kind in ("kubernetes:apps/v1:StatefulSet", "kubernetes:core/v1:Service", "kubernetes:core/v1:ServiceAccount"):
        kubernetes_validate.validate(_one(parts, kind), "1.33", strict=True)
    steps = json.loads(planned.preview_json(STACK))["steps"]
    (secret,) = [s for s in steps if s["urn"].endswith("::region-webhooks-service-secret")]
    assert secret["newState"]["inputs"]["stringData"] == "[secret]"


def test_network_policies_admit_the_gateway_and_producers_and_let_out_only_443_to_public_addresses(
    planned: Plan,
) -> None:
    parts = _parts(planned)
    policies = {r.name: json.loads(json.dumps(r.inputs)) for r in parts if r.type.endswith("NetworkPolicy")}
    for policy in policies.values():
        kubernetes_validate.validate(policy, "1.33", strict=True)
    gateway = policies["region-webhooks-service-ingress"]["spec"]["ingress"][0]
    assert gateway["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "kong-dp"}}}]
    producers = policies["region-webhooks-producers"]["spec"]["ingress"][0]
    assert producers["from"] == [
        {"podSelector": {"matchLabels": {"app": "meter"}}},
        {"podSelector": {"matchLabels": {"app": "payouts"}}},
    ]
    egress = policies["region-webhooks-egress"]["spec"]
    assert egress["policyTypes"] == ["Egress"]
    internet, dns, endpoints, identity = egress["egress"]
    assert internet["ports"] == [{"port": 443, "protocol": "TCP"}]
    v4, v6 = (peer["ipBlock"] for peer in internet["to"])
    assert v4["cidr"] == "0.0.0.0/0"
    (vpc,) = planned.resources(STACK, "aws:ec2/vpc:Vpc")
    region_cidr = vpc.inputs["cidrBlock"]
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", region_cidr} <= set(
        v4["except"]
    )
    assert v6 == {"cidr": "::/0", "except": ["::1/128", "fc00::/7", "fe80::/10", "ff00::/8"]}
    assert dns["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    assert endpoints["ports"] == [{"port": 443, "protocol": "TCP"}]  # the KMS interface endpoints only
    assert identity["to"] == [{"ipBlock": {"cidr": "169.254.170.23/32"}}] and identity["ports"][0]["port"] == 80


def test_the_role_may_use_the_region_key_with_the_services_context_only(planned: Plan) -> None:
    from components.webhooks_dispatcher import kms_policy
    from services.webhooks.sealing import ENCRYPTION_CONTEXT

    parts = _parts(planned)
    _one(parts, "aws:iam/rolePolicy:RolePolicy")  # its document is kms_policy(the key's ARN), unknown until deployed
    (statement,) = kms_policy("arn:aws:kms:eu-central-1:111122223333:key/k")["Statement"]
    assert statement["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"]
    assert statement["Resource"] == "arn:aws:kms:eu-central-1:111122223333:key/k"
    assert statement["Condition"] == {
        "StringEquals": {f"kms:EncryptionContext:{k}": v for k, v in ENCRYPTION_CONTEXT.items()}
    }
    identity = _one(parts, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert identity["serviceAccount"] == "webhooks" and identity["namespace"] == "platform"


def test_the_gateway_forwards_owners_with_its_own_token(planned: Plan) -> None:
    routes = {r.inputs["name"]: r.inputs for r in planned.resources("global", "kong:index/route:Route")}
    assert routes["webhooks-v1"]["paths"] == ["/v1/webhooks"]
    services = {r.inputs["name"]: r.inputs for r in planned.resources("global", "kong:index/service:Service")}
    assert services["webhooks-api"]["host"] == "webhooks.platform.svc.cluster.local"
    assert services["webhooks-api"]["port"] == 8788
    preview = planned.preview_json("global")
    steps = json.loads(preview)["steps"]
    (forward,) = [s for s in steps if s["urn"].endswith("::webhooks-forward")]
    assert forward["newState"]["inputs"]["configJson"] == "[secret]"  # the token never in a plan
    assert forward["newState"]["inputs"]["name"] == "request-transformer"
    from components.webhooks_gateway import forward_config

    config = forward_config("t")
    assert config["remove"] == {"headers": ["Authorization", "X-Partner-Id"]}
    assert config["add"] == {"headers": ["Authorization:Bearer t"]}


def _container(plan: Plan, kind: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod template, first container) of a workload in the region stack."""
    (workload,) = [r for r in plan.resources(STACK, kind) if r.name == name]
    spec = json.loads(json.dumps(workload.inputs))["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if kind.endswith("CronJob") else spec["template"]
    return template, template["spec"]["containers"][0]


@pytest.mark.parametrize(
    ("kind", "name", "app"),
    [
        ("kubernetes:apps/v1:StatefulSet", "region-meter-workload", "meter"),
        ("kubernetes:batch/v1:CronJob", "region-payouts-cronjob", "payouts"),
    ],
)
def test_the_producers_get_the_services_url_and_token_and_may_reach_it(
    planned: Plan, kind: str, name: str, app: str
) -> None:
    template, container = _container(planned, kind, name)
    env = {e["name"]: e for e in container["env"]}
    url = env["WEBHOOKS_URL"]["value"]
    assert url.startswith("http://") and url.endswith(":8788") and ".svc.cluster.local" in url
    service = planned.one(STACK, "platform:runtime_service:RuntimeService", "region-webhooks-service")
    (svc,) = [r for r in planned.resources(STACK, "kubernetes:core/v1:Service") if r.parent == service.urn]
    assert url.split("//")[1].split(".")[0] == svc.inputs["metadata"]["name"]
    token = env["WEBHOOKS_EVENT_TOKEN"]
    assert "value" not in token and token["valueFrom"]["secretKeyRef"]["key"] == "WEBHOOKS_EVENT_TOKEN"
    steps = json.loads(planned.preview_json(STACK))["steps"]
    (secret,) = [s for s in steps if s["urn"].endswith(f"::region-{app}-secret")]
    assert secret["newState"]["inputs"]["stringData"] == "[secret]"  # the token never in clear in a plan
    # Egress: no policy of the region restricts the producer's pods (Stripe, Snowflake and S3 have no fixed
    # addresses), so the webhooks service is reachable; its own ingress admits exactly these labels (test above).
    labels = template["metadata"]["labels"]
    assert labels["app"] == app
    for policy in planned.resources(STACK, "kubernetes:networking.k8s.io/v1:NetworkPolicy"):
        spec = json.loads(json.dumps(policy.inputs))["spec"]
        selected = spec.get("podSelector", {}).get("matchLabels", {})
        if "Egress" in spec.get("policyTypes", []) and selected and selected.items() <= labels.items():
            raise AssertionError(f"{policy.name} restricts {app}'s egress")
