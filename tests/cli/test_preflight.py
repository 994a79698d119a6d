"""`platformctl preflight STACK` against moto (server mode on loopback): one line per check, exit 1 on a failure."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import moto.eks.models
import pytest
from moto.eks.utils import validate_role_arn

import platformctl.preflight
from platformctl.offline.planner import StackPlan
from tests.conftest import Run

PLANS: dict[tuple[str, tuple[str, ...], int | None], dict[str, StackPlan]] = {}
"""Offline plans the command made in this module, by repository, stacks and workers."""


@pytest.fixture(autouse=True)
def plan_each_stack_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command plans its stack with the real planner the first time; later runs on the same (unchanged)
    repository get that plan again. Safe to share: the plan depends on the repository's files only, never on the
    AWS account, no test here edits the repository it plans (the bad-stack tests, on a copy, stop before
    planning), and preflight only reads the plan (`needs_from_plan`)."""
    plan_stacks = platformctl.preflight.plan_stacks

    def planned(repo: Any, stacks: list[Any], workers: int | None = None) -> dict[str, StackPlan]:
        key = (str(repo.root), tuple(str(stack) for stack in stacks), workers)
        if key not in PLANS:
            PLANS[key] = plan_stacks(repo, stacks, workers=workers)
        return PLANS[key]

    monkeypatch.setattr(platformctl.preflight, "plan_stacks", planned)


def client(service: str, region: str = "eu-central-1") -> object:
    return boto3.client(service, region_name=region)


def line(result: Run, start: str) -> str:
    matches = [text for text in result.out.splitlines() if start in text]
    assert len(matches) == 1, f"expected one line with {start!r}:\n{result.out}"
    return matches[0]


def test_region_stack_passes_on_a_fresh_account(cli: Callable[..., Run], aws: str) -> None:
    result = cli("preflight", "region-eu-central")
    assert line(result, "credentials").startswith("ok")
    assert line(result, "region eu-central-1 enabled").startswith("ok")
    zones = line(result, "zones in eu-central-1")
    assert zones.startswith("ok") and "euc1-az1" in zones  # the catalog names zones by id
    assert line(result, "quota VPCs per Region in eu-central-1").startswith("ok")
    assert "1 used + 1 planned of 5 (vpc L-F678F1CE, applied)" in result.out  # moto's default VPC, our one VPC
    assert line(result, "quota EC2-VPC Elastic IPs in eu-central-1").startswith("ok")
    assert line(result, "quota NAT gateways per Availability Zone in eu-central-1").startswith("ok")
    assert line(result, "quota Clusters in eu-central-1").startswith("ok")
    # moto does not implement EKS DescribeClusterVersions: said, not passed off as checked.
    assert line(result, "EKS 1.35 in eu-central-1").startswith("skip")
    assert "could not run" in result.err


def test_opt_in_region_not_enabled_fails(cli: Callable[..., Run], aws: str) -> None:
    result = cli("preflight", "region-eu-spain", code=1)
    region = line(result, "region eu-south-2 enabled")
    assert region.startswith("FAIL") and "not-opted-in" in region
    assert "preflight check(s) failed for region-eu-spain" in result.err


def test_vpc_quota_without_room_fails(cli: Callable[..., Run], aws: str) -> None:
    ec2 = client("ec2")
    for index in range(4):  # with moto's default VPC: 5 of 5 in use
        ec2.create_vpc(CidrBlock=f"10.{100 + index}.0.0/16")  # type: ignore[attr-defined]
    result = cli("preflight", "region-eu-central", code=1)
    vpcs = line(result, "quota VPCs per Region in eu-central-1")
    assert vpcs.startswith("FAIL") and "5 used + 1 planned of 5" in vpcs
    assert line(result, "region eu-central-1 enabled").startswith("ok")


def test_elastic_ip_and_nat_quotas_count_what_is_in_use(cli: Callable[..., Run], aws: str) -> None:
    ec2 = client("ec2")
    subnet = ec2.describe_subnets(  # type: ignore[attr-defined]
        Filters=[{"Name": "availability-zone", "Values": ["eu-central-1a"]}]
    )["Subnets"][0]
    for _ in range(5):
        allocation = ec2.allocate_address(Domain="vpc")  # type: ignore[attr-defined]
        ec2.create_nat_gateway(SubnetId=subnet["SubnetId"], AllocationId=allocation["AllocationId"])  # type: ignore[attr-defined]
    result = cli("preflight", "region-eu-central", code=1)
    eips = line(result, "quota EC2-VPC Elastic IPs in eu-central-1")
    # moto's Service Quotas answers only for vpc codes: the documented default is used, and said.
    assert eips.startswith("FAIL") and "5 used + 1 planned of 5" in eips and "documented AWS default" in eips
    nat = line(result, "quota NAT gateways per Availability Zone in eu-central-1")
    assert nat.startswith("FAIL") and "5 used + 1 planned of 5" in nat


def test_eks_cluster_quota(cli: Callable[..., Run], aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # moto's CreateCluster checks the role ARN's partition against a boto3 Session it builds per call (~60 ms of
    # CPU each, 100 times). The one role is checked by moto's own function once; the server (in this process)
    # then skips re-checking that same ARN and checks any other as before.
    role = "arn:aws:iam::123456789012:role/eks"
    validate_role_arn(role)
    monkeypatch.setattr(
        moto.eks.models, "validate_role_arn", lambda arn: None if arn == role else validate_role_arn(arn)
    )
    eks = client("eks")
    for index in range(100):
        eks.create_cluster(name=f"other-{index}", roleArn=role, resourcesVpcConfig={})  # type: ignore[attr-defined]
    result = cli("preflight", "region-eu-central", code=1)
    clusters = line(result, "quota Clusters in eu-central-1")
    assert clusters.startswith("FAIL") and "100 used + 1 planned of 100" in clusters


def test_partner_stack_checks_its_home_region_only(cli: Callable[..., Run], aws: str) -> None:
    result = cli("preflight", "partner-acme-voice")
    assert line(result, "region eu-central-1 enabled").startswith("ok")
    assert "quota" not in result.out and "zones" not in result.out


def test_missing_credentials_is_a_clear_error(
    cli: Callable[..., Run], aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = cli("preflight", "region-eu-central", code=1)
    assert "no usable AWS credentials" in result.err and "AWS_PROFILE" in result.err


def test_unreachable_endpoint_is_a_clear_error(
    cli: Callable[..., Run], aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    result = cli("preflight", "region-eu-central", code=1)
    assert "cannot reach AWS" in result.err


def test_malformed_endpoint_is_a_clear_error(
    cli: Callable[..., Run], aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "not a url")
    result = cli("preflight", "global", code=1)
    assert "cannot set up an AWS client" in result.err and "not a url" in result.err


@pytest.mark.parametrize("name", ["nowhere", "region-../../x", "partner-unknown-partner", "region-zz-nowhere"])
def test_bad_stack_exits_2(cli: Callable[..., Run], aws: str, repo_copy: Path, name: str) -> None:
    result = cli("preflight", name, root=repo_copy, code=2)
    assert "stack" in result.err
