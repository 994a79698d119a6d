"""What a real `pulumi up` needs that the mocks would not refuse: zones by ID, enforced network policy with the
endpoints tenants need, Snowflake preview features, grants that wait for what they name, a KMS-friendly bucket
policy."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import pulumi_snowflake

from components.secure_bucket import tls_only_policy
from components.snowflake_preview import PREVIEW_FEATURES
from regions.catalog import load_catalog
from regions.network import INSTANCE_METADATA, address_layout
from tests.conftest import Plan

REGION = "region-eu-central"
PARTNER = "partner-acme-voice"
GRANT = "snowflake:index/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def test_tokyo_subnets_are_placed_by_zone_id(fleet: Plan) -> None:
    subnets = fleet.resources("region-ap-tokyo", "aws:ec2/subnet:Subnet")
    zones = {s.inputs["availabilityZoneId"] for s in subnets}
    assert zones == {"apne1-az1", "apne1-az2", "apne1-az4"}
    assert all("availabilityZone" not in s.inputs for s in subnets)


def test_vpc_cni_enforces_network_policy(fleet: Plan) -> None:
    addon = fleet.one(REGION, "aws:eks/addon:Addon", "region-vpc-cni")
    assert addon.inputs["addonName"] == "vpc-cni"
    assert json.loads(addon.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_tenants_reach_s3_kms_and_sts_through_endpoints_in_the_endpoint_subnets(fleet: Plan) -> None:
    endpoints = {r.name: r for r in fleet.resources(REGION, "aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert endpoints["region-s3-gateway"].inputs["vpcEndpointType"] == "Gateway"
    endpoint_subnets = {
        r.urn for r in fleet.resources(REGION, "aws:ec2/subnet:Subnet") if r.name.startswith("region-endpoints-")
    }
    for service in ("s3", "kms", "sts"):
        endpoint = endpoints[f"region-{service}-endpoint"]
        assert endpoint.inputs["serviceName"] == f"com.amazonaws.eu-central-1.{service}"
        assert endpoint.inputs["privateDnsEnabled"] is True
        assert set(endpoint.property_dependencies["subnetIds"]) == endpoint_subnets
    assert endpoints["region-s3-endpoint"].inputs["dnsOptions"] == {"privateDnsOnlyForInboundResolverEndpoint": False}


def _egress_peers(fleet: Plan) -> list[dict[str, Any]]:
    return [
        peer
        for policy in fleet.resources(PARTNER, NETWORK_POLICY)
        for rule in policy.inputs["spec"].get("egress", [])
        for peer in rule.get("to", [])
    ]


def test_tenant_egress_reaches_only_what_it_needs(fleet: Plan) -> None:
    region = load_catalog().region("eu-central")
    allowed_blocks = {str(c) for c in address_layout(region).endpoints} | {"169.254.170.23/32"}
    peers = _egress_peers(fleet)
    blocks = {p["ipBlock"]["cidr"] for p in peers if "ipBlock" in p}
    assert blocks == allowed_blocks
    metadata = ipaddress.ip_network(INSTANCE_METADATA)
    assert not any(ipaddress.ip_network(b).overlaps(metadata) for b in blocks)
    pods = address_layout(region).private
    assert not any(ipaddress.ip_network(b).overlaps(p) for b in blocks for p in pods)
    namespaces = [p["namespaceSelector"] for p in peers if "namespaceSelector" in p]
    # Every namespace selector names one namespace: never {} (all namespaces), never another partner's.
    assert namespaces and all(set(ns) == {"matchLabels"} for ns in namespaces)
    assert {ns["matchLabels"]["kubernetes.io/metadata.name"] for ns in namespaces} == {"platform", "kube-system"}


def test_tenant_egress_ports(fleet: Plan) -> None:
    spec = next(p for p in fleet.resources(PARTNER, NETWORK_POLICY) if p.name == "tenant-allow-aws-apis").inputs["spec"]
    assert spec["policyTypes"] == ["Egress"]
    ports = {rule["to"][0]["ipBlock"]["cidr"]: [p["port"] for p in rule["ports"]] for rule in spec["egress"]}
    assert ports["169.254.170.23/32"] == [80]
    assert all(v == [443] for k, v in ports.items() if k != "169.254.170.23/32")


def test_snowflake_table_provider_enables_the_preview_feature(fleet: Plan) -> None:
    provider = fleet.one(REGION, "pulumi:providers:snowflake", "region-snowflake")
    assert json.loads(provider.inputs["previewFeaturesEnabled"]) == ["snowflake_table_resource"]
    for table in fleet.resources(REGION, "snowflake:index/table:Table"):
        assert table.provider.startswith(provider.urn + "::")


def test_preview_table_matches_the_installed_provider() -> None:
    from pathlib import Path

    source = (Path(pulumi_snowflake.__file__).parent / "provider.py").read_text()
    listed = re.search(r"Preview features that can be enabled are: (.*?)\. Promoted", source)
    assert listed is not None
    gated = {f for f in re.findall(r"<code>(\w+)</code>", listed.group(1)) if f.endswith("_resource")}
    assert set(PREVIEW_FEATURES.values()) == gated
    for token in PREVIEW_FEATURES:
        module = re.sub(r"(?<!^)(?=[A-Z])", "_", token.split("/")[1].split(":")[0]).lower()
        assert f"'{token}'" in (Path(pulumi_snowflake.__file__).parent / f"{module}.py").read_text()


def _grant(fleet: Plan, stack: str, name: str) -> Any:
    return fleet.one(stack, GRANT, name)


def test_grants_depend_on_the_schemas_and_views_they_name(fleet: Plan) -> None:
    raw = fleet.one(REGION, "snowflake:index/schema:Schema", "region-warehouse-raw")
    analytics = fleet.one(REGION, "snowflake:index/schema:Schema", "region-warehouse-analytics")
    views = [v.urn for v in fleet.resources(REGION, "snowflake:index/view:View")]
    assert raw.urn in _grant(fleet, REGION, "region-warehouse-loader-raw-usage").property_dependencies["onSchema"]
    existing = _grant(fleet, REGION, "region-warehouse-analyst-views")
    assert existing.inputs["onSchemaObject"]["all"] == {
        "inSchema": "PLATFORM_EU_CENTRAL.ANALYTICS",
        "objectTypePlural": "VIEWS",
    }
    assert analytics.urn in existing.property_dependencies["onSchemaObject"]
    assert set(views) <= set(existing.dependencies)
    future = _grant(fleet, REGION, "region-warehouse-analyst-future-views")
    assert future.inputs["onSchemaObject"]["future"]["objectTypePlural"] == "VIEWS"


def test_row_policy_attachment_and_views_depend_on_what_they_name(fleet: Plan) -> None:
    usage = fleet.one(REGION, "snowflake:index/table:Table", "region-warehouse-usage-events")
    policy = fleet.one(REGION, "snowflake:index/rowAccessPolicy:RowAccessPolicy", "region-warehouse-partner-rows")
    attach = fleet.one(REGION, "snowflake:index/execute:Execute", "region-warehouse-usage-row-policy")
    assert {usage.urn, policy.urn} <= set(attach.property_dependencies["execute"])
    for view in fleet.resources(REGION, "snowflake:index/view:View"):
        assert usage.urn in view.property_dependencies["statement"]


def test_partner_grants_wait_for_its_schema_and_view(fleet: Plan) -> None:
    schema = fleet.one(PARTNER, "snowflake:index/schema:Schema", "tenant-schema")
    view = fleet.one(PARTNER, "snowflake:index/view:View", "tenant-usage-view")
    assert schema.urn in _grant(fleet, PARTNER, "tenant-grant-schema-usage").property_dependencies["onSchema"]
    existing = _grant(fleet, PARTNER, "tenant-grant-views-select")
    assert schema.urn in existing.property_dependencies["onSchemaObject"]
    assert view.urn in existing.dependencies


# ---------------------------------------------------------------- the bucket policy, evaluated


def _condition_holds(operator: str, values: dict[str, Any], request: dict[str, str]) -> bool:
    """IAM condition operators used by the policy (AWS IAM user guide, "Condition operators")."""
    for key, expected in values.items():
        wanted = expected if isinstance(expected, list) else [expected]
        present = key in request
        if operator == "Null":
            if (not present) != (str(wanted[0]).lower() == "true"):
                return False
        elif operator in ("StringNotEquals", "StringNotEqualsIfExists"):
            # Negated operators are true when the key is missing: only `Null: false` beside them requires it.
            if present and request[key] in wanted:
                return False
        else:
            raise AssertionError(f"operator {operator} not modelled")
    return True


def _denied(policy: dict[str, Any], action: str, headers: dict[str, str]) -> bool:
    for statement in policy["Statement"]:
        if statement["Effect"] != "Deny" or statement["Action"] != action:
            continue
        if all(_condition_holds(op, values, headers) for op, values in statement["Condition"].items()):
            return True
    return False


def test_bucket_policy_allows_default_encryption_and_multipart_parts() -> None:
    policy = json.loads(tls_only_policy("voiceplat-eu-central-recordings"))
    header = "s3:x-amz-server-side-encryption"
    assert not _denied(policy, "s3:PutObject", {})  # relies on the bucket's default SSE-KMS; also every UploadPart
    assert not _denied(policy, "s3:PutObject", {header: "aws:kms"})
    assert _denied(policy, "s3:PutObject", {header: "AES256"})


def test_the_old_condition_refused_default_encryption() -> None:
    """The former statement denied a header-less upload (default encryption, UploadPart); so would StringNotEquals
    alone: the `Null` condition is what lets them through."""
    old: dict[str, Any] = {
        "Statement": [
            {
                "Effect": "Deny",
                "Action": "s3:PutObject",
                "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
            }
        ]
    }
    assert _denied(old, "s3:PutObject", {})
    condition = old["Statement"][0]["Condition"]
    condition["StringNotEquals"] = condition.pop("StringNotEqualsIfExists")
    assert _denied(old, "s3:PutObject", {})
