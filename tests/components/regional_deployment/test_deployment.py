"""RegionalDeployment (components/regional_deployment/__init__.py) under the SDK's mocks: the parts composed on
the region's own AWS provider, with its launched countries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Plan


def test_every_region_runs_on_its_own_aws_region_provider(fleet: Plan) -> None:
    from regions.catalog import load_catalog

    for code, region in load_catalog().regions.items():
        stack = f"region-{code}"
        provider = fleet.one(stack, "pulumi:providers:aws", "region-aws")
        assert provider.inputs["region"] == region.aws_region
        aws_resources = [r for r in fleet.resources(stack) if r.type.startswith("aws:")]
        assert aws_resources and all(r.provider.startswith(provider.urn) for r in aws_resources)


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


DEPLOYMENT_CHAIN = "urn:pulumi:region-eu-central::platform::platform:regional_deployment:RegionalDeployment"
"""The URN's type chain below the deployment (the stack itself is no part of it)."""


@pytest.mark.parametrize(
    ("type_", "name"),
    [
        ("aws:kms/key:Key", "region-data-key"),
        ("aws:ec2/vpc:Vpc", "region-vpc"),
        ("aws:eks/cluster:Cluster", "region-cluster"),
        ("aws:eks/nodeGroup:NodeGroup", "region-nodes"),
        ("aws:elasticache/replicationGroup:ReplicationGroup", "region-kong-redis"),
        ("kubernetes:helm.sh/v3:Release", "region-kong-data-plane"),
        ("kubernetes:cert-manager.io/v1:ClusterIssuer", "region-acme-issuer"),
        ("snowflake:index/serviceUser:ServiceUser", "region-meter-user"),
        ("aws:iam/role:Role", "region-payouts-role"),
    ],
)
def test_the_parts_register_their_resources_directly_under_the_deployment(fleet: Plan, type_: str, name: str) -> None:
    """The parts are builders, not components: a component per part would change every URN below it (a real `up`
    would replace the VPC, the cluster, the buckets). The URNs stay the ones the stacks' state holds."""
    resource = fleet.one("region-eu-central", type_, name)
    assert resource.parent == f"{DEPLOYMENT_CHAIN}::region"
    assert resource.urn == f"{DEPLOYMENT_CHAIN}${type_}::{name}"


def test_the_only_components_in_a_region_are_the_deployment_and_the_ones_it_composes(fleet: Plan) -> None:
    components = {r.type for r in fleet.resources("region-eu-central") if r.type.startswith("platform:")}
    assert components == {
        "platform:regional_deployment:RegionalDeployment",
        "platform:secure_bucket:SecureBucket",
        "platform:cluster_addons:ClusterAddons",
        "platform:country_launch:CountryLaunch",
        "platform:snowflake_warehouse:SnowflakeWarehouse",
        "platform:certificate_sync:KongCertificateSync",
        "platform:webhooks_dispatcher:WebhooksDispatcher",
        "platform:runtime_service:RuntimeService",
        "platform:runtime_job:RuntimeJob",
        "platform:voice_endpoint:VoiceEndpoint",
    }
