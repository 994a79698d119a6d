"""RegionalDeployment under the SDK's mocks: encryption, retention by compliance profile, network, cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Plan

BUCKET_PARTS = "aws:s3/"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"


@pytest.mark.parametrize(
    ("region", "days"),
    [
        ("eu-central", 90),  # DE (90) and AT (180): the strictest wins
        ("sa-east", 120),  # BR
        ("ca-central", 365),  # CA
        ("ap-tokyo", 180),  # JP
        ("us-east", 180),  # US: default profile
        ("eu-milan", 180),  # nothing launched: default profile
    ],
)
def test_bucket_expiry_is_the_strictest_launched_retention(fleet: Plan, region: str, days: int) -> None:
    stack = f"region-{region}"
    lifecycles = fleet.resources(stack, LIFECYCLE)
    assert len(lifecycles) == 3  # recordings, transcripts, statements
    call_data = [lc for lc in lifecycles if "statements" not in lc.name]  # statements are accounting records
    assert len(call_data) == 2
    for lifecycle in call_data:
        rule = lifecycle.inputs["rules"][0]
        assert rule["status"] == "Enabled"
        assert rule["expiration"]["days"] == days
        assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == 1
    assert fleet.outputs(stack)["retention_days"] == days


def test_buckets_are_kms_encrypted_versioned_private_and_tls_only(fleet: Plan) -> None:
    stack = "region-eu-central"
    key = fleet.one(stack, "aws:kms/key:Key", "region-data-key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.retain_on_delete
    for purpose in ("recordings", "transcripts", "statements"):
        bucket = fleet.one(stack, "aws:s3/bucket:Bucket", f"region-{purpose}-bucket")
        assert bucket.inputs["bucket"] == f"voiceplat-eu-central-{purpose}"
        assert bucket.retain_on_delete
        sse = fleet.one(stack, SSE, f"region-{purpose}-encryption")
        assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
        assert sse.property_dependencies["rules"] == [key.urn]
        versioning = fleet.one(stack, "aws:s3/bucketVersioning:BucketVersioning", f"region-{purpose}-versioning")
        assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
        block = fleet.one(
            stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"region-{purpose}-public-access"
        )
        assert all(
            block.inputs[flag] is True
            for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        )
        policy = json.loads(
            fleet.one(stack, "aws:s3/bucketPolicy:BucketPolicy", f"region-{purpose}-policy").inputs["policy"]
        )
        deny_plain = next(s for s in policy["Statement"] if s["Sid"] == "DenyInsecureTransport")
        assert deny_plain["Effect"] == "Deny"
        assert deny_plain["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert f"arn:aws:s3:::voiceplat-eu-central-{purpose}/*" in deny_plain["Resource"]


def test_every_region_runs_on_its_own_aws_region_provider(fleet: Plan) -> None:
    from regions.catalog import load_catalog

    for code, region in load_catalog().regions.items():
        stack = f"region-{code}"
        provider = fleet.one(stack, "pulumi:providers:aws", "region-aws")
        assert provider.inputs["region"] == region.aws_region
        aws_resources = [r for r in fleet.resources(stack) if r.type.startswith("aws:")]
        assert aws_resources and all(r.provider.startswith(provider.urn) for r in aws_resources)


def test_network_spans_the_catalog_zones(fleet: Plan) -> None:
    subnets = fleet.resources("region-ca-central", "aws:ec2/subnet:Subnet")
    assert sorted({s.inputs["availabilityZoneId"] for s in subnets}) == ["cac1-az1", "cac1-az2", "cac1-az4"]
    assert not any("availabilityZone" in s.inputs for s in subnets)
    vpc = fleet.one("region-ca-central", "aws:ec2/vpc:Vpc", "region-vpc")
    assert vpc.inputs["cidrBlock"] == "10.12.0.0/16"


def test_cluster_encrypts_secrets_and_exports_kubeconfig_as_secret(fleet: Plan) -> None:
    stack = "region-eu-central"
    cluster = fleet.one(stack, "aws:eks/cluster:Cluster", "region-cluster")
    assert cluster.inputs["encryptionConfig"]["resources"] == ["secrets"]
    assert cluster.inputs["name"] == "voiceplat-eu-central"
    assert fleet.one(stack, "aws:eks/nodeGroup:NodeGroup", "region-nodes").inputs["scalingConfig"]["minSize"] == 3
    roles = fleet.resources(stack, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert {r.inputs["policyArn"].rsplit("/", 1)[1] for r in roles} == {
        "AmazonEKSClusterPolicy",
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonEC2ContainerRegistryReadOnly",
        "AmazonEBSCSIDriverPolicy",  # the EBS CSI controller's own role, not the nodes' (test_cluster_addons.py)
    }
    assert fleet.outputs(stack)["kubeconfig"] == "[secret]"
    k8s_provider = fleet.one(stack, "pulumi:providers:kubernetes", "region-k8s")
    assert k8s_provider.inputs["kubeconfig"] == "[secret]"


def test_kong_data_plane_joins_the_control_plane_with_a_secret_key(fleet: Plan) -> None:
    stack = "region-eu-central"
    release = fleet.one(stack, "kubernetes:helm.sh/v3:Release", "region-kong-data-plane")
    env = release.inputs["values"]["env"]
    assert env["role"] == "data_plane" and env["database"] == "off"
    assert env["cluster_control_plane"] == "kong-cp.voice-platform.example:8005"
    secret = fleet.one(stack, "kubernetes:core/v1:Secret", "region-kong-cluster-cert")
    assert secret.inputs["stringData"] == "[secret]"


def test_launched_countries_carry_their_settings(fleet: Plan) -> None:
    maps = {
        r.inputs["metadata"]["name"]: r.inputs["data"]
        for r in fleet.resources("region-eu-central", "kubernetes:core/v1:ConfigMap")
    }
    assert set(maps) == {"country-de", "country-at"}
    compliance = json.loads(maps["country-de"]["compliance.json"])
    assert compliance["residency"] == "required" and compliance["encryption"] == "AES-256-GCM"
    assert compliance["consent"] == "explicit_opt_in" and compliance["retention_days"] == 90
    assert json.loads(maps["country-de"]["payments.json"])["currency"] == "EUR"
    assert "de-DE" in json.loads(maps["country-de"]["languages.json"])["languages"]
    assert json.loads(maps["country-de"]["telephony.json"])["provider"] == "sipgate"


def test_launching_a_country_tightens_the_region(repo_copy: Path, plan_in) -> None:
    stack_file = repo_copy / "stacks" / "Pulumi.region-sa-east.yaml"
    stack_file.write_text(stack_file.read_text().replace("  - CL\n", "  - CL\n  - CO\n"))
    plan = plan_in(repo_copy, "region-sa-east")
    names = {r.inputs["metadata"]["name"] for r in plan.resources("region-sa-east", "kubernetes:core/v1:ConfigMap")}
    assert names == {"country-br", "country-ar", "country-cl", "country-co"}
    assert plan.outputs("region-sa-east")["retention_days"] == 120


def test_launching_a_forbidden_country_is_refused(repo_copy: Path, plan_in) -> None:
    from foundation.errors import InputError

    stack_file = repo_copy / "stacks" / "Pulumi.region-us-east.yaml"
    stack_file.write_text(stack_file.read_text().replace("  - US\n", "  - US\n  - DE\n"))
    with pytest.raises(InputError, match="DE requires data residency"):
        plan_in(repo_copy, "region-us-east")


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


def test_cert_manager_answers_dns01_in_the_platform_zone(fleet: Plan) -> None:
    stack = "region-eu-central"
    issuer = fleet.one(stack, "kubernetes:cert-manager.io/v1:ClusterIssuer", "region-acme-issuer")
    (solver,) = issuer.inputs["spec"]["acme"]["solvers"]
    assert solver["dns01"]["cnameStrategy"] == "Follow"
    assert issuer.property_dependencies["spec"][0].endswith("organization/platform/global")
    release = fleet.one(stack, "kubernetes:helm.sh/v3:Release", "region-cert-manager")
    assert release.urn in issuer.dependencies


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
