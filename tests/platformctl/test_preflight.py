"""Preflight's reading of the offline plan, and its zone and EKS-version checks."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import boto3
from botocore.stub import Stubber

from platformctl.preflight import RegionNeeds, _Aws, check_eks_version, check_zones, needs_from_plan
from tests.conftest import ROOT, Plan


def test_needs_come_from_the_plan(plan_in: Callable[..., Plan]) -> None:
    plan = plan_in(ROOT, "region-eu-central")
    needs = needs_from_plan(plan.plans["region-eu-central"])
    assert list(needs) == ["eu-central-1"]
    need = needs["eu-central-1"]
    subnets = plan.resources("region-eu-central", "aws:ec2/subnet:Subnet")
    assert need.zone_names == {s.inputs["availabilityZone"] for s in subnets if "availabilityZone" in s.inputs}
    assert need.vpcs == len(plan.resources("region-eu-central", "aws:ec2/vpc:Vpc")) == 1
    assert need.elastic_ips == len(plan.resources("region-eu-central", "aws:ec2/eip:Eip"))
    # The NAT gateway's zone is its subnet's, found through the subnetId property dependency.
    (nat,) = plan.resources("region-eu-central", "aws:ec2/natGateway:NatGateway")
    (subnet_urn,) = nat.property_dependencies["subnetId"]
    subnet = next(s for s in subnets if s.urn == subnet_urn)
    zone = subnet.inputs.get("availabilityZoneId") or subnet.inputs["availabilityZone"]
    assert need.nat_gateways == {zone: 1}
    (cluster,) = plan.resources("region-eu-central", "aws:eks/cluster:Cluster")
    assert need.cluster_versions == [cluster.inputs["version"]]


def test_zone_check_by_name_and_by_id(aws: str) -> None:
    client = _Aws(boto3.Session())
    # moto's Tokyo, like most accounts, has no ap-northeast-1b.
    missing = check_zones(client, RegionNeeds("ap-northeast-1", zone_names={"ap-northeast-1a", "ap-northeast-1b"}))
    assert missing.status == "FAIL" and "ap-northeast-1b not available" in missing.detail
    assert "ap-northeast-1a (apne1-az4)" in missing.detail
    by_id = check_zones(client, RegionNeeds("ap-northeast-1", zone_ids={"apne1-az4", "apne1-az1"}))
    assert by_id.status == "ok", by_id.detail
    assert check_zones(client, RegionNeeds("ap-northeast-1", zone_ids={"apne1-az3"})).status == "FAIL"


def _stubbed(versions: list[dict[str, object]], version: str) -> tuple[_Aws, Stubber]:
    """An EKS client whose DescribeClusterVersions answer is given (moto does not implement the operation); botocore's
    Stubber checks the request and the answer against EKS's own API model."""
    client = _Aws(boto3.Session(aws_access_key_id="x", aws_secret_access_key="y"))
    eks = client.client("eks", "eu-central-1")
    stubber = Stubber(eks)
    stubber.add_response(
        "describe_cluster_versions",
        {"clusterVersions": versions},
        {"clusterVersions": [version], "includeAll": True},
    )
    stubber.activate()
    return client, stubber


def test_eks_version_in_standard_support_passes() -> None:
    ends = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    client, stubber = _stubbed(
        [{"clusterVersion": "1.33", "versionStatus": "STANDARD_SUPPORT", "endOfStandardSupportDate": ends}], "1.33"
    )
    check = check_eks_version(client, "eu-central-1", "1.33")
    assert (check.status, check.detail) == ("ok", "Kubernetes 1.33 in standard support until 2026-12-01")
    stubber.assert_no_pending_responses()


def test_eks_version_in_extended_support_or_absent_fails() -> None:
    client, _ = _stubbed([{"clusterVersion": "1.29", "versionStatus": "EXTENDED_SUPPORT"}], "1.29")
    extended = check_eks_version(client, "eu-central-1", "1.29")
    assert extended.status == "FAIL" and "extended support" in extended.detail
    client, _ = _stubbed([], "1.99")
    absent = check_eks_version(client, "eu-central-1", "1.99")
    assert absent.status == "FAIL" and "not offered" in absent.detail


def test_eks_version_unanswerable_is_skipped_not_passed(aws: str) -> None:
    check = check_eks_version(_Aws(boto3.Session()), "eu-central-1", "1.33")
    assert check.status == "skip"
