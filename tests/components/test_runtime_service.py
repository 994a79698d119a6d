"""RuntimeService (the meter in every region stack) under the SDK's mocks; manifests checked by kubernetes-validate."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from tests.conftest import Plan

STACK = "region-eu-central"
KINDS = {
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:core/v1:Service",
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    "kubernetes:policy/v1:PodDisruptionBudget",
    "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    "kubernetes:core/v1:ServiceAccount",
}


def _meter(fleet: Plan) -> dict[str, Any]:
    parent = fleet.one(STACK, "platform:runtime_service:RuntimeService", "region-meter")
    return {r.type: r for r in fleet.resources(STACK) if r.parent == parent.urn}


def _manifest(inputs: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(inputs))


def test_every_region_runs_the_meter(fleet: Plan) -> None:
    regions = [s for s in fleet.plans if s.startswith("region-")]
    assert regions
    for stack in regions:
        services = fleet.resources(stack, "platform:runtime_service:RuntimeService")
        assert sorted(s.name for s in services) == ["region-meter", "region-webhooks-service"], stack
        code = stack.removeprefix("region-")
        assert fleet.outputs(stack)["meter_public_url"] == f"https://meter.{code}.voice-platform.example"


def test_the_meter_has_all_its_parts(fleet: Plan) -> None:
    parts = _meter(fleet)
    assert set(parts) >= KINDS
    workload = parts["kubernetes:apps/v1:StatefulSet"].inputs
    assert workload["spec"]["replicas"] >= 2
    container = workload["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/voice-platform/platform-services:0.1.0"
    # The services distribution's console script, set on the container (not the image's ENTRYPOINT).
    assert container["command"] == ["platform-services"]
    assert container["args"][:2] == ["meter", "serve"] and "--region" in container["args"]
    # The meter looks each partner's subaccount token up with the master account: it refuses to start without both.
    assert {e["name"] for e in container["env"]} >= {
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "METER_KONG_TOKEN",
        "SNOWFLAKE_PRIVATE_KEY",
    }
    # Readiness is /healthz (503 on a full spool or a crash-looping flusher); liveness is /livez (a restart would
    # fix none of those and lose the pod's place in the queue).
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    # Secrets by reference, never as values; the one plain value is the webhooks service's in-cluster URL.
    assert all("valueFrom" in e for e in container["env"] if e["name"] != "WEBHOOKS_URL")
    assert [e["name"] for e in container["env"] if "value" in e] == ["WEBHOOKS_URL"]
    assert workload["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "spool"
    assert workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30
    hpa = parts["kubernetes:autoscaling/v2:HorizontalPodAutoscaler"].inputs["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "meter"}
    assert hpa["minReplicas"] >= 2
    policy = parts["kubernetes:networking.k8s.io/v1:NetworkPolicy"].inputs["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "kong-dp"}}}],
            "ports": [{"port": 8787, "protocol": "TCP"}],
        }
    ]
    steps = json.loads(fleet.preview_json(STACK))["steps"]
    (secret,) = [s for s in steps if s["urn"].endswith("::region-meter-secret")]
    assert secret["newState"]["inputs"]["stringData"] == "[secret]"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_manifests_validate_strictly(fleet: Plan, kind: str) -> None:
    manifest = _manifest(_meter(fleet)[kind].inputs)
    kubernetes_validate.validate(manifest, "1.33", strict=True)


def test_the_meter_user_holds_only_the_loader_role(fleet: Plan) -> None:
    grants = [
        r.inputs
        for r in fleet.resources(STACK, "snowflake:index/grantAccountRole:GrantAccountRole")
        if r.name == "region-meter-user-role"
    ]
    assert grants == [{"roleName": "PLATFORM_EU_CENTRAL_LOADER", "userName": "PLATFORM_EU_CENTRAL_METER"}]


def test_kong_routes_twilio_callbacks_and_logs_every_api_to_the_meter(fleet: Plan) -> None:
    # Each region routes its own meter host, after binding that host's certificate (never Kong's default one).
    route = fleet.one("region-eu-central", "kong:index/route:Route", "region-meter-twilio")
    assert route.inputs["hosts"] == route.inputs["snis"] == ["meter.eu-central.voice-platform.example"]
    assert route.inputs["methods"] == ["POST"] and route.inputs["protocols"] == ["https"]
    binding = fleet.one("region-eu-central", "kubernetes:cert-manager.io/v1:Certificate", "region-cert-meter")
    assert binding.inputs["spec"]["dnsNames"] == route.inputs["hosts"] and binding.urn in route.dependencies
    assert not fleet.resources("global", "kong:index/route:Route") or all(
        "meter" not in r.name for r in fleet.resources("global", "kong:index/route:Route")
    )
    logs = [r for r in fleet.resources("global", "kong:index/plugin:Plugin") if r.inputs.get("name") == "http-log"]
    assert {r.name for r in logs} == {
        "gateway-rest-http-log",
        "gateway-graphql-http-log",
        "gateway-streaming-http-log",
        "gateway-webhooks-http-log",
    }
    preview = fleet.preview_json("global")
    assert "Bearer" not in preview  # the token travels only as a secret
