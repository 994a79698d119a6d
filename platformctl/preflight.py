"""`platformctl preflight STACK`: what a real `pulumi up` of the stack needs from the AWS account, asked of AWS.

The stack is planned offline first; the plan says which regions, zones, EKS versions and how many VPCs, Elastic IPs,
NAT gateways and clusters the stack creates. boto3 then asks the account (the standard credential chain; boto3 honours
`AWS_ENDPOINT_URL`, which the tests point at moto) whether each region is enabled, each zone exists for it, each EKS
version is offered in standard support, and each quota leaves room."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from fleet.repo import Repo
from foundation.errors import InputError, PlatformError
from foundation.stacks import parse_stack_name
from platformctl.offline.planner import StackPlan, plan_stacks
from platformctl.offline.recorder import UNKNOWN, RecordedResource

Status = Literal["ok", "FAIL", "skip"]

ENABLED = ("opt-in-not-required", "opted-in")
"""EC2 DescribeRegions OptInStatus values of a region the account can use (the third is `not-opted-in`)."""


@dataclass(frozen=True)
class Quota:
    service: str
    """Service Quotas service code."""
    code: str
    """Quota code."""
    name: str
    """The quota's name in Service Quotas."""
    default: int
    """AWS's default value, used (and said) when Service Quotas does not answer for the code."""


# Quota codes and defaults: Service Quotas console / `aws service-quotas list-aws-default-service-quotas`; VPC
# https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html (VPCs per Region 5, NAT gateways per AZ 5),
# EC2 https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/elastic-ip-addresses-eip.html (5 Elastic IPs per Region),
# EKS https://docs.aws.amazon.com/eks/latest/userguide/service-quotas.html (100 clusters per Region); read 2026-11-29.
VPCS = Quota("vpc", "L-F678F1CE", "VPCs per Region", 5)
ELASTIC_IPS = Quota("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs", 5)
NAT_GATEWAYS = Quota("vpc", "L-FE5A380F", "NAT gateways per Availability Zone", 5)
EKS_CLUSTERS = Quota("eks", "L-1194D53C", "Clusters", 100)

_NOT_IMPLEMENTED = {"404", "NotImplemented", "InvalidAction", "UnknownOperationException"}
_AUTH_ERRORS = {"AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken",
                "ExpiredTokenException", "SignatureDoesNotMatch", "InvalidAccessKeyId"}  # fmt: skip


@dataclass(frozen=True)
class Check:
    name: str
    """What was checked (region, zones, EKS version, a quota), with the AWS region."""
    status: Status
    """ok, FAIL, or skip when the endpoint cannot answer the question."""
    detail: str
    """Why."""

    def __str__(self) -> str:
        return f"{self.status:<4}  {self.name}: {self.detail}"


@dataclass
class RegionNeeds:
    """What the plan creates in one AWS region."""

    region: str
    """AWS region name."""
    zone_names: set[str] = field(default_factory=set)
    """Availability zones named by subnets."""
    zone_ids: set[str] = field(default_factory=set)
    """Availability zone ids named by subnets."""
    vpcs: int = 0
    """VPCs created."""
    elastic_ips: int = 0
    """Elastic IPs allocated."""
    nat_gateways: Counter[str] = field(default_factory=Counter)
    """NAT gateways created per zone (name or id; `?` where the plan does not say)."""
    cluster_versions: list[str] = field(default_factory=list)
    """Kubernetes version of each EKS cluster created."""


def _provider_regions(plan: StackPlan) -> dict[str, str]:
    regions = {}
    for resource in plan.recording.resources:
        if resource.type == "pulumi:providers:aws" and isinstance(resource.inputs.get("region"), str):
            regions[resource.urn] = resource.inputs["region"]
    return regions


