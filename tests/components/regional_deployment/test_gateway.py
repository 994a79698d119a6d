"""The region's gateway data plane (components/regional_deployment/gateway.py): Kong data plane, Redis, load
balancer."""

from __future__ import annotations

import json

from tests.conftest import Plan


def test_kong_data_plane_joins_the_control_plane_with_a_secret_key(fleet: Plan) -> None:
    stack = "region-eu-central"
    release = fleet.one(stack, "kubernetes:helm.sh/v3:Release", "region-kong-data-plane")
    env = release.inputs["values"]["env"]
    assert env["role"] == "data_plane" and env["database"] == "off"
    assert env["cluster_control_plane"] == "kong-cp.voice-platform.example:8005"
    secret = fleet.one(stack, "kubernetes:core/v1:Secret", "region-kong-cluster-cert")
    assert secret.inputs["stringData"] == "[secret]"


def test_gateway_redis_is_encrypted_private_and_its_token_secret(fleet: Plan) -> None:
    stack = "region-eu-central"
    redis = fleet.one(stack, "aws:elasticache/replicationGroup:ReplicationGroup", "region-kong-redis")
    assert redis.inputs["transitEncryptionEnabled"] is True and redis.inputs["atRestEncryptionEnabled"] is True
    assert redis.inputs["authToken"] == "[secret]"
    assert redis.property_dependencies["kmsKeyId"] == [fleet.one(stack, "aws:kms/key:Key", "region-data-key").urn]
    subnets = fleet.one(stack, "aws:elasticache/subnetGroup:SubnetGroup", "region-kong-redis-subnets")
    private = {r.urn for r in fleet.resources(stack, "aws:ec2/subnet:Subnet") if "private" in r.name}
    assert set(subnets.property_dependencies["subnetIds"]) == private
    group = fleet.one(stack, "aws:ec2/securityGroup:SecurityGroup", "region-kong-redis-sg")
    (rule,) = group.inputs["ingress"]
    assert (rule["fromPort"], rule["toPort"]) == (6379, 6379) and "cidrBlocks" not in rule
    assert fleet.one(stack, "aws:eks/cluster:Cluster", "region-cluster").urn in group.property_dependencies["ingress"]
    alias = fleet.one(stack, "kubernetes:core/v1:Service", "region-kong-redis")
    assert alias.inputs["metadata"] == {"name": "kong-redis", "namespace": "platform"}
    assert alias.inputs["spec"]["type"] == "ExternalName"
    assert fleet.one(stack, "kubernetes:core/v1:Secret", "region-kong-redis-auth").inputs["stringData"] == "[secret]"


def test_data_plane_reads_the_redis_token_from_its_secret_and_exports_its_load_balancer(fleet: Plan) -> None:
    stack = "region-eu-central"
    release = fleet.one(stack, "kubernetes:helm.sh/v3:Release", "region-kong-data-plane")
    env = release.inputs["values"]["customEnv"]["platform_redis_auth"]
    assert env == {"valueFrom": {"secretKeyRef": {"name": "kong-redis-auth", "key": "token"}}}
    lb = fleet.one(stack, "kubernetes:core/v1:Service", "region-gateway-lb")
    assert lb.inputs["spec"]["type"] == "LoadBalancer"
    assert "gateway_hostname" in fleet.outputs(stack)


SENTINEL_TOKEN = "meter-token-SENTINEL-7f3a9c"


def test_the_data_plane_resolves_the_meters_token_from_a_secret_never_in_the_plan(fleet: Plan) -> None:
    """The region is planned with a known token from the global stack: it reaches the data plane only through a
    Secret, and appears nowhere in the plan in clear."""
    import dataclasses
    from types import SimpleNamespace

    from fleet.stackconfig import load_stack_config
    from foundation.stacks import parse_stack_name
    from platformctl.offline.recorder import record_stack
    from tests.conftest import ROOT

    stack = "region-eu-central"
    g = fleet.plans["global"].recording
    assert "meter_kong_token" in g.secret_outputs
    known = SimpleNamespace(
        reference_outputs={**g.reference_outputs, "meter_kong_token": SENTINEL_TOKEN}, secret_outputs=g.secret_outputs
    )
    config = load_stack_config(ROOT, parse_stack_name(stack))
    recording = record_stack(
        ROOT, stack, config.values, lambda name: known if name == "global" else None, config.secret_keys
    )
    shown = json.dumps([dataclasses.asdict(r) for r in recording.resources] + [recording.outputs], default=str)
    assert SENTINEL_TOKEN not in shown
    by_name = {r.name: r for r in recording.resources}
    secret = by_name["region-kong-meter-auth"]
    assert secret.inputs["metadata"] == {"name": "kong-meter-auth", "namespace": "platform"}
    assert secret.inputs["stringData"] == "[secret]"
    env = by_name["region-kong-data-plane"].inputs["values"]["customEnv"]
    # Kong's env vault reads {vault://env/meter-kong-authorization} from METER_KONG_AUTHORIZATION.
    assert env["METER_KONG_AUTHORIZATION"] == {
        "valueFrom": {"secretKeyRef": {"name": "kong-meter-auth", "key": "authorization"}}
    }
    assert by_name["region-meter-secret"].inputs["stringData"] == "[secret]"
