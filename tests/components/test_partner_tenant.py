"""PartnerTenant under the SDK's mocks: isolation, tier sizing, storage, residency and secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from partners.spec import load_spec
from partners.tiers import load_tiers
from tests.conftest import ROOT, Plan

PARTNERS = ("acme-voice", "sunrise-telecom", "sakura-calls")
NAMESPACED = "kubernetes:"
GRANT = "snowflake:index/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole"


def spec(partner: str):
    return load_spec(ROOT / "partners" / f"{partner}.yaml")


@pytest.mark.parametrize("partner", PARTNERS)
def test_kubernetes_objects_stay_in_the_partners_namespace(fleet: Plan, partner: str) -> None:
    stack = f"partner-{partner}"
    namespace = fleet.one(stack, "kubernetes:core/v1:Namespace", "tenant-namespace")
    assert namespace.inputs["metadata"]["name"] == f"partner-{partner}"
    assert namespace.inputs["metadata"]["labels"]["partner_id"] == partner
    assert namespace.inputs["metadata"]["labels"]["isolation"] == "strict"
    namespaced = [
        r
        for r in fleet.resources(stack)
        if r.type.startswith(NAMESPACED)
        and r.custom
        and r is not namespace
        and not r.type.startswith("pulumi:providers")
    ]
    assert len(namespaced) >= 8
    for resource in namespaced:
        assert resource.inputs["metadata"]["namespace"] == f"partner-{partner}", resource.urn


@pytest.mark.parametrize("partner", PARTNERS)
def test_no_partner_resource_mentions_another_partner(fleet: Plan, partner: str) -> None:
    others = [p for p in PARTNERS if p != partner]
    others_sf = [p.upper().replace("-", "_") for p in others]
    text = fleet.preview_json(f"partner-{partner}")
    for other, other_sf in zip(others, others_sf, strict=True):
        assert other not in text and other_sf not in text


@pytest.mark.parametrize("partner", PARTNERS)
def test_snowflake_grants_reach_only_the_partners_schema(fleet: Plan, partner: str) -> None:
    sf_id = partner.upper().replace("-", "_")
    region = spec(partner).home_region.upper().replace("-", "_")
    grants = fleet.resources(f"partner-{partner}", GRANT)
    assert {g.inputs["accountRoleName"] for g in grants} == {f"PARTNER_{sf_id}_READER"}
    for grant in grants:
        target = grant.inputs.get("onSchema") or grant.inputs.get("onSchemaObject") or grant.inputs["onAccountObject"]
        flat = json.dumps(target)
        if "onAccountObject" in grant.inputs:
            # Only the region's shared database (USAGE) and the partners' warehouse (USAGE).
            assert target["objectName"] in {f"PLATFORM_{region}", f"PLATFORM_{region}_PARTNERS_WH"}
            assert grant.inputs["privileges"] == ["USAGE"]
        else:
            assert f"PLATFORM_{region}.PARTNER_{sf_id}" in flat
            assert "RAW" not in flat and "ANALYTICS" not in flat


@pytest.mark.parametrize("partner", PARTNERS)
def test_kong_entities_hang_off_the_partners_own_consumer(fleet: Plan, partner: str) -> None:
    stack = f"partner-{partner}"
    consumer = fleet.one(stack, "kong:index/consumer:Consumer", "tenant-consumer")
    assert consumer.inputs["username"] == f"partner-{partner}"
    dependants = [r for r in fleet.resources(stack) if "consumerId" in r.inputs]
    assert {r.type.split(":")[-1] for r in dependants} == {"ConsumerKeyAuth", "ConsumerAcl", "Plugin"}
    for resource in dependants:
        assert resource.property_dependencies["consumerId"] == [consumer.urn]
    groups = {r.inputs["group"] for r in fleet.resources(stack, "kong:index/consumerAcl:ConsumerAcl")}
    assert groups == {f"tier-{spec(partner).tier}", f"partner-{partner}"}


@pytest.mark.parametrize("partner", PARTNERS)
def test_quota_limits_and_rate_limit_follow_the_tier_table(fleet: Plan, partner: str) -> None:
    stack, tier = f"partner-{partner}", load_tiers()[spec(partner).tier]
    quota = fleet.one(stack, "kubernetes:core/v1:ResourceQuota", "tenant-quota")
    assert quota.inputs["spec"]["hard"] == tier.quota.hard()
    limit = fleet.one(stack, "kubernetes:core/v1:LimitRange", "tenant-limits").inputs["spec"]["limits"][0]
    assert limit["max"] == {"cpu": tier.container_limits.max_cpu, "memory": tier.container_limits.max_memory}
    assert limit["default"]["cpu"] == tier.container_limits.default_cpu
    plugin = fleet.one(stack, "kong:index/plugin:Plugin", "tenant-rate-limit")
    config = json.loads(plugin.inputs["configJson"])
    assert (config["second"], config["minute"], config["hour"]) == (
        tier.rate_limit.second,
        tier.rate_limit.minute,
        tier.rate_limit.hour,
    )


def test_tiers_differ_where_the_table_differs(fleet: Plan) -> None:
    hard = {
        p: fleet.one(f"partner-{p}", "kubernetes:core/v1:ResourceQuota", "tenant-quota").inputs["spec"]["hard"]
        for p in PARTNERS
    }
    assert hard["sunrise-telecom"]["requests.cpu"] == "4"  # starter
    assert hard["acme-voice"]["requests.cpu"] == "10"  # professional
    assert hard["sakura-calls"]["requests.cpu"] == "40"  # enterprise


@pytest.mark.parametrize("partner", PARTNERS)
def test_default_deny_network_policy_with_gateway_and_dns_allows(fleet: Plan, partner: str) -> None:
    policies = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in fleet.resources(f"partner-{partner}", "kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }
    assert set(policies) == {"default-deny", "allow-same-namespace", "allow-gateway", "allow-dns", "allow-aws-apis"}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    gateway_peer = policies["allow-gateway"]["ingress"][0]["from"][0]
    assert gateway_peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "platform"}
    assert {p["port"] for p in policies["allow-dns"]["egress"][0]["ports"]} == {53}


def test_shared_storage_tenant_is_confined_to_its_prefix_in_its_home_region(fleet: Plan) -> None:
    stack = "partner-acme-voice"  # DE + AT, residency required for DE
    assert not fleet.resources(stack, "aws:s3/bucket:Bucket")
    policy = json.loads(
        fleet.one(stack, "aws:iam/rolePolicy:RolePolicy", "tenant-workload-data-access").inputs["policy"]
    )
    objects = policy["Statement"][0]["Resource"]
    assert objects == [
        "arn:aws:s3:::voiceplat-eu-central-recordings/partners/acme-voice/*",
        "arn:aws:s3:::voiceplat-eu-central-transcripts/partners/acme-voice/*",
    ]
    assert policy["Statement"][1]["Condition"] == {"StringLike": {"s3:prefix": ["partners/acme-voice/*"]}}
    provider = fleet.one(stack, "pulumi:providers:aws", "aws")
    assert provider.inputs["region"] == "eu-central-1"
    schema = fleet.one(stack, "snowflake:index/schema:Schema", "tenant-schema")
    assert schema.inputs["database"] == "PLATFORM_EU_CENTRAL"
    pod_identity = fleet.one(stack, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "tenant-pod-identity")
    assert pod_identity.inputs["clusterName"] == "voiceplat-eu-central"


def test_enterprise_tenant_gets_its_own_encrypted_bucket_and_key(fleet: Plan) -> None:
    stack = "partner-sakura-calls"
    bucket = fleet.one(stack, "aws:s3/bucket:Bucket", "tenant-data-bucket")
    assert bucket.inputs["bucket"] == "voiceplat-partner-sakura-calls"
    assert bucket.retain_on_delete
    key = fleet.one(stack, "aws:kms/key:Key", "tenant-data-key")
    assert key.inputs["enableKeyRotation"] is True
    sse = fleet.one(
        stack,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "tenant-data-encryption",
    )
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert sse.property_dependencies["rules"] == [key.urn]
    lifecycle = fleet.one(
        stack, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "tenant-data-retention"
    )
    assert lifecycle.inputs["rules"][0]["expiration"]["days"] == 180  # JP
    assert fleet.one(stack, "pulumi:providers:aws", "aws").inputs["region"] == "ap-northeast-1"


@pytest.mark.parametrize("partner", PARTNERS)
def test_secrets_are_marked_secret_and_never_in_clear(fleet: Plan, partner: str) -> None:
    stack = f"partner-{partner}"
    key_auth = fleet.one(stack, "kong:index/consumerKeyAuth:ConsumerKeyAuth", "tenant-key-auth")
    assert key_auth.inputs["key"] == "[secret]"
    outputs = fleet.outputs(stack)
    assert outputs["api_key"] == "[secret]"
    assert outputs["snowflake_private_key"] == "[secret]"
    assert fleet.one(stack, "pulumi:providers:kubernetes", "k8s").inputs["kubeconfig"] == "[secret]"
    assert fleet.one(stack, "pulumi:providers:snowflake", "snowflake").inputs["privateKey"] == "[secret]"
    assert "PRIVATE KEY" not in fleet.preview_json(stack)


def test_branding_configmap_carries_theme_and_greeting(fleet: Plan) -> None:
    data = fleet.one("partner-acme-voice", "kubernetes:core/v1:ConfigMap", "tenant-branding").inputs["data"]
    theme = json.loads(data["theme.json"])
    assert theme["colors"]["primary"] == "#0A84FF"
    assert data["voice-greeting"] == "Thanks for calling Acme."


def test_partner_routes_copy_every_platform_path_on_the_partners_hosts(fleet: Plan) -> None:
    routes = {r.inputs["name"]: r for r in fleet.resources("partner-acme-voice", "kong:index/route:Route")}
    platform = {r.inputs["name"]: r.inputs["paths"] for r in fleet.resources("global", "kong:index/route:Route")}
    assert {name.removeprefix("partner-acme-voice-"): r.inputs["paths"] for name, r in routes.items()} == platform
    for route in routes.values():
        assert route.inputs["hosts"] == route.inputs["snis"] == ["api.acme-voice.voice-platform.example"]
        assert route.inputs["protocols"] == ["https"]
        assert route.property_dependencies["serviceId"][0].endswith(
            "pulumi:pulumi:StackReference::organization/platform/global"
        )
    # The partner's domain is not routed before its proof was checked.
    assert fleet.outputs("partner-acme-voice")["routed_hosts"] == ["api.acme-voice.voice-platform.example"]


def test_platform_names_point_at_the_home_regions_gateway(fleet: Plan) -> None:
    records = {r.inputs["name"]: r for r in fleet.resources("partner-acme-voice", "aws:route53/record:Record")}
    assert set(records) == {f"{label}.acme-voice.voice-platform.example" for label in ("api", "dashboard", "webhooks")}
    for record in records.values():
        assert record.inputs["type"] == "CNAME"
        assert record.property_dependencies["records"][0].endswith("organization/platform/region-eu-central")
        assert record.property_dependencies["zoneId"][0].endswith("organization/platform/global")


def test_certificates_come_from_cert_manager_and_bind_before_routes(fleet: Plan) -> None:
    stack = "partner-acme-voice"
    cert = fleet.one(stack, "kubernetes:cert-manager.io/v1:Certificate", "tenant-cert-platform-hosts")
    assert cert.inputs["metadata"]["namespace"] == "partner-acme-voice"
    assert cert.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    assert cert.inputs["spec"]["issuerRef"] == {"kind": "ClusterIssuer", "name": "letsencrypt-dns01"}
    # Kong gets it from the region's certificate sync (no Pulumi-held copy that would expire): the stack registers
    # the Secret with it and routes wait for the Certificate to be issued.
    assert fleet.resources(stack, "kong:index/certificate:Certificate") == []
    sync_role = fleet.one(stack, "kubernetes:rbac.authorization.k8s.io/v1:Role", "tenant-cert-sync-platform-hosts")
    assert sync_role.inputs["rules"][0]["resourceNames"] == [cert.inputs["spec"]["secretName"]]
    for route in fleet.resources(stack, "kong:index/route:Route"):
        assert cert.urn in route.dependencies


def test_domain_proof_is_a_secret_token_only_the_partner_is_shown(fleet: Plan) -> None:
    outputs = fleet.outputs("partner-acme-voice")
    assert outputs["domain_challenge_record"] == "_platform-challenge.voice.acme.example"
    assert outputs["domain_challenge_token"] == "[secret]"
    assert outputs["acme_delegation"] == {
        "name": "_acme-challenge.voice.acme.example",
        "type": "CNAME",
        # Under `_acme-challenge.`: the only names cert-manager may write in the platform zone.
        "value": "_acme-challenge.acme-voice.voice-platform.example",
    }


def test_verified_domain_gets_its_certificate_then_its_routes(repo_copy: Path, plan_in) -> None:
    stack_file = repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml"
    stack_file.write_text("config:\n  platform:domainVerified: voice.acme.example\n")
    plan = plan_in(repo_copy, "partner-acme-voice")
    stack = "partner-acme-voice"
    domain_cert = plan.one(stack, "kubernetes:cert-manager.io/v1:Certificate", "tenant-cert-custom-domain")
    assert domain_cert.inputs["spec"]["dnsNames"] == ["voice.acme.example"]
    assert [s["op"] for s in plan.plans[stack].preview()["steps"] if s["op"] == "read"] == []
    for route in plan.resources(stack, "kong:index/route:Route"):
        assert route.inputs["hosts"] == ["api.acme-voice.voice-platform.example", "voice.acme.example"]
        assert domain_cert.urn in route.dependencies


def test_a_proof_for_another_domain_does_not_count(repo_copy: Path, plan_in) -> None:
    stack_file = repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml"
    stack_file.write_text("config:\n  platform:domainVerified: old.acme.example\n")
    plan = plan_in(repo_copy, "partner-acme-voice")
    assert not [
        r
        for r in plan.resources("partner-acme-voice", "kubernetes:cert-manager.io/v1:Certificate")
        if "custom" in r.name
    ]
    assert all(
        "voice.acme.example" not in r.inputs["hosts"]
        for r in plan.resources("partner-acme-voice", "kong:index/route:Route")
    )


def test_purge_config_lets_data_resources_go(repo_copy: Path, plan_in) -> None:
    stack_file = repo_copy / "stacks" / "Pulumi.partner-sakura-calls.yaml"
    stack_file.write_text(stack_file.read_text() + "  platform:purgeData: true\n")
    plan = plan_in(repo_copy, "partner-sakura-calls")
    assert not plan.one("partner-sakura-calls", "aws:s3/bucket:Bucket", "tenant-data-bucket").retain_on_delete
    assert not plan.one("partner-sakura-calls", "snowflake:index/schema:Schema", "tenant-schema").retain_on_delete


def test_offboarded_tenant_keeps_only_its_data(repo_copy: Path, plan_in) -> None:
    stack_file = repo_copy / "stacks" / "Pulumi.partner-sakura-calls.yaml"
    stack_file.write_text(stack_file.read_text() + "  platform:offboardedOn: '2026-11-01'\n")
    plan = plan_in(repo_copy, "partner-sakura-calls")
    types = {
        r.type for r in plan.resources("partner-sakura-calls") if r.custom and not r.type.startswith("pulumi:providers")
    }
    assert "kubernetes:core/v1:Namespace" not in types and "kong:index/consumer:Consumer" not in types
    assert {"aws:s3/bucket:Bucket", "aws:kms/key:Key", "snowflake:index/schema:Schema"} <= types
    assert all(r.retain_on_delete for r in plan.resources("partner-sakura-calls", "aws:s3/bucket:Bucket"))
    assert plan.outputs("partner-sakura-calls")["active"] is False