def needs_from_plan(plan: StackPlan) -> dict[str, RegionNeeds]:
    """Per AWS region, what the stack's offline plan creates that the account must allow."""
    providers = _provider_regions(plan)
    default_region = plan.config.get("aws:region")
    by_urn = {r.urn: r for r in plan.recording.resources}
    needs: dict[str, RegionNeeds] = {}

    def region_of(resource: RecordedResource) -> str | None:
        if resource.provider:  # a provider reference is "<provider urn>::<provider id>"
            return providers.get(resource.provider.rsplit("::", 1)[0])
        return default_region if isinstance(default_region, str) else None

    def zone_of(subnet: RecordedResource | None) -> str | None:
        if subnet is None:
            return None
        for key in ("availabilityZoneId", "availabilityZone"):
            value = subnet.inputs.get(key)
            if isinstance(value, str) and value != UNKNOWN:
                return value
        return None

    for resource in plan.recording.resources:
        if not resource.type.startswith("aws:"):
            continue
        region = region_of(resource)
        if region is None:
            continue
        need = needs.setdefault(region, RegionNeeds(region))
        inputs = resource.inputs
        if resource.type == "aws:ec2/subnet:Subnet":
            if isinstance(inputs.get("availabilityZone"), str) and inputs["availabilityZone"] != UNKNOWN:
                need.zone_names.add(inputs["availabilityZone"])
            if isinstance(inputs.get("availabilityZoneId"), str) and inputs["availabilityZoneId"] != UNKNOWN:
                need.zone_ids.add(inputs["availabilityZoneId"])
        elif resource.type == "aws:ec2/vpc:Vpc":
            need.vpcs += 1
        elif resource.type == "aws:ec2/eip:Eip":
            need.elastic_ips += 1
        elif resource.type == "aws:ec2/natGateway:NatGateway":
            # The subnet id is unknown before apply; the property dependency says which planned subnet it is.
            subnets = [by_urn.get(urn) for urn in resource.property_dependencies.get("subnetId", [])]
            need.nat_gateways[next((z for z in map(zone_of, subnets) if z), "?")] += 1
        elif resource.type == "aws:eks/cluster:Cluster":
            version = inputs.get("version")
            need.cluster_versions.append(version if isinstance(version, str) else UNKNOWN)
    return {region: need for region, need in sorted(needs.items())}


# ---------------------------------------------------------------- asking AWS


class _Aws:
    """boto3 clients per (service, region), with failures that are not about the question turned into errors."""

    def __init__(self, session: Any) -> None:
        from botocore.config import Config

        self.session = session
        self.config = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 2, "mode": "standard"})
        self.clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self.clients:
            try:
                self.clients[key] = self.session.client(service, region_name=region, config=self.config)
            except ValueError as exc:  # botocore's answer to a malformed AWS_ENDPOINT_URL or region
                raise PlatformError(f"cannot set up an AWS client for {service} in {region}: {exc}") from None
        return self.clients[key]

    def call(self, service: str, region: str, operation: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

        try:
            result: dict[str, Any] = getattr(self.client(service, region), operation)(**params)
            return result
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise PlatformError(
                f"no usable AWS credentials ({exc}): set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _AUTH_ERRORS:
                raise PlatformError(f"AWS refused the credentials: {_message(exc)}") from None
            raise
        except BotoCoreError as exc:  # endpoint unreachable, timeouts, bad endpoint URL
            raise PlatformError(f"cannot reach AWS ({service} in {region}): {exc}") from None

    def pages(self, service: str, region: str, operation: str, key: str, **params: Any) -> list[Any]:
        items: list[Any] = []
        token_in, token_out = ("nextToken", "nextToken") if service == "eks" else ("NextToken", "NextToken")
        for _ in range(1000):  # bounded: a misbehaving endpoint cannot keep us here
            page = self.call(service, region, operation, **params)
            items.extend(page.get(key, []))
            token = page.get(token_out)
            if not token:
                break
            params[token_in] = token
        return items


def _message(exc: Any) -> str:
    error = exc.response.get("Error", {})
    message = str(error.get("Message", "")).strip()
    if message.startswith("<"):  # an HTML error page
        message = f"HTTP {exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode', '?')}"
    return f"{error.get('Code', 'error')}: {message}" if message else str(error.get("Code", exc))


def _not_implemented(exc: Any) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _NOT_IMPLEMENTED


def check_region(aws: _Aws, region: str) -> Check:
    from botocore.exceptions import ClientError

    name = f"region {region} enabled"
    try:
        regions = aws.call("ec2", "us-east-1", "describe_regions", AllRegions=True)["Regions"]
    except ClientError as exc:
        return Check(name, "FAIL", f"cannot list the account's regions: {_message(exc)}")
    status = next((r.get("OptInStatus") for r in regions if r.get("RegionName") == region), None)
    if status is None:
        return Check(name, "FAIL", "not a region this partition offers")
    if status in ENABLED:
        return Check(name, "ok", f"OptInStatus {status}")
    return Check(name, "FAIL", f"OptInStatus {status}: an opt-in region; enable it for the account first")


def check_zones(aws: _Aws, need: RegionNeeds) -> Check:
    from botocore.exceptions import ClientError

    name = f"zones in {need.region}"
    try:
        zones = aws.call("ec2", need.region, "describe_availability_zones")["AvailabilityZones"]
    except ClientError as exc:
        return Check(name, "FAIL", f"cannot list availability zones: {_message(exc)}")
    available = [z for z in zones if z.get("State") == "available"]
    names = {z.get("ZoneName") for z in available}
    ids = {z.get("ZoneId") for z in available}
    missing = sorted(need.zone_names - names) + sorted(need.zone_ids - ids)
    planned = sorted(need.zone_ids) + sorted(need.zone_names)
    if missing:
        offered = ", ".join(sorted(f"{z.get('ZoneName')} ({z.get('ZoneId')})" for z in available))
        return Check(name, "FAIL", f"{', '.join(missing)} not available to this account (it has: {offered})")
    return Check(name, "ok", f"{', '.join(planned)} available")


def eks_version_verdict(version: str, versions: list[dict[str, Any]]) -> tuple[Status, str]:
    """ok only for a version EKS offers in standard support; EKS DescribeClusterVersions' `clusterVersions` items."""
    entry = next((v for v in versions if v.get("clusterVersion") == version), None)
    if entry is None:
        return "FAIL", f"Kubernetes {version} is not offered by EKS here"
    support = str(entry.get("versionStatus") or entry.get("status") or "").upper().replace("-", "_")
    ends = entry.get("endOfStandardSupportDate")
    until = f" until {ends:%Y-%m-%d}" if hasattr(ends, "strftime") else ""
    if support == "STANDARD_SUPPORT":
        return "ok", f"Kubernetes {version} in standard support{until}"
    if support == "EXTENDED_SUPPORT":
        return "FAIL", f"Kubernetes {version} is only in (paid) extended support: new clusters use a standard version"
    return "FAIL", f"Kubernetes {version} is {support.lower() or 'of unknown status'}"


def check_eks_version(aws: _Aws, region: str, version: str) -> Check:
    from botocore.exceptions import ClientError

    name = f"EKS {version} in {region}"
    try:
        versions = aws.pages(
            "eks", region, "describe_cluster_versions", "clusterVersions", clusterVersions=[version], includeAll=True
        )
    except ClientError as exc:
        if _not_implemented(exc):
            return Check(name, "skip", "the endpoint does not implement EKS DescribeClusterVersions; not checked")
        return Check(name, "FAIL", f"cannot list EKS versions: {_message(exc)}")
    status, detail = eks_version_verdict(version, versions)
    return Check(name, status, detail)


def quota_value(aws: _Aws, region: str, quota: Quota) -> tuple[int, str]:
    """The account's value of a quota, and where it came from."""
    from botocore.exceptions import ClientError

    for operation in ("get_service_quota", "get_aws_default_service_quota"):
        try:
            answer = aws.call("service-quotas", region, operation, ServiceCode=quota.service, QuotaCode=quota.code)
            return int(answer["Quota"]["Value"]), "applied" if operation == "get_service_quota" else "AWS default"
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            # The AWS-default lookup is itself the fallback: whatever it answers, the documented default follows.
            if operation == "get_service_quota" and code not in {"NoSuchResourceException", *_NOT_IMPLEMENTED}:
                raise PlatformError(
                    f"Service Quotas ({quota.service} {quota.code} in {region}): {_message(exc)}"
                ) from None
    return quota.default, "documented AWS default; Service Quotas did not answer"


def _quota_check(aws: _Aws, region: str, quota: Quota, used: int, planned: int, where: str = "") -> Check:
    value, source = quota_value(aws, region, quota)
    name = f"quota {quota.name} in {region}{where}"
    detail = f"{used} used + {planned} planned of {value} ({quota.service} {quota.code}, {source})"
    return Check(name, "ok" if used + planned <= value else "FAIL", detail)


def check_quotas(aws: _Aws, need: RegionNeeds) -> Iterator[Check]:
    from botocore.exceptions import ClientError

    region = need.region
    try:
        if need.vpcs:
            used = len(aws.pages("ec2", region, "describe_vpcs", "Vpcs"))
            yield _quota_check(aws, region, VPCS, used, need.vpcs)
        if need.elastic_ips:
            addresses = aws.call("ec2", region, "describe_addresses")["Addresses"]
            used = sum(1 for a in addresses if a.get("Domain", "vpc") == "vpc")
            yield _quota_check(aws, region, ELASTIC_IPS, used, need.elastic_ips)
        if need.nat_gateways:
            yield from _nat_checks(aws, need)
        if need.cluster_versions:
            used = len(aws.pages("eks", region, "list_clusters", "clusters"))
            yield _quota_check(aws, region, EKS_CLUSTERS, used, len(need.cluster_versions))
    except ClientError as exc:
        yield Check(f"quotas in {region}", "FAIL", f"cannot count what the account uses: {_message(exc)}")


def _nat_checks(aws: _Aws, need: RegionNeeds) -> Iterator[Check]:
    region = need.region
    gateways = aws.pages(
        "ec2",
        region,
        "describe_nat_gateways",
        "NatGateways",
        Filters=[{"Name": "state", "Values": ["pending", "available"]}],
    )
    subnet_ids = sorted({g["SubnetId"] for g in gateways if g.get("SubnetId")})
    zone_of: dict[str, tuple[str, str]] = {}
    if subnet_ids:
        for subnet in aws.pages("ec2", region, "describe_subnets", "Subnets", SubnetIds=subnet_ids):
            zone_of[subnet["SubnetId"]] = (subnet.get("AvailabilityZone", "?"), subnet.get("AvailabilityZoneId", "?"))
    used: Counter[str] = Counter()
    for gateway in gateways:
        name, zone_id = zone_of.get(gateway.get("SubnetId", ""), ("?", "?"))
        used[name] += 1
        used[zone_id] += 1
    busiest = max((n for z, n in used.items() if z != "?"), default=0)
    for zone, planned in sorted(need.nat_gateways.items()):
        # A gateway whose zone the plan cannot tell is counted against the busiest zone.
        in_use = used.get(zone, 0) if zone != "?" else busiest
        yield _quota_check(aws, region, NAT_GATEWAYS, in_use, planned, f" ({zone if zone != '?' else 'any zone'})")


def preflight(repo: Repo, stack_name: str, session: Any = None) -> list[Check]:
    """Plan the stack offline, then run every check against the account; one Check per line of the report."""
    stack = parse_stack_name(stack_name)
    if not stack.config_file(repo.root).is_file():
        raise InputError.single("arguments", "STACK", f"stack {stack_name!r} has no file in stacks/")
    plan = plan_stacks(repo, [stack], workers=1)[str(stack)]
    needs = needs_from_plan(plan)
    if session is None:
        import boto3

        session = boto3.Session()
    aws = _Aws(session)
    identity = aws.call("sts", next(iter(needs), "us-east-1"), "get_caller_identity")
    checks = [Check("credentials", "ok", f"account {identity.get('Account', '?')}")]
    if not needs:
        return [*checks, Check("plan", "ok", f"{stack} creates nothing in AWS")]
    for need in needs.values():
        checks.append(check_region(aws, need.region))
        if checks[-1].status != "ok":
            continue  # the region's own endpoints refuse a disabled region's calls
        if need.zone_names or need.zone_ids:
            checks.append(check_zones(aws, need))
        for version in sorted(set(need.cluster_versions) - {UNKNOWN}):
            checks.append(check_eks_version(aws, need.region, version))
        checks.extend(check_quotas(aws, need))
    return checks


def failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == "FAIL"]
